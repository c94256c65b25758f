"""Needle in a haystack: a key sentence hidden at a chosen depth of real text, asked for at the end.

A prompt of exactly ``length`` bytes is ``filler[:p] + needle + " " + filler[p:] + "\\n" + question``
where the filler is real text of a corpus file and p is the sentence or line start nearest to
``depth * len(filler)`` (depth 0: before the first byte; depth 1: before the last sentence that
starts in the filler). Scored two ways:

- exact: greedy (temperature 0) completion of the prompt; exact when its first bytes equal the
  answer (" 1453").
- rank: log p(answer | prompt) against the same answer with the key replaced by distractor keys of
  the same form (other 4-digit numbers); rank = number of distractor keys whose answer scores
  higher than the true key's (+ half the ties), 0 is best and n/2 is chance.
  margin = log p(true) - max log p(distractor).

Rank and exact alone cannot tell recall from the model's prior on the key: a model that never
reads the haystack but likes "1453" (a famous year) ranks it near 0 everywhere. So every length
also scores a no-needle control: the same construction without the needle sentence (filler of
the same total length, the same question at the end), ``control_prompt``. Per length the result
has the control's rank and log-probability (``control_rank``, ``control_logprob``), and per cell
``logprob_gain`` = logprob(with needle) - logprob(control of that length), in nats. Evidence of
recall is a rank below the control's and a positive gain; a model that ignores its context has
gain 0 and the control's rank in every cell. (Where a truncated prompt's window no longer holds
the needle, ``needle_in_window`` false, the control's window is shifted by the needle's bytes, so
the gain there is small noise around 0, not recall.)

Prompts longer than the model's context: a model with an unbounded recurrent state
(``state_capacity`` None, e.g. AGIFORMER) reads the whole prompt through ``step``
("recurrent"); a model with a bounded context (the Transformer) sees only its last
``context - len(answer) + 1`` bytes ("truncated"; ``needle_in_window`` says whether the needle
was still in view). Prompts that fit are scored with one batched forward ("full").
"""
import copy
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bytelm.errors import UserError

NEEDLES = {
    "en": ("The secret key is {key}.", "What is the secret key? The secret key is", " {key}"),
    "tr": ("Gizli şifre {key}.", "Gizli şifre nedir? Gizli şifre", " {key}"),
}
DEFAULT_KEY = "1453"
# relative to the shared data folder
DEFAULT_HAYSTACKS = {"en": "en/text/enwiki_test.txt", "tr": "tr/text/news.txt"}
LONG_MODES = ("auto", "recurrent", "truncate")


@dataclass(frozen=True)
class NeedleSpec:
    """The hidden sentence, the question, and the answer; needle and answer contain ``key``."""

    needle: str
    question: str
    answer: str
    key: str

    def __post_init__(self):
        for name in ("needle", "question", "answer", "key"):
            if not getattr(self, name):
                raise UserError(f"the needle's {name} is empty")
        if self.key not in self.needle or self.key not in self.answer:
            raise UserError(f"the key {self.key!r} must appear in the needle ({self.needle!r}) "
                            f"and in the answer ({self.answer!r})")


def needle_spec(lang: str = "en", needle: str | None = None, question: str | None = None,
                answer: str | None = None, key: str | None = None) -> NeedleSpec:
    """The default needle of ``lang`` ("en" or "tr"), any part replaced; "{key}" is filled in."""
    if lang not in NEEDLES:
        raise UserError(f"unknown needle language {lang!r} (choose from {', '.join(NEEDLES)})")
    key = key or DEFAULT_KEY
    n, q, a = NEEDLES[lang]
    return NeedleSpec(needle=(needle or n).replace("{key}", key), question=question or q,
                      answer=(answer or a).replace("{key}", key), key=key)


def distractor_keys(key: str, n: int, seed: int = 0) -> list[str]:
    """``n`` distinct keys of the same form as ``key`` (digits -> random digits, letters -> random
    letters of the same case, anything else kept), none equal to ``key``."""
    rng = np.random.default_rng(seed)
    pools = {"digit": "0123456789", "lower": "abcdefghijklmnopqrstuvwxyz",
             "upper": "ABCDEFGHIJKLMNOPQRSTUVWXYZ"}

    def pool(c):
        if c.isascii() and c.isdigit():
            return pools["digit"]
        if c.isascii() and c.islower():
            return pools["lower"]
        if c.isascii() and c.isupper():
            return pools["upper"]
        return None
    slots = [pool(c) for c in key]
    space = math.prod(len(p) for p in slots if p)
    if space - 1 < n:
        raise UserError(f"the key {key!r} allows only {space - 1} distractors, not {n}")
    out: list[str] = []
    while len(out) < n:
        cand = "".join(p[rng.integers(len(p))] if p else c for c, p in zip(key, slots))
        if cand != key and cand not in out:
            out.append(cand)
    return out


