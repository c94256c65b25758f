"""Small helpers shared by the subcommands: turning user input into UserError, never a traceback."""
import json
from pathlib import Path

from bytelm.errors import UserError


def read_json_object(path: Path, what: str) -> dict:
    """The JSON object in ``path``; unreadable, invalid or non-object files are a UserError."""
    try:
        d = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise UserError(f"cannot read {what} {path}: {e}") from None
    if not isinstance(d, dict):
        raise UserError(f"cannot read {what} {path}: not a JSON object")
    return d
