"""Figures written as PNG files: learning curves of runs (``bytelm plot``) and the gate, memory
decay and ACT statistics of one checkpoint (``bytelm inspect``).

Uses matplotlib's object API (``Figure`` + Agg) and never pyplot, so nothing here touches the
global backend or needs a display.
"""
import logging
from pathlib import Path

import numpy as np

from bytelm.errors import UserError

log = logging.getLogger(__name__)


def _figure(rows: int, cols: int, size: tuple[float, float]):
    from matplotlib.figure import Figure
    fig = Figure(figsize=size, layout="constrained")
    return fig, fig.subplots(rows, cols, squeeze=False)


def _save(fig, out, dpi: int = 110) -> Path:
    out = Path(out)
    if out.is_dir():
        raise UserError(f"--out {out} is a folder; give a .png file name")
    if out.suffix.lower() != ".png":
        raise UserError(f"--out {out}: only .png is written")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi)
    log.debug("wrote %s", out)
    return out


def load_curves(run_dir) -> dict:
    """Train/val bpb and stage starts of one run, from its metrics.jsonl.

    Args:
        run_dir: a run directory (``train.out_dir``).
    Returns:
        {"name": folder name, "train": (steps, bytes, bpb), "val": (steps, bytes, bpb),
         "stages": [(step, bytes, name)]}; each triple holds three equal-length lists.
    Raises:
        UserError: no such folder, no metrics.jsonl, or no train/val records in it.
    """
    import math

    from bytelm.train.metrics import read_metrics
    d = Path(run_dir)
    if not d.is_dir():
        raise UserError(f"run directory not found: {run_dir}")
    if not (d / "metrics.jsonl").is_file():
        raise UserError(f"{run_dir} has no metrics.jsonl (not a run directory?)")
    train: dict[int, tuple[float, float]] = {}
    val: dict[int, tuple[float, float]] = {}
    stages: dict[int, tuple[float, str]] = {}
    for r in read_metrics(d):
        kind, step = r.get("kind"), r.get("step")
        if not isinstance(step, int):
            continue
        seen = float(r.get("bytes_seen", 0))
        if kind == "train" and isinstance(r.get("losses"), list) and step > 0:
            per_step = seen / step
            n = len(r["losses"])
            for j, loss in enumerate(r["losses"]):
                s = step - n + 1 + j
                train[s] = (s * per_step, loss / math.log(2))
        elif kind == "val" and isinstance(r.get("bpb"), (int, float)):
            val[step] = (seen, float(r["bpb"]))
        elif kind == "stage":
            stages[step] = (seen, str(r.get("name", r.get("stage", ""))))
    if not train and not val:
        raise UserError(f"{run_dir}/metrics.jsonl holds no train or val records yet")

    def cols(m):
        ks = sorted(m)
        return ks, [m[k][0] for k in ks], [m[k][1] for k in ks]
    return {"name": d.resolve().name, "train": cols(train), "val": cols(val),
            "stages": [(s, *stages[s]) for s in sorted(stages)]}


def plot_learning_curves(run_dirs: list, out) -> Path:
    """bpb vs step and vs bytes seen for every run (one colour each): train as a thin line, val
    as dots joined by a line, stage starts (``"stage"`` records, step 0 excluded) as dashed
    vertical lines labelled with the stage name.

    Args:
        run_dirs: run directories; the legend shows their folder names.
        out: PNG path.
    Returns:
        The PNG path.
    """
    runs = [load_curves(r) for r in run_dirs]
    fig, axes = _figure(1, 2, (13, 4.8))
    colors = [f"C{i % 10}" for i in range(len(runs))]
    for ax, xi, xlabel in ((axes[0, 0], 0, "step"), (axes[0, 1], 1, "bytes seen")):
        for run, c in zip(runs, colors):
            steps, seen, bpb = run["train"]
            x = steps if xi == 0 else seen
            if x:
                ax.plot(x, bpb, color=c, lw=0.8, alpha=0.55, label=f"{run['name']} train")
            vsteps, vseen, vbpb = run["val"]
            vx = vsteps if xi == 0 else vseen
            if vx:
                ax.plot(vx, vbpb, "o-", color=c, ms=3.5, lw=1.6, label=f"{run['name']} val")
            for step, b, name in run["stages"]:
                if step <= 0:
                    continue
                pos = step if xi == 0 else b
                ax.axvline(pos, color=c, ls="--", lw=0.9, alpha=0.8)
                ax.annotate(name, (pos, 1.0), xycoords=("data", "axes fraction"), color=c,
                            rotation=90, va="top", ha="right", fontsize=8)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("bits per byte")
        ax.grid(alpha=0.3)
    axes[0, 0].set_title("bpb vs step")
    axes[0, 1].set_title("bpb vs bytes seen")
    axes[0, 0].legend(fontsize=8)
    return _save(fig, out)