def load_filler(path, n_bytes: int, seed: int = 0, extra: int = 0) -> tuple[bytes, int]:
    """``n_bytes`` of real text from ``path`` (a file, or a folder whose ``*.txt`` files are read
    in name order) starting at a line start chosen by ``seed`` (0: the start; wrapping around if
    needed), cut at a UTF-8 character boundary and padded with spaces to exactly ``n_bytes``.
    ``extra`` > 0 returns that many more bytes of the same text (the start still chosen for
    ``n_bytes``, so ``fit(filler, n_bytes)`` is the filler without ``extra``).
    Returns (filler, start offset)."""
    p = Path(path)
    files = sorted(p.glob("*.txt")) if p.is_dir() else [p]
    try:
        data = b"\n".join(f.read_bytes() for f in files)
    except OSError as e:
        raise UserError(f"cannot read haystack {path}: {e.strerror or e}") from None
    if len(data) < 1000:
        raise UserError(f"haystack {path} is too small ({len(data)} bytes; need >= 1000)")
    rng = np.random.default_rng(seed)
    start = int(rng.integers(0, max(1, len(data) - n_bytes))) if seed else 0
    nl = data.find(b"\n", start)
    start = nl + 1 if start and 0 <= nl < len(data) - 1 else 0
    text = data[start:]
    while len(text) < n_bytes + extra:
        text += b"\n" + data
    return fit(text, n_bytes + extra), start


def fit(text: bytes, n_bytes: int) -> bytes:
    """The first ``n_bytes`` of ``text`` cut at a UTF-8 character boundary, padded with spaces."""
    cut = min(n_bytes, len(text))
    while 0 < cut < len(text) and (text[cut] & 0xC0) == 0x80:  # cut[...] continues a character
        cut -= 1
    return text[:cut] + b" " * (n_bytes - cut)


def sentence_starts(text: bytes) -> np.ndarray:
    """Offsets where a sentence or line starts: 0, after a newline, after '. ', '! ', '? '."""
    a = np.frombuffer(text, dtype=np.uint8)
    starts = [0]
    if len(a) > 1:
        starts += list(np.nonzero(a[:-1] == ord("\n"))[0] + 1)
    if len(a) > 2:
        end = np.isin(a[:-2], np.frombuffer(b".!?", dtype=np.uint8)) & (a[1:-1] == ord(" "))
        starts += list(np.nonzero(end)[0] + 2)
    return np.unique(np.array(starts, dtype=np.int64))


def overhead(spec: NeedleSpec) -> int:
    """Bytes of a prompt that are not filler."""
    return len((spec.needle + " ").encode()) + len(("\n" + spec.question).encode())


def build_prompt(filler: bytes, depth: float, spec: NeedleSpec) -> tuple[bytes, int]:
    """The prompt with the needle at the sentence start nearest to ``depth`` of the filler.

    Returns:
        (prompt of len(filler) + overhead(spec) bytes, byte offset of the needle in it).
    """
    if not 0.0 <= depth <= 1.0:
        raise UserError(f"depth must be in [0, 1], got {depth}")
    starts = sentence_starts(filler)
    p = int(starts[np.argmin(np.abs(starts - depth * len(filler)))])
    prompt = filler[:p] + (spec.needle + " ").encode() + filler[p:] + ("\n" + spec.question).encode()
    return prompt, p


def control_prompt(filler: bytes, spec: NeedleSpec) -> bytes:
    """The no-needle control: ``filler + "\\n" + question`` (no needle sentence). For a prompt of
    ``length`` bytes pass ``length - len(("\\n" + question).encode())`` bytes of filler."""
    return filler + ("\n" + spec.question).encode()


def default_lengths(context: int, reserve: int = 0) -> list[int]:
    """1 KB, doubling below the context, the context less ``reserve`` (room for the answer's
    bytes but the last, so the longest in-context prompt is still scored in full), then 2x and 4x
    the context."""
    out, L = [], 1024
    while L < context - reserve:
        out.append(L)
        L *= 2
    return sorted(set(out + [context - reserve, 2 * context, 4 * context]))


