"""Multi-query associative recall (MQAR, Zoology) in bytes: generator, training, scoring.

One example is one line of exactly ``seq_len`` bytes:

    k7f=v3a;k1c=v9d;...;<filler>|k1c=v9d;k7f=v3a;...\\n

``n_pairs`` distinct keys (``key_len`` characters of ``ALPHABET`` after ``k``) are bound to random
values (``value_len`` characters after ``v``); filler bytes (``FILLER``, disjoint from the key and
value characters) pad the context, so the distance between a binding and its query grows with
``seq_len``; after ``|`` every key is queried once, in random order, and repeated with its value.
The value characters of the query part are fully determined by the context and are the only bytes
scored: accuracy is the teacher-forced argmax over them (``byte_acc``), the fraction of queries
with every value character right (``query_acc``), and the mean probability of the right value
character (``value_prob``; 1/256 for a uniform model, 1/16 at chance over the alphabet).
Models train from scratch on fresh examples every step (``train_recall``).
"""
import logging
import math
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from bytelm.errors import UserError
from bytelm.models.base import ByteLM, ModelConfig, ModelOutput

log = logging.getLogger(__name__)

ALPHABET = "0123456789abcdef"
"""characters of keys and values."""
FILLER = "ghijlmnopqrstuwxyz"
"""filler characters: no key/value character, no 'k', 'v', '=', ';', '|' or newline."""
# with filler, one pair in the context and its query: "k" key "=" "v" value ";" twice, plus "|\n"
_FIXED = 2


@dataclass(kw_only=True)
class RecallTask:
    """Shape of the generated examples."""

    key_len: int = 2
    """characters of a key after its 'k' (16**key_len distinct keys)."""
    value_len: int = 2
    """characters of a value after its 'v'; these are the scored bytes."""

    def __post_init__(self):
        if not 1 <= self.key_len <= 8 or not 1 <= self.value_len <= 8:
            raise UserError("key_len and value_len must be in 1..8")

    @property
    def pair_bytes(self) -> int:
        return self.key_len + self.value_len + 4

    def max_pairs(self, seq_len: int) -> int:
        """Most pairs (each also queried) that fit in ``seq_len`` bytes."""
        n = (seq_len - _FIXED) // (2 * self.pair_bytes)
        return min(n, len(ALPHABET) ** self.key_len)