def plot_inspection(report: dict, out) -> Path:
    """Four panels of an AGIFORMER inspection (see ``bytelm.cli.inspect``): HybridBlock gate per
    layer, memory decay lambda per head, ACT steps and |dz| per patch position, ACT step counts.

    Args:
        report: {"title", "plasticity", "gate": {"mean", "std", "head_mean"} per layer,
            "decay": {"values": per-head 1-D arrays of lambda},
            "act": {"steps_pos", "dz_pos"} per patch position (or None), "steps_hist": {n: count}}.
        out: PNG path.
    Returns:
        The PNG path.
    """
    fig, axes = _figure(2, 2, (12, 8))
    fig.suptitle(report.get("title", ""), fontsize=10)
    g = report["gate"]
    ax = axes[0, 0]
    layers = np.arange(len(g["mean"]))
    ax.errorbar(layers, g["mean"], yerr=g["std"], fmt="o-", capsize=3, label="mean ± std")
    for i, heads in enumerate(g.get("head_mean") or []):
        ax.scatter(np.full(len(heads), i) + 0.08, heads, s=10, color="C1", alpha=0.7,
                   label="per head" if i == 0 else None)
    ax.set_ylim(0, 1)
    ax.set_xticks(layers)
    ax.set_xlabel("layer")
    ax.set_ylabel("gate g (1: attention, 0: linear attention)")
    ax.set_title("HybridBlock gate")
    ax.legend(fontsize=8)
    ax = axes[0, 1]
    vals = report["decay"]["values"]
    ax.boxplot(vals, showfliers=False)
    ax.set_xticks(np.arange(1, len(vals) + 1), [str(i) for i in range(len(vals))])
    ax.set_xlabel("memory head")
    ax.set_ylabel("lambda")
    ax.set_title(f"Hebbian memory decay (plasticity {report['plasticity']:.3g})")
    act = report.get("act")
    ax = axes[1, 0]
    if act:
        pos = np.arange(len(act["steps_pos"]))
        ax.plot(pos, act["steps_pos"], color="C0", label="ACT steps")
        ax.set_xlabel("patch position")
        ax.set_ylabel("ACT steps (batch mean)")
        if act.get("dz_pos") is not None:
            ax2 = ax.twinx()
            ax2.plot(pos, act["dz_pos"], color="C3", lw=0.9, label="|dz| (sum over steps)")
            ax2.set_ylabel("|dz|", color="C3")
        ax.set_title("reasoning block per position")
        ax = axes[1, 1]
        hist = act["steps_hist"]
        ax.bar(list(hist), list(hist.values()), width=0.6)
        ax.set_xticks(list(hist))
        ax.set_xlabel("ACT steps")
        ax.set_ylabel("positions")
        ax.set_title("ACT steps histogram")
    else:
        for a in (axes[1, 0], axes[1, 1]):
            a.text(0.5, 0.5, "no reasoning block", ha="center", va="center")
            a.set_axis_off()
    return _save(fig, out)


def plot_chunks(patches: list[bytes], out, title: str = "", width: int = 80) -> Path:
    """Draws text cut into patches or chunks: characters on a grid of ``width`` columns,
    alternate chunks shaded in two colours, a bar before each chunk's first byte."""
    text_cells = []  # (row, col, char, chunk index, starts a chunk)
    row = col = 0
    for i, p in enumerate(patches):
        for j, ch in enumerate(p.decode("utf-8", errors="replace")):
            if ch == "\n" or col >= width:
                row, col = row + 1, 0
                if ch == "\n":
                    continue
            text_cells.append((row, col, ch, i, j == 0))
            col += 1
    rows = row + 1
    fig, axes = _figure(1, 1, (width * 0.11 + 0.4, rows * 0.22 + 0.6))
    ax = axes[0, 0]
    from matplotlib.patches import Rectangle
    shades = ("#cde6f7", "#fbe3c4")
    for r, c, ch, i, first in text_cells:
        ax.add_patch(Rectangle((c, -r - 1), 1, 1, color=shades[i % 2], lw=0))
        if first:
            ax.plot([c, c], [-r - 1, -r], color="#c0392b", lw=1.0)
        ax.text(c + 0.5, -r - 0.5, ch if ch != " " else "\u2423" if first else " ",
                ha="center", va="center", family="monospace", fontsize=7)
    ax.set_xlim(0, width)
    ax.set_ylim(-rows, 0)
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=8, loc="left")
    return _save(fig, out, dpi=130)