@torch.no_grad()
def score_prompt(model, prompt: bytes, spec: NeedleSpec, distractors: list[str],
                 long_mode: str = "auto") -> dict:
    """Greedy completion and distractor rank of one prompt.

    Returns:
        {"mode": "full" | "truncated" | "recurrent", "bytes_seen", "exact", "completion",
        "rank", "logprob", "logprob_margin"} (logprob in nats, of the true answer).
    """
    from bytelm.generate.batch import generate_bytes
    if long_mode not in LONG_MODES:
        raise UserError(f"long mode must be one of {', '.join(LONG_MODES)}, got {long_mode!r}")
    device = next(model.parameters()).device
    answer = spec.answer.encode()
    cands = [answer] + [spec.answer.replace(spec.key, d).encode() for d in distractors]
    L = max(len(c) for c in cands)
    ctx = model.config.context
    unbounded = model.state_capacity(model.init_state(1, device)) is None
    # the forward reads prompt + candidate minus its last byte
    if len(prompt) + L - 1 <= ctx:
        mode, used = "full", prompt
    elif long_mode == "recurrent" or (long_mode == "auto" and unbounded):
        if not unbounded:
            raise UserError(f"{model.config.family} has a bounded context ({ctx} bytes): "
                            "use --long truncate")
        mode, used = "recurrent", prompt
    else:
        mode, used = "truncated", prompt[len(prompt) - (ctx - L + 1):]

    if mode == "recurrent":
        state = model.init_state(1, device)
        logits, state = model.step(torch.tensor([list(used)], device=device), state)
        last = logits[:, -1]
        # greedy completion from a copy of the state
        s, cur, out = copy.deepcopy(state), last, []
        for _ in range(len(answer)):
            b = int(cur.argmax(-1))
            out.append(b)
            lg, s = model.step(torch.tensor([[b]], device=device), s)
            cur = lg[:, -1]
        completion = bytes(out)
        lps = []
        for c in cands:
            lp = float(torch.log_softmax(last[0].double(), -1)[c[0]])
            if len(c) > 1:
                # lg[0, i] predicts c[i + 1]
                lg, _ = model.step(torch.tensor([list(c[:-1])], device=device), copy.deepcopy(state))
                lpc = torch.log_softmax(lg[0].double(), -1)
                lp += float(sum(lpc[i, c[i + 1]] for i in range(len(c) - 1)))
            lps.append(lp)
    else:
        completion = generate_bytes(model, used, max_bytes=len(answer), temperature=0.0)
        x = torch.zeros(len(cands), len(used) + L, dtype=torch.long)
        for b, c in enumerate(cands):
            x[b, :len(used) + len(c)] = torch.tensor(list(used + c))
        # right padding never changes earlier positions of a causal model
        logits = model(x[:, :len(used) + L - 1].to(device)).logits.double()
        lp = torch.log_softmax(logits, -1)
        lps = [float(sum(lp[b, len(used) - 1 + i, c[i]] for i in range(len(c))))
               for b, c in enumerate(cands)]
    true, others = lps[0], np.array(lps[1:])
    return {"mode": mode, "bytes_seen": len(used), "exact": completion[:len(answer)] == answer,
            "completion": completion.decode("utf-8", errors="replace"),
            "rank": float((others > true).sum() + 0.5 * (others == true).sum()),
            "logprob": true, "logprob_margin": float(true - others.max()) if len(others) else 0.0}


def run_needle(model, spec: NeedleSpec, haystack, lengths: list[int], depths: list[float],
               n_distractors: int = 20, seed: int = 0, long_mode: str = "auto") -> dict:
    """Scores every (length, depth) cell; the JSON-able result (schema in cli/needle.py)."""
    over = overhead(spec)
    if min(lengths) <= over + 16:
        raise UserError(f"lengths must exceed {over + 16} bytes (needle and question take {over})")
    distractors = distractor_keys(spec.key, n_distractors, seed)
    q_len = len(("\n" + spec.question).encode())
    # the control's filler continues the same text where the needle's bytes were
    filler_all, start = load_filler(haystack, max(lengths) - over, seed, extra=over - q_len)
    cells, controls = [], {}
    for L in sorted(lengths):
        filler = fit(filler_all, L - over)
        control = control_prompt(fit(filler_all, L - q_len), spec)
        assert len(control) == L
        controls[L] = score_prompt(model, control, spec, distractors, long_mode)
        for d in depths:
            prompt, off = build_prompt(filler, d, spec)
            assert len(prompt) == L
            res = score_prompt(model, prompt, spec, distractors, long_mode)
            cells.append({"length": L, "depth": d, "actual_depth": off / len(filler),
                          "needle_offset": off,
                          "needle_in_window": off >= L - res["bytes_seen"], **res,
                          "logprob_gain": res["logprob"] - controls[L]["logprob"]})
    n = len(cells)
    by_len = []
    for L in sorted(lengths):
        cs, ctl = [c for c in cells if c["length"] == L], controls[L]
        by_len.append({"length": L, "mode": cs[0]["mode"],
                       "exact_acc": sum(c["exact"] for c in cs) / len(cs),
                       "mean_rank": float(np.mean([c["rank"] for c in cs])),
                       "control_rank": ctl["rank"], "control_logprob": ctl["logprob"],
                       "control_logprob_margin": ctl["logprob_margin"],
                       "control_exact": ctl["exact"], "control_completion": ctl["completion"],
                       "mean_logprob_gain": float(np.mean([c["logprob_gain"] for c in cs]))})
    cfg = model.config
    return {"model": {"family": cfg.family, "context": cfg.context, "n_params": model.n_params(),
                      "memory_rule": getattr(cfg, "memory_rule", None)},
            "needle": spec.needle, "question": spec.question, "answer": spec.answer,
            "key": spec.key, "distractors": distractors, "haystack": str(haystack),
            "haystack_offset": start, "long_mode": long_mode, "lengths": sorted(lengths),
            "depths": list(depths), "cells": cells,
            "summary": {"exact_acc": sum(c["exact"] for c in cells) / n,
                        "mean_rank": float(np.mean([c["rank"] for c in cells])),
                        "chance_rank": n_distractors / 2,
                        "control_rank": float(np.mean([b["control_rank"] for b in by_len])),
                        "control_exact_acc": sum(b["control_exact"] for b in by_len) / len(by_len),
                        "mean_logprob_gain": float(np.mean([c["logprob_gain"] for c in cells])),
                        "by_length": by_len}}


