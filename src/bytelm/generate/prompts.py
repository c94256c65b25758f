"""Prompt files for batched generation: one prompt per line, or JSON lines."""
import json
from pathlib import Path

from bytelm.errors import UserError


def read_prompts_file(path) -> list[bytes]:
    """The prompts of ``path``: a ``.jsonl`` file holds one JSON value per line, a string or
    an object with a "prompt" string; any other file holds one prompt per line (raw bytes,
    the line break removed). Blank lines are skipped. A missing file, a bad JSON line or a file
    without prompts is a UserError naming the line."""
    f = Path(path)
    if f.is_dir():
        raise UserError(f"prompts file is a folder: {path}")
    if not f.is_file():
        raise UserError(f"prompts file not found: {path}")
    try:
        raw = f.read_bytes()
    except OSError as e:
        raise UserError(f"cannot read prompts file {path}: {e.strerror or e}") from None
    prompts = []
    for n, line in enumerate(raw.split(b"\n"), 1):
        line = line.removesuffix(b"\r")
        if not line.strip():
            continue
        if f.suffix != ".jsonl":
            prompts.append(line)
            continue
        try:
            value = json.loads(line)
        except ValueError as e:
            raise UserError(f"{path}:{n}: not JSON ({e})") from None
        if isinstance(value, dict):
            value = value.get("prompt")
        if not isinstance(value, str):
            raise UserError(f"{path}:{n}: expected a JSON string or an object with a "
                            "\"prompt\" string")
        prompts.append(value.encode("utf-8"))
    if not prompts:
        raise UserError(f"no prompts in {path}")
    return prompts
