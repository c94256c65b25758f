"""AGIFORMER single-byte decoding: the reference ``step`` against the fixed-shape decoder
(``bytelm.models.agiformer.static_decode``), eager and compiled (CUDA graphs on CUDA).

    PYTHONPATH=src python benchmarks/static_decode.py --preset agiformer-31m --out OUT.json

For each variant: ms per byte (median of --reps segments of --new-bytes greedy bytes after a
--prompt-byte prompt, after --warmup bytes), the first call's time (compilation included), and
the largest |logit difference| to the reference over the same teacher-forced bytes.
"""
import argparse
import time

import torch

from bytelm.bench.report import write_json


def sync(dev) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="agiformer-31m")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--prompt", type=int, default=1024)
    ap.add_argument("--new-bytes", type=int, default=64)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=8, help="untimed bytes (all P phases compile)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--variants", default="reference,static,static_compiled")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    import bytelm
    from bytelm.models.agiformer.static_decode import StaticDecoder
    dev = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available()
                       else ("cpu" if args.device == "auto" else args.device))
    torch.manual_seed(0)
    model = bytelm.create_model(args.preset).to(dev).eval()
    dtype = torch.bfloat16 if dev.type == "cuda" else torch.float32
    n_total = args.warmup + args.reps * args.new_bytes
    x = torch.randint(0, 256, (args.batch, args.prompt + n_total), device=dev)
    res = {"preset": args.preset, "device": str(dev),
           "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
           "torch": torch.__version__, "threads": torch.get_num_threads(), "batch": args.batch,
           "prompt": args.prompt, "new_bytes": args.new_bytes, "reps": args.reps,
           "precision": str(dtype).removeprefix("torch."), "variants": {}}
    ref_logits = None
    for name in args.variants.split(","):
        with torch.no_grad(), torch.autocast(dev.type, dtype=dtype, enabled=dev.type == "cuda"):
            if name == "reference":
                state = model.init_state(args.batch, dev)
                _, state = model.step(x[:, :args.prompt], state)

                def feed(i, state=state):
                    return model.step(x[:, i:i + 1], state)[0][:, 0]
            else:
                mode = None if name == "static" else ("reduce-overhead" if dev.type == "cuda"
                                                      else "default")
                dec = StaticDecoder(model, args.batch, dtype=dtype, compile=mode)
                dec.prefill(x[:, :args.prompt])

                def feed(i, dec=dec):
                    return dec.step(x[:, i])
            i = args.prompt
            logits = []
            sync(dev)
            t0 = time.perf_counter()
            logits.append(feed(i).float())
            sync(dev)
            first = time.perf_counter() - t0
            for i in range(args.prompt + 1, args.prompt + args.warmup):
                logits.append(feed(i).float())
            i = args.prompt + args.warmup
            seg = []
            for _ in range(args.reps):
                sync(dev)
                t0 = time.perf_counter()
                for _ in range(args.new_bytes):
                    logits.append(feed(i).float())
                    i += 1
                sync(dev)
                seg.append((time.perf_counter() - t0) / args.new_bytes)
        lg = torch.stack(logits, 1)
        if ref_logits is None:
            ref_logits = lg
        ms = sorted(seg)[len(seg) // 2] * 1e3
        rec = {"ms_per_byte": ms, "bytes_per_s_per_stream": 1e3 / ms,
               "first_call_s": first, "max_abs_diff_vs_first_variant":
                   float((lg - ref_logits).abs().max())}
        res["variants"][name] = rec
        print(name, {k: float(f"{v:.4g}") for k, v in rec.items()}, flush=True)
        write_json(res, args.out)


if __name__ == "__main__":
    main()
