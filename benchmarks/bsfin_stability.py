"""BSFIN training stability on CPU: a small BSFIN (bsfin-35m's shape scaled down) trained at
high learning rates, with every step's loss, gradient norms by parameter group, the largest
|attention logit| of every attention (complex layers, decoder self- and cross-attention, the
encoder's pooling), attention entropies, activation sizes (the complex stack's residual, the
patch memories, the decoder's cross-attention output against the byte embedding) and the
suspect parameters (positional frequency scale and amplitude, head-mixing matrix, phases,
complex norm gains) logged, to find what grows first before a loss spike, and the stability
options (model.qk_norm, model.mem_norm) against the default.

    PYTHONPATH=src python benchmarks/bsfin_stability.py --out benchmarks/results/ablations/bsfin_stability_cpu.json
    # options: --lrs 4e-3,1e-2 --variants 'base=qk_norm=false,mem_norm=false;fix=' --spec 'PRESET[k=v,...]'
    #          --steps 300 --warmup 40 --batch 16 --seq 128 --jobs 2 (runs in parallel, 1 thread each)

The loop is Trainer.train_step in miniature: AdamW over ``model.param_groups`` (decay on
matrices only, ``bytelm.optim.build_optimizer``), linear warmup + cosine (``lr_factor``),
global-norm clipping (the logged grad norm is the pre-clip norm). Data: random windows of the
raw bytes of the training files of --source (memory-mapped in place, never copied). Another
family's preset as --spec (a control) logs loss and gradient norms only.

Writes the JSON (command, settings, every step of every run, a summary per run) and a PNG of
the curves beside it.
"""
import argparse
import json
import math
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from ablate_lm import parse_variants  # noqa: E402
from bytelm.config import OptimConfig# noqa: E402
from bytelm.overrides import apply_overrides# noqa: E402
from bytelm.experiments.recall import parse_model_spec  # noqa: E402
from bytelm.nn.loss import byte_cross_entropy  # noqa: E402
from bytelm.nn.rope import apply_rotary  # noqa: E402
from bytelm.optim import build_optimizer  # noqa: E402
from bytelm.registry import model_class, preset_config  # noqa: E402
from bytelm.train.schedule import lr_factor  # noqa: E402

# bsfin-35m's shape scaled down: complex width 2x the local width, 4 heads, dropout 0.1
SPEC = ("bsfin-tiny[d_local=64,d_model=128,n_layers=2,n_heads=4,d_memory=192,context=128,"
        "hash_buckets=4096,dropout=0.1]")
# explicit flags: the defaults are both on since the H100 runs (equal_time_30m/bsfin_en_babylon_qkmem.json)
OFF = "qk_norm=false,mem_norm=false"
VARIANTS = (f"base={OFF};qk_norm=qk_norm=true,mem_norm=false;mem_norm=qk_norm=false,mem_norm=true;"
            "qk_norm+mem_norm=qk_norm=true,mem_norm=true")

# parameter groups for gradient norms: (group, test on the parameter name), first match wins
GROUPS = [
    ("embed", lambda n: n.startswith("embed.")),
    ("enc.pool_query", lambda n: n == "encoder.query"),
    ("encoder", lambda n: n.startswith("encoder.")),
    ("to_complex", lambda n: n.startswith("to_complex.")),
    ("pos.freq_scale", lambda n: n == "pos.freq_scale"),
    ("pos.amp", lambda n: n == "pos.amp"),
    ("cx.attn.qk", lambda n: ".attn.q." in n or ".attn.k." in n),
    ("cx.attn.vo", lambda n: ".attn.v." in n or ".attn.o." in n),
    ("cx.attn.mix", lambda n: n.endswith(".attn.mix")),
    ("cx.attn.phi", lambda n: ".attn.phi_" in n),
    ("cx.attn.qk_norm", lambda n: ".attn.q_norm." in n or ".attn.k_norm." in n),
    ("cx.ffn", lambda n: n.startswith("layers.") and ".ffn." in n),
    ("cx.norm", lambda n: n.startswith("layers.") and ".norm" in n),
    ("cnorm", lambda n: n.startswith("cnorm.")),
    ("to_real+mem_proj", lambda n: n.startswith(("to_real.", "mem_proj.", "mem_norm."))),
    ("null", lambda n: n == "null"),
    ("dec.self", lambda n: n.startswith("decoder.") and ".self_attn." in n),
    ("dec.cross", lambda n: n.startswith("decoder.") and n.split(".")[2] in ("q", "kv", "proj", "q_norm",
                                                                             "k_norm")),
    ("dec.mlp", lambda n: n.startswith("decoder.") and ".mlp." in n),
    ("dec.norm", lambda n: n.startswith("decoder.") and ".norm" in n),
    ("head+norm", lambda n: n.startswith(("head.", "norm."))),
]