def make_batch(rng: np.random.Generator, task: RecallTask, batch_size: int, n_pairs: int,
               seq_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch_size`` examples of exactly ``seq_len`` bytes with ``n_pairs`` pairs each.

    Returns:
        x (B, seq_len) uint8, and value_pos (B, n_pairs, value_len) long: the positions of the
        value characters of the query part (the scored bytes).
    Raises:
        UserError: the pairs and queries do not fit in ``seq_len``.
    """
    if not 1 <= n_pairs <= task.max_pairs(seq_len):
        raise UserError(f"{n_pairs} pairs do not fit in {seq_len} bytes (at most "
                        f"{task.max_pairs(seq_len)} with key_len={task.key_len}, "
                        f"value_len={task.value_len})")
    alpha = np.frombuffer(ALPHABET.encode(), dtype=np.uint8)
    filler = np.frombuffer(FILLER.encode(), dtype=np.uint8)
    n_keys = len(ALPHABET) ** task.key_len
    pb = task.pair_bytes
    x = np.empty((batch_size, seq_len), dtype=np.uint8)
    pos = np.empty((batch_size, n_pairs, task.value_len), dtype=np.int64)
    q_start = seq_len - 1 - n_pairs * pb  # first byte of the query part (after '|')
    for b in range(batch_size):
        ids = rng.choice(n_keys, size=n_pairs, replace=False)
        keys = np.stack([alpha[(ids // len(ALPHABET) ** i) % len(ALPHABET)]
                         for i in reversed(range(task.key_len))], 1)  # (n, key_len)
        vals = alpha[rng.integers(0, len(ALPHABET), size=(n_pairs, task.value_len))]

        def pairs(order):
            rows = [np.concatenate([[ord("k")], keys[i], [ord("="), ord("v")], vals[i], [ord(";")]])
                    for i in order]
            return np.concatenate(rows).astype(np.uint8)

        ctx = pairs(range(n_pairs))
        order = rng.permutation(n_pairs)
        fill = filler[rng.integers(0, len(filler), size=q_start - 1 - len(ctx))]
        x[b] = np.concatenate([ctx, fill, [ord("|")], pairs(order), [ord("\n")]])
        # value characters of query j sit after "k" key "=v"
        pos[b] = q_start + np.arange(n_pairs)[:, None] * pb + 3 + task.key_len + \
            np.arange(task.value_len)[None, :]
    return torch.from_numpy(x), torch.from_numpy(pos)


def value_mask(value_pos: torch.Tensor, seq_len: int) -> torch.Tensor:
    """(B, seq_len - 1) bool over the targets x[:, 1:], True at the scored value bytes."""
    mask = torch.zeros(value_pos.shape[0], seq_len, dtype=torch.bool)
    mask.scatter_(1, value_pos.flatten(1), True)
    return mask[:, 1:]


def score_values(logits: torch.Tensor, x: torch.Tensor, value_pos: torch.Tensor) -> dict:
    """Teacher-forced scores of the value bytes only.

    Args:
        logits: (B, T, 256); logits[:, i] predicts x[:, i + 1].
        x: (B, T) the example bytes.
        value_pos: (B, Q, Vl) positions of the scored bytes (all >= 1).
    Returns:
        sums {"n_values", "n_queries", "byte_correct", "query_correct", "value_prob"} (to be
        divided by the counts; ``summarise`` does it).
    """
    B, Q, Vl = value_pos.shape
    pred_pos = (value_pos - 1).flatten(1).to(logits.device)  # (B, Q * Vl)
    lg = logits.float().gather(1, pred_pos[..., None].expand(-1, -1, logits.shape[-1]))
    target = x.to(logits.device).long().gather(1, pred_pos + 1)  # (B, Q * Vl)
    correct = (lg.argmax(-1) == target).view(B, Q, Vl)
    prob = torch.softmax(lg, -1).gather(-1, target[..., None])[..., 0]
    return {"n_values": B * Q * Vl, "n_queries": B * Q,
            "byte_correct": int(correct.sum()), "query_correct": int(correct.all(-1).sum()),
            "value_prob": float(prob.double().sum())}


def summarise(s: dict) -> dict:
    return {"n_queries": s["n_queries"], "byte_acc": s["byte_correct"] / s["n_values"],
            "query_acc": s["query_correct"] / s["n_queries"],
            "value_prob": s["value_prob"] / s["n_values"]}


def default_grid(task: RecallTask, context: int, seq_lens=None, pair_counts=None):
    """(seq_len, n_pairs) cells: lengths 64, 128, ... up to ``context`` (or ``seq_lens``) times
    pair counts 1, 2, 4, ... (or ``pair_counts``) that fit."""
    if seq_lens is None:
        seq_lens = [L for L in (2 ** i for i in range(6, 20)) if L <= context] or [context]
    if max(seq_lens) > context:
        raise UserError(f"recall length {max(seq_lens)} exceeds the model context {context}")
    cells = []
    for L in seq_lens:
        counts = pair_counts or [2 ** i for i in range(20)]
        cells += [(L, n) for n in counts if 1 <= n <= task.max_pairs(L)]
    if not cells:
        raise UserError("no (length, pairs) cell fits: use longer --lengths or fewer --pairs")
    return cells


@torch.no_grad()
def evaluate_recall(model, task: RecallTask, cells, n_examples: int = 64, batch_size: int = 32,
                    seed: int = 1234, precision: str = "auto") -> list[dict]:
    """Accuracy on the query values for every (seq_len, n_pairs) cell.

    Each cell draws ``n_examples`` examples from its own generator (seeded by seed, seq_len and
    n_pairs), so every model is scored on the same examples.
    Returns:
        [{"seq_len", "n_pairs", "n_queries", "byte_acc", "query_acc", "value_prob"}, ...].
    """
    from bytelm.precision import autocast_ctx
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = []
    for L, n in cells:
        rng = np.random.default_rng([seed, L, n])
        tot = None
        for start in range(0, n_examples, batch_size):
            x, pos = make_batch(rng, task, min(batch_size, n_examples - start), n, L)
            with autocast_ctx(device, precision):
                logits = model(x.to(device)).logits
            s = score_values(logits, x, pos)
            tot = s if tot is None else {k: tot[k] + s[k] for k in tot}
        out.append({"seq_len": L, "n_pairs": n, **summarise(tot)})
    model.train(was_training)
    return out


def train_recall(cfg, task: RecallTask, cells, loss_on: str = "all", log_every: int = 50,
                 progress: bool = False):
    """Trains ``cfg.model`` from scratch on fresh recall examples (one cell drawn per step).

    Args:
        cfg: a RunConfig (model, optim, train.steps/batch_size/seed/device/precision are used).
        task: the example shape.
        cells: (seq_len, n_pairs) cells; each step draws a length among them and a pair count
            uniformly from 1..max_pairs(length).
        loss_on: "all" (next-byte loss on every byte, as a language model) or "values".
    Returns:
        (model, history) with history [{"step", "loss", "seq_len", "n_pairs"}, ...] every
        ``log_every`` steps.
    """
    from bytelm.optim import build_optimizer
    from bytelm.registry import create_model
    from bytelm.train.distributed import pick_device
    from bytelm.train.loop import NonFiniteLossError
    from bytelm.train.schedule import lr_factor
    from bytelm.train.step import StepConfig, TrainStep
    if loss_on not in ("all", "values"):
        raise UserError(f"loss must be all or values, got {loss_on!r}")
    tc, oc = cfg.train, cfg.optim
    device = pick_device(tc.device)
    torch.manual_seed(tc.seed)
    model = create_model(cfg.model).to(device).train()
    step_fn = TrainStep(model, build_optimizer(model, oc),
                        StepConfig(precision=tc.precision, grad_clip=oc.grad_clip))
    rng = np.random.default_rng(tc.seed)
    lengths = sorted({L for L, _ in cells})
    history, t0 = [], time.perf_counter()
    it = range(tc.steps)
    if progress:
        from tqdm import tqdm
        it = tqdm(it, desc=cfg.preset, unit="step", dynamic_ncols=True)
    for step in it:
        lr = oc.lr * lr_factor(step, tc.steps, oc.warmup_steps, oc.schedule, oc.min_lr_ratio,
                               oc.wsd_decay_frac)
        L = int(rng.choice(lengths))
        n = int(rng.integers(1, task.max_pairs(L) + 1))
        x, pos = make_batch(rng, task, tc.batch_size, n, L)
        x = x.to(device)
        mask = value_mask(pos, L).to(device) if loss_on == "values" else None
        res = step_fn(lr, lambda _: step_fn.lm_loss(x, mask))
        if (step + 1) % log_every == 0 or step + 1 == tc.steps:
            val = res.loss.item()
            if not math.isfinite(val):
                raise NonFiniteLossError(f"non-finite recall loss at step {step + 1} "
                                         f"({cfg.preset}); lower --optim.lr")
            history.append({"step": step + 1, "loss": val, "seq_len": L, "n_pairs": n,
                            "time_s": time.perf_counter() - t0})
            log.info("%s step %d loss %.4f", cfg.preset, step + 1, val)
    return model.eval(), history


def parse_model_spec(spec: str) -> tuple[str, dict[str, str]]:
    """'agiformer-tiny[memory_rule=delta,window=4]' -> ('agiformer-tiny', {...})."""
    spec = spec.strip()
    if "[" not in spec:
        return spec, {}
    name, rest = spec.split("[", 1)
    if not rest.endswith("]"):
        raise UserError(f"bad model spec {spec!r}: expected PRESET[key=value,...]")
    over = {}
    for kv in filter(None, rest[:-1].split(",")):
        if "=" not in kv:
            raise UserError(f"bad model spec {spec!r}: {kv!r} is not key=value")
        k, v = kv.split("=", 1)
        over[k.strip()] = v.strip()
    return name, over


def split_specs(text: str) -> list[str]:
    """Splits a comma-separated list of model specs, keeping commas inside [...]."""
    out, depth, cur = [], 0, ""
    for ch in text:
        depth += (ch == "[") - (ch == "]")
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    out.append(cur)
    return [s.strip() for s in out if s.strip()]


class InductionOracle(ByteLM):
    """Reference model with no parameters to learn: predicts the byte that followed the most
    recent longest earlier match of the current suffix (an exact induction head). It solves
    recall and needle prompts perfectly, so it checks scorers end to end (a scorer that does not
    give it 100% is wrong). Unbounded context; O(T^2) time, for tests and small prompts.
    """

    LOGIT = 30.0

    def __init__(self, context: int = 1 << 20):
        super().__init__(ModelConfig(family="oracle", context=context))
        self._anchor = nn.Parameter(torch.zeros(()))  # a device for callers that ask for one

    @staticmethod
    def predictions(seq: np.ndarray) -> np.ndarray:
        """(T,) predicted next byte for every position, -1 where nothing matched."""
        T = len(seq)
        pred = np.full(T, -1, dtype=np.int64)
        m_prev = np.zeros(0, dtype=np.int64)  # common-suffix lengths of (i - 1, j), j < i - 1
        for i in range(T):
            m = np.where(seq[:i] == seq[i], np.concatenate([[0], m_prev]) + 1, 0)
            if i and m.max() > 0:
                j = i - 1 - int(np.argmax(m[::-1]))  # the most recent longest match
                pred[i] = seq[j + 1]
            m_prev = m
        return pred

    def _logits(self, rows: list[np.ndarray], last: int) -> torch.Tensor:
        out = torch.zeros(len(rows), last, 256)
        for b, seq in enumerate(rows):
            pred = self.predictions(seq)[len(seq) - last:]
            hit = pred >= 0
            out[b, torch.from_numpy(np.nonzero(hit)[0]), torch.from_numpy(pred[hit])] = self.LOGIT
        return out.to(self._anchor.device)

    def forward(self, x: torch.Tensor) -> ModelOutput:
        rows = [r.cpu().numpy().astype(np.int64) for r in x]
        return ModelOutput(logits=self._logits(rows, x.shape[1]))

    def init_state(self, batch_size: int, device=None):
        return [np.zeros(0, dtype=np.int64) for _ in range(batch_size)]

    def step(self, x: torch.Tensor, state):
        state = [np.concatenate([s, r.cpu().numpy().astype(np.int64)]) for s, r in zip(state, x)]
        return self._logits(state, x.shape[1]), state

    def flops_per_byte(self, seq_len=None) -> float:
        return 0.0


# --- the experiment: several models, one task, one grid --------------------------------------

def run_recall(specs: list[str], task: RecallTask, out_dir, steps: int, overrides: dict | None = None,
               seq_lens=None, pair_counts=None, n_examples: int = 64, loss_on: str = "all",
               seed: int = 1234, progress: bool = False) -> dict:
    """Trains every model spec from scratch on recall and scores it on one grid.

    Args:
        specs: model specs "PRESET[key=value,...]".
        task: the example shape.
        out_dir: where each trained model is saved (``<out_dir>/models/<i>-<preset>``).
        steps: training steps per model.
        overrides: dotted run-config overrides for every model ("optim.lr", "train.batch_size",
            "model.context", ...); a spec's own keys override "model.*".
        seq_lens, pair_counts: the grid (default: ``default_grid`` up to the smallest context).
        n_examples: examples per cell.
        loss_on: "all" or "values" (see ``train_recall``).
        seed: evaluation examples' seed (training uses train.seed).
    Returns:
        the JSON-able result (see cli/recall.py for the schema).
    """
    from pathlib import Path

    from bytelm.options import build_run_config
    out_dir = Path(out_dir)
    cfgs = []
    for spec in specs:
        preset, own = parse_model_spec(spec)
        over = {"train.steps": steps, **(overrides or {}), **{f"model.{k}": v for k, v in own.items()}}
        cfgs.append((spec, build_run_config(preset, over)))
    context = min(c.model.context for _, c in cfgs)
    cells = default_grid(task, context, seq_lens, pair_counts)
    models = []
    for i, (spec, cfg) in enumerate(cfgs):
        model, history = train_recall(cfg, task, cells, loss_on=loss_on, progress=progress,
                                      log_every=max(1, min(50, steps // 10)))
        ckpt = out_dir / "models" / f"{i}-{cfg.preset}"
        model.save(ckpt)
        res = evaluate_recall(model, task, cells, n_examples=n_examples, seed=seed,
                              precision=cfg.train.precision)
        models.append({
            "spec": spec, "preset": cfg.preset, "family": cfg.model.family,
            "memory_rule": getattr(cfg.model, "memory_rule", None), "context": cfg.model.context,
            "n_params": model.n_params(), "checkpoint": str(ckpt), "history": history,
            "final_loss": history[-1]["loss"] if history else None,
            "train_time_s": history[-1]["time_s"] if history else None,
            "mean_query_acc": float(np.mean([c["query_acc"] for c in res])),
            "mean_byte_acc": float(np.mean([c["byte_acc"] for c in res])),
            "cells": res})
        del model
    first = cfgs[0][1]
    return {"task": {"key_len": task.key_len, "value_len": task.value_len, "alphabet": ALPHABET,
                     "filler": FILLER,
                     "format": "k<key>=v<value>;... <filler> |k<key>=v<value>;...\\n",
                     "scored": "value characters of the query part, teacher-forced argmax",
                     "chance_byte_acc": 1 / len(ALPHABET),
                     "chance_query_acc": len(ALPHABET) ** -task.value_len},
            "train": {"steps": steps, "batch_size": first.train.batch_size, "loss": loss_on,
                      "lr": first.optim.lr, "seed": first.train.seed,
                      "overrides": {k: str(v) for k, v in (overrides or {}).items()}},
            "eval": {"n_examples": n_examples, "seed": seed,
                     "seq_lens": sorted({L for L, _ in cells}),
                     "cells": [list(c) for c in cells]},
            "models": models}


def plot_recall(result: dict, path) -> None:
    """One heat map per model: query accuracy over (pairs x length)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    models = result["models"]
    lens = result["eval"]["seq_lens"]
    pairs = sorted({n for _, n in result["eval"]["cells"]})
    fig, axes = plt.subplots(1, len(models), squeeze=False, layout="constrained",
                             figsize=(1.5 + max(3.0, 0.8 * len(lens)) * len(models),
                                      1.8 + 0.4 * len(pairs)))
    for i, (ax, m) in enumerate(zip(axes[0], models)):
        grid = np.full((len(pairs), len(lens)), np.nan)
        for c in m["cells"]:
            grid[pairs.index(c["n_pairs"]), lens.index(c["seq_len"])] = c["query_acc"]
        im = ax.imshow(grid, vmin=0, vmax=1, cmap="viridis", origin="lower", aspect="auto")
        for (r, k), v in np.ndenumerate(grid):
            if not np.isnan(v):
                ax.text(k, r, f"{v:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if v < 0.5 else "black")
        ax.set_xticks(range(len(lens)), [str(L) for L in lens])
        ax.set_yticks(range(len(pairs)), [str(n) for n in pairs])
        ax.set_xlabel("sequence length (bytes)")
        if i == 0:
            ax.set_ylabel("key-value pairs")
        ax.set_title(f"{m['spec']}\n{m['n_params'] / 1e6:.2f}M params", fontsize=8)
    fig.colorbar(im, ax=axes[0].tolist(), label="query accuracy (all value bytes right)")
    fig.savefig(path, dpi=120)
    plt.close(fig)