def plot_needle(result: dict, path) -> None:
    """Heat maps (depth x length) of exact greedy recall, of the distractor rank (the no-needle
    control's rank in each length's tick label), and of the log-probability gain over the
    control (only for results that have it)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    lens, depths = result["lengths"], result["depths"]
    n_d = len(result["distractors"])
    has_gain = all("logprob_gain" in c for c in result["cells"])
    keys = ["exact", "rank"] + (["gain"] if has_gain else [])
    grids = {k: np.full((len(depths), len(lens)), np.nan) for k in keys}
    modes = {}
    for c in result["cells"]:
        i, j = depths.index(c["depth"]), lens.index(c["length"])
        grids["exact"][i, j] = float(c["exact"])
        grids["rank"][i, j] = c["rank"]
        if "gain" in grids:
            grids["gain"][i, j] = c["logprob_gain"]
        modes[j] = c["mode"]
    control = {b["length"]: b["control_rank"] for b in result["summary"]["by_length"]
               if "control_rank" in b}
    width = max(5.0 * len(keys), 3 + 1.2 * len(keys) * len(lens))
    fig, axes = plt.subplots(1, len(keys), figsize=(width, 2 + 0.35 * len(depths)),
                             layout="constrained")
    gmax = float(np.nanmax(np.abs(grids["gain"]))) if "gain" in grids else 0.0
    gmax = gmax if gmax > 0 else 1.0
    specs = [("exact", "exact greedy completion", 0, 1, "RdYlGn"),
             ("rank", f"distractors (of {n_d}) above the key: 0 best, chance {n_d / 2:g}",
              0, n_d, "RdYlGn_r"),
             ("gain", "log p(key) gain over the no-needle control (nats)", -gmax, gmax, "RdBu")]
    for ax, (k, title, lo, hi, cmap) in zip(axes, specs):
        im = ax.imshow(grids[k], vmin=lo, vmax=hi, cmap=cmap, origin="upper", aspect="auto")
        for (r, col), v in np.ndenumerate(grids[k]):
            if not np.isnan(v):
                text = {"exact": f"{v:.0f}", "rank": f"{v:g}", "gain": f"{v:+.1f}"}[k]
                ax.text(col, r, text, ha="center", va="center", fontsize=7)
        labels = [f"{L}\n{modes.get(j, '')}" for j, L in enumerate(lens)]
        if k == "rank" and control:
            labels = [f"{lab}\ncontrol {control[L]:g}" if L in control else lab
                      for lab, L in zip(labels, lens)]
        ax.set_xticks(range(len(lens)), labels, fontsize=7)
        ax.set_yticks(range(len(depths)), [f"{d:.0%}" for d in depths], fontsize=7)
        inside = [j for j, L in enumerate(lens) if L <= result["model"]["context"]]
        if inside and inside[-1] < len(lens) - 1:
            ax.axvline(inside[-1] + 0.5, color="k", ls="--", lw=1)
        ax.set_xlabel("prompt length (bytes) / how it was read")
        ax.set_ylabel("needle depth")
        ax.set_title(title, fontsize=9)
        fig.colorbar(im, ax=ax)
    m = result["model"]
    fig.suptitle(f"needle: {result['needle']!r} - {m['family']}"
                 f"{'/' + m['memory_rule'] if m.get('memory_rule') else ''}, "
                 f"context {m['context']} (dashed line)", fontsize=9)
    fig.savefig(path, dpi=120)
    plt.close(fig)