def group_of(name: str) -> str:
    for g, test in GROUPS:
        if test(name):
            return g
    return "other"


def train_files(source: Path) -> list[Path]:
    if source.is_file():
        return [source]
    files = sorted(p for p in source.iterdir() if p.is_file())
    train = [p for p in files if "train" in p.name]
    return train or files


class Windows:
    """Random (B, T+1) windows of the bytes of some files (memory-mapped, read in place)."""

    def __init__(self, files: list[Path], batch: int, seq: int, seed: int):
        self.arrs = [np.memmap(f, dtype=np.uint8, mode="r") for f in files]
        self.sizes = np.array([len(a) for a in self.arrs], dtype=np.float64)
        self.batch, self.seq = batch, seq
        self.rng = np.random.default_rng(seed)

    def next(self) -> torch.Tensor:
        rows = []
        for _ in range(self.batch):
            a = self.arrs[self.rng.choice(len(self.arrs), p=self.sizes / self.sizes.sum())]
            i = self.rng.integers(0, len(a) - self.seq - 1)
            rows.append(np.asarray(a[i:i + self.seq + 1]))
        return torch.from_numpy(np.stack(rows).astype(np.int64))


class Probe:
    """Forward hooks that record, per forward, the largest |attention logit| of every attention
    (complex layers, decoder self- and cross-attention, the encoder's pooling) and a few
    activation sizes. Logits are recomputed from the hooked inputs under no_grad."""

    def __init__(self, model):
        self.m, self.rec, self.handles = model, {}, []
        for li, layer in enumerate(model.layers):
            self.handles.append(layer.attn.register_forward_pre_hook(self._complex(li)))
        enc = model.encoder
        self.handles.append(enc.register_forward_pre_hook(self._enc_mask))
        self.handles.append(enc.pool_kv.register_forward_hook(self._pool))
        for li, layer in enumerate(model.decoder):
            self.handles.append(layer.register_forward_pre_hook(self._dec_in(li)))
            self.handles.append(layer.self_attn.qkv.register_forward_hook(self._dec_self(li)))
            self.handles.append(layer.q.register_forward_hook(self._dec_cross(li)))
            self.handles.append(layer.proj.register_forward_hook(self._dec_cross_out(li)))
        self.handles.append(model.cnorm.register_forward_pre_hook(self._stack_out))
        self.handles.append(model.mem_proj.register_forward_hook(self._mem))
        self._dec = {}

    def _complex(self, li):
        def hook(attn, args):
            r, i = (a.detach() for a in args)
            with torch.no_grad():
                s = attn_scores(attn, r, i)
                n = s.shape[-1]
                causal = torch.ones(n, n, dtype=torch.bool).tril()
                self.rec[f"logit_cx{li}"] = s.masked_fill(~causal, 0).abs().max().item()
                p = torch.softmax(s.masked_fill(~causal, float("-inf")), -1)
                ent = -(p * p.clamp_min(1e-30).log()).sum(-1)  # (B, H, N)
                self.rec[f"attn_entropy_cx{li}"] = ent[..., n // 2:].mean().item()
        return hook

    def _enc_mask(self, enc, args):
        h, mask = args
        L = h.shape[2]
        self._pool_mask = mask.reshape(-1, L) | (torch.arange(L) == 0)

    def _pool(self, lin, args, out):
        enc = self.m.encoder
        with torch.no_grad():
            BP, L, _ = out.shape
            k = out.detach().view(BP, L, 2, enc.H, enc.Dh)[:, :, 0]  # (BP, L, H, Dh)
            s = torch.einsum("blhd,hd->bhl", k.float(), enc.query.detach().view(enc.H, enc.Dh))
            s = s / math.sqrt(enc.Dh)
            self.rec["logit_pool"] = s.masked_fill(~self._pool_mask[:, None, :], 0).abs().max().item()
            self.rec["pool_query_norm"] = enc.query.detach().norm().item()

    def _dec_in(self, li):
        def hook(layer, args):
            x, mk, mv, visible = args[:4]
            self._dec[li] = (x.detach(), mk.detach(), visible)
            self.rec[f"dec_x_rms{li}"] = x.detach().float().pow(2).mean().sqrt().item()
        return hook

    def _dec_self(self, li):
        def hook(lin, args, out):
            layer = self.m.decoder[li]
            sa = layer.self_attn
            with torch.no_grad():
                B, L, _ = out.shape
                q, k, _ = out.detach().float().view(B, L, 3, sa.n_heads, sa.d_head).permute(2, 0, 3, 1, 4)
                cos, sin = sa.rotary(0, L)
                q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
                s = q @ k.transpose(-1, -2) / math.sqrt(sa.d_head)
                self.rec[f"logit_dself{li}"] = s.tril().abs().max().item()
        return hook

    def _dec_cross(self, li):
        def hook(lin, args, out):
            layer = self.m.decoder[li]
            _, mk, visible = self._dec[li]
            with torch.no_grad():
                B, T, _ = out.shape
                q = out.detach().float().view(B, T, layer.H, layer.Dh).transpose(1, 2)
                s = q @ mk.float().transpose(-1, -2) / math.sqrt(layer.Dh)  # (B, H, T, M)
                self.rec[f"logit_dcross{li}"] = s.masked_fill(~visible[:, None], 0).abs().max().item()
        return hook

    def _dec_cross_out(self, li):
        def hook(lin, args, out):
            self.rec[f"dec_cross_rms{li}"] = out.detach().float().pow(2).mean().sqrt().item()
        return hook

    def _stack_out(self, mod, args):
        r, i = args
        self.rec["stack_rms"] = (r.detach().float().pow(2) + i.detach().float().pow(2)).mean().sqrt().item()

    def _mem(self, lin, args, out):
        self.rec["mem_rms"] = out.detach().float().pow(2).mean().sqrt().item()


def attn_scores(attn, r, i):
    """Pre-softmax scores (B, H, N, N), fp32, of a complex attention for inputs (r, i) at
    positions 0.. (the layer's own ``attention_logits``)."""
    return attn.attention_logits(r, i).float()


def param_stats(model) -> dict:
    """Values of the suspect parameters."""
    out = {}
    f = model.pos.freq_scale.detach()
    out["freq_scale_max"] = f.abs().max().item()
    out["freq_scale_dev"] = (f - 1).abs().max().item()  # init 1
    out["pos_amp"] = model.pos.amp.detach().item()
    for li, layer in enumerate(model.layers):
        a = layer.attn
        eye = torch.eye(a.H)
        out[f"mix_norm{li}"] = a.mix.detach().norm().item()
        out[f"mix_dev{li}"] = (a.mix.detach() - eye).norm().item()
        out[f"phi_diff{li}"] = (a.phi_q - a.phi_k).detach().abs().max().item()
        out[f"wqk_norm{li}"] = math.sqrt(sum(p.detach().pow(2).sum().item() for p in
                                             (a.q.re.weight, a.q.im.weight, a.k.re.weight, a.k.im.weight)))
        out[f"norm1_gain{li}"] = torch.complex(layer.norm1.g_re, layer.norm1.g_im).detach().abs().max().item()
    out["cnorm_gain"] = torch.complex(model.cnorm.g_re, model.cnorm.g_im).detach().abs().max().item()
    out["null_norm"] = model.null.detach().norm().item()
    return out


def run_variant(name: str, spec: str, extra: dict, lr_peak: float, args, files) -> dict:
    torch.set_num_threads(args.threads)
    preset, over = parse_model_spec(spec)
    over = {**over, **extra}
    cfg = apply_overrides(preset_config(preset), over, "model")
    torch.manual_seed(args.seed)
    model = model_class(cfg)(cfg).train()
    bsfin = cfg.family == "bsfin"  # other families (a control) get loss and grad norms only
    probe = Probe(model) if bsfin else None
    ocfg = OptimConfig(lr=lr_peak, betas=tuple(args.betas), weight_decay=args.wd,
                       warmup_steps=args.warmup, grad_clip=args.clip)
    opt = build_optimizer(model, ocfg)
    names = {id(p): n for n, p in model.named_parameters()}
    data = Windows(files, args.batch, args.seq, args.seed)
    steps, t0 = [], time.time()
    for step in range(args.steps):
        lr = lr_peak * lr_factor(step, args.steps, args.warmup, "cosine", 0.1)
        for g in opt.param_groups:
            g["lr"] = lr
        x = data.next()
        if probe is not None:
            probe.rec = {}
        out = model(x[:, :-1])
        loss = byte_cross_entropy(out.logits, x[:, 1:])
        loss.backward()
        sq: dict[str, float] = {}
        for p in model.parameters():
            if p.grad is not None:
                g = group_of(names[id(p)])
                sq[g] = sq.get(g, 0.0) + p.grad.detach().float().pow(2).sum().item()
        params = [p for p in model.parameters() if p.grad is not None]
        gnorm = torch.nn.utils.clip_grad_norm_(params, args.clip if args.clip > 0 else float("inf")).item()
        opt.step()
        opt.zero_grad(set_to_none=True)
        lg = out.logits.detach()
        rec = {"step": step + 1, "loss": loss.item(), "bpb": loss.item() / math.log(2), "lr": lr,
               "grad_norm": gnorm, **{f"gn.{k}": math.sqrt(v) for k, v in sorted(sq.items())},
               **(probe.rec if bsfin else {}), **(param_stats(model) if bsfin else {}),
               "out_logit_max": lg.abs().max().item(),
               "out_lse": torch.logsumexp(lg, -1).mean().item(),
               **({"patches_per_row": float(out.stats["patches_per_row"])} if bsfin else {})}
        if bsfin:  # the first decoder layer's cross-attention output over the byte embedding
            rec["cross_over_embed"] = rec["dec_cross_rms0"] / max(rec["dec_x_rms0"], 1e-12)
        steps.append(rec)
        if not math.isfinite(rec["loss"]):
            break
        if (step + 1) % args.print_every == 0:
            extra = (f"max cx logit {max_of(rec, 'logit_cx'):.1f} dcross {max_of(rec, 'logit_dcross'):.1f} "
                     f"freq_dev {rec['freq_scale_dev']:.3f} " if bsfin else "")
            print(f"[{name}] step {step + 1} bpb {rec['bpb']:.3f} gnorm {gnorm:.3f} {extra}"
                  f"({time.time() - t0:.0f} s)", flush=True)
        if args.time_limit and time.time() - t0 > args.time_limit:
            print(f"[{name}] time limit at step {step + 1}", flush=True)
            break
    return {"name": name, "lr": lr_peak, "spec": spec, "overrides": extra, "n_params": model.n_params(),
            "wall_s": time.time() - t0, "summary": summarize(steps, args.spike), "steps": columns(steps)}


def columns(steps: list[dict]) -> dict[str, list]:
    """Per-step records as one list per field (4 significant digits; loss and lr left out:
    loss = bpb * ln 2, lr follows the schedule), the JSON's compact form."""
    def sig(v):
        return float(f"{v:.4g}") if isinstance(v, float) and math.isfinite(v) else v
    keys = [k for k in steps[0] if k not in ("loss", "lr")] if steps else []
    return {k: [sig(r.get(k)) for r in steps] for k in keys}


def max_of(rec: dict, prefix: str) -> float:
    """Largest value of the fields named prefix* (e.g. over layers); nan if none."""
    vals = [v for k, v in rec.items() if k.startswith(prefix)]
    return max(vals) if vals else float("nan")


def summarize(steps: list[dict], spike: float) -> dict:
    """Best and final bpb, the first spike (bpb above the best so far by ``spike``), the first
    step each suspect crossed a threshold, and the extremes of the logged quantities."""
    best, first_spike = float("inf"), None
    for r in steps:
        if first_spike is None and r["bpb"] > best + spike:
            first_spike = {"step": r["step"], "bpb": r["bpb"], "best_before": best}
        best = min(best, r["bpb"])

    def first(test):
        return next((r["step"] for r in steps if test(r)), None)

    def mean(a, b):
        xs = [r["bpb"] for r in steps if a <= r["step"] <= b]
        return sum(xs) / len(xs) if xs else None

    n = len(steps)
    out = {"best_bpb": best, "first_spike": first_spike,
           "bpb_mean_last100": mean(n - 99, n), "bpb_mean_by_50": {
               f"{a}-{a + 49}": mean(a, a + 49) for a in range(1, n + 1, 50)},
           "max_grad_norm_after_50": max((r["grad_norm"] for r in steps[50:]), default=None),
           "steps_run": n}
    if "logit_cx0" in steps[0]:
        out.update({
            "max_logit_cx": max(max_of(r, "logit_cx") for r in steps),
            "min_attn_entropy_cx": min(min(v for k, v in r.items() if k.startswith("attn_entropy_cx"))
                                       for r in steps),
            "max_logit_dcross": max(max_of(r, "logit_dcross") for r in steps),
            "max_mem_rms": max(r["mem_rms"] for r in steps),
            "max_cross_over_embed": max(r["cross_over_embed"] for r in steps),
            "max_freq_scale_dev": max(r["freq_scale_dev"] for r in steps),
            "first_step_logit_cx_over_10": first(lambda r: max_of(r, "logit_cx") > 10),
            "first_step_cross_over_embed_over_10": first(lambda r: r["cross_over_embed"] > 10),
            "first_step_grad_norm_over_5": first(lambda r: r["grad_norm"] > 5)})
    return out


def plot(result: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    panels = [("bpb", "train bpb", False),
              ("grad_norm", "grad norm (pre-clip)", True),
              ("logit_cx", "max |complex attention logit| (over layers)", True),
              ("cross_over_embed", "decoder: cross-attention output rms / byte embedding rms", True),
              ("freq_scale_dev", "max |freq_scale - 1|", False)]
    fig, axes = plt.subplots(len(panels), 1, figsize=(9, 2.8 * len(panels)), sharex=True)
    names = sorted({r["name"] for r in result["runs"]})
    lrs = sorted({r["lr"] for r in result["runs"]})
    colors = {n: f"C{i}" for i, n in enumerate(names)}
    styles = dict(zip(lrs, ["-", "--", ":", "-."]))
    for ax, (key, title, logy) in zip(axes, panels):
        for run in result["runs"]:
            cols = run["steps"]
            xs = cols["step"]
            ys = [max_of({k: v[j] for k, v in cols.items() if k.startswith(key)}, key)
                  for j in range(len(xs))]
            ax.plot(xs, ys, color=colors[run["name"]], ls=styles.get(run["lr"], "-"), lw=0.9,
                    label=f"{run['name']} lr {run['lr']:g}")
        ax.set_title(title, fontsize=9)
        if logy:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, ncol=2)
    axes[0].set_ylim(top=min(axes[0].get_ylim()[1], 9))
    axes[-1].set_xlabel("step")
    s = result["settings"]
    fig.suptitle(f"BSFIN stability on CPU: batch {s['batch']} x {s['seq']} bytes, AdamW betas "
                 f"{s['betas'][0]}/{s['betas'][1]}, wd {s['wd']}, clip {s['clip']}, warmup {s['warmup']}",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)


def _rounded(x):
    """Floats to 4 significant digits (the per-step curves are 8 runs x ~60 series x steps)."""
    if isinstance(x, float):
        return float(f"{x:.4g}")
    if isinstance(x, dict):
        return {k: _rounded(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_rounded(v) for v in x]
    return x


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source", default="../shared/data/en/text", help="text file or folder")
    ap.add_argument("--spec", default=SPEC, help="PRESET[key=value,...] of the base model")
    ap.add_argument("--variants", default=VARIANTS,
                    help="';'-separated NAME=key=value,key=value (model overrides on top of --spec)")
    ap.add_argument("--lrs", default="4e-3,1e-2", help="comma-separated peak learning rates")
    ap.add_argument("--betas", type=float, nargs=2, default=(0.9, 0.95))
    ap.add_argument("--wd", type=float, default=0.1)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--warmup", type=int, default=40)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch threads per run")
    ap.add_argument("--jobs", type=int, default=2, help="runs in parallel (processes)")
    ap.add_argument("--spike", type=float, default=0.5, help="bpb rise over the best that counts as a spike")
    ap.add_argument("--time-limit", type=float, default=0, help="seconds per variant (0: none)")
    ap.add_argument("--print-every", type=int, default=25)
    ap.add_argument("--out", default=None, help="result JSON (a PNG of the curves goes beside it)")
    args = ap.parse_args()
    files = train_files(Path(args.source))
    jobs = []
    for lr in (float(v) for v in args.lrs.split(",")):
        for name, extra in parse_variants(args.variants, prefix=""):
            jobs.append((name, args.spec, extra, lr, args, files))
    if args.jobs > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor
        with ProcessPoolExecutor(args.jobs, mp_context=mp.get_context("spawn")) as ex:
            runs = list(ex.map(run_variant, *zip(*jobs)))
    else:
        runs = [run_variant(*j) for j in jobs]
    for run in runs:
        s = run["summary"]
        print(json.dumps({"name": run["name"], "lr": run["lr"], "bpb_mean_last100": s["bpb_mean_last100"],
                          "best_bpb": s["best_bpb"], "max_logit_cx": s.get("max_logit_cx"),
                          "max_cross_over_embed": s.get("max_cross_over_embed")}), flush=True)
    result = {"benchmark": "bsfin_stability_cpu",
              "command": "PYTHONPATH=src python " + " ".join(
                  [sys.argv[0]] + [f"'{a}'" if any(c in a for c in "[];= ") else a for a in sys.argv[1:]]),
              "settings": {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(args).items()},
              "files": [str(f) for f in files], "torch": torch.__version__,
              "machine": platform.processor() or platform.machine(), "runs": runs}
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(_rounded(result), separators=(",", ":")) + "\n")
        plot(result, out.with_suffix(".png"))
        print(f"wrote {out} and {out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
