"""Where hnet's compiled single-stream decoder diverges from the eager one (issue #21).

    python benchmarks/decode_diag.py --out OUT/decode_diag.json        # on a CUDA machine

hnet's single-stream decoder (three graphs, a host decision between them): the
compiled decoder and the eager fixed-shape decoder read the same bytes in lockstep; after each
byte every state buffer is compared, and the first buffer and byte that differ are recorded,
for compile modes "default" (Inductor, no CUDA graphs), "reduce-overhead" (CUDA graph trees)
and "reduce-overhead" with ``cudagraph_trees=False``, and for the fused decoder (one graph).

The time per byte of a compiled decoder is benchmarks/profile_decode.py --decode compiled.
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
import bytelm  # noqa: E402
from bytelm.models.hnet.static_decode import HNetStaticDecoder  # noqa: E402

DEV = "cuda"
BUFS = ("h_cur", "hn_cur", "p_cur", "kept", "last", "prev", "chunks", "bpos")


def lockstep(chunker: str, mode: str | None, fused: bool, trees: bool = True, n: int = 96) -> dict:
    import torch._inductor.config as ic
    torch._dynamo.reset()
    ic.triton.cudagraph_trees = trees
    torch.manual_seed(0)
    m = bytelm.create_model("hnet-tiny", chunker=chunker, residual_std=0.02).to(DEV).eval()
    x = torch.randint(0, 256, (1, 9 + n), device=DEV)
    x[0, 30:] = torch.tensor(list(b"the cat sat on the mat. " * 5), device=DEV)[:x.shape[1] - 30]
    out = {"chunker": chunker, "mode": mode, "fused": fused, "cudagraph_trees": trees}
    with torch.no_grad():
        ref = HNetStaticDecoder(m, 1, 128, compile=None, fused=False)
        dec = HNetStaticDecoder(m, 1, 128, compile=mode, fused=fused)
        diff = (ref.prefill(x[:, :9]) - dec.prefill(x[:, :9])).abs().max().item()
        out["prefill_max_diff"] = diff
        first, worst = None, 0.0
        for i in range(9, 9 + n):
            a, b = ref.step(x[:, i]), dec.step(x[:, i])
            d = (a - b).abs().max().item()
            worst = max(worst, d)
            if first is None:
                for name in BUFS:
                    u, v = getattr(ref, name), getattr(dec, name)
                    bd = (u.float() - v.float()).abs().max().item()
                    if bd > 1e-4:
                        first = {"byte": i, "buffer": name, "max_diff": bd, "logits_diff": d}
                        break
                if first is None and d > 1e-3:
                    first = {"byte": i, "buffer": "logits", "max_diff": d}
        out.update(first_divergence=first, max_logits_diff=worst, exact=worst <= 1e-3)
    ic.triton.cudagraph_trees = True
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--device", default="cuda", help="cpu: a smoke test of the lockstep part")
    ap.add_argument("--modes", default="eager,default,reduce-overhead,no-trees,fused")
    a = ap.parse_args()
    global DEV
    DEV = a.device
    res = {"device": torch.cuda.get_device_name() if DEV == "cuda" else "cpu",
           "torch": torch.__version__,
           "commit": os.environ.get("GIT_COMMIT"), "date": time.strftime("%Y-%m-%d"),
           "command": " ".join(["python", *sys.argv]), "lockstep": []}

    def save():
        Path(a.out).write_text(json.dumps(res, indent=1))
    variants = {"eager": (None, False, True), "default": ("default", False, True),
                "reduce-overhead": ("reduce-overhead", False, True),
                "no-trees": ("reduce-overhead", False, False),
                "fused": ("reduce-overhead", True, True)}
    for chunker in ("learned", "space"):
        for mode, fused, trees in (variants[v] for v in a.modes.split(",")):
            try:
                r = lockstep(chunker, mode, fused, trees)
            except Exception as e:  # noqa: BLE001 - record and go on
                r = {"chunker": chunker, "mode": mode, "fused": fused, "trees": trees,
                     "error": f"{type(e).__name__}: {e}"[:400]}
            print(json.dumps(r), flush=True)
            res["lockstep"].append(r)
            save()


if __name__ == "__main__":
    main()
