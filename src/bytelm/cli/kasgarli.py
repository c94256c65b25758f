"""``bytelm kasgarli``: the same architecture and byte budget trained on each language; bits per
byte, per character and in total for the held-out content, steps to 2.5 bpb, curves and a table.

JSON (``<out>/kasgarli.json``)::

    {"mode": "parallel" | "monolingual", "content_controlled", "note", "preset", "steps",
     "batch_size", "seq_len", "bytes_per_language", "threshold_bpb", "eval_every", "corpus",
     "splits", "eval": {"stride", "eval_bytes"},
     "languages": [{"lang", "data", "run_dir", "lines": {split: n}, "bytes": {split: n},
                    "chars": {split: n}, "bytes_seen", "train_epochs", "test_complete",
                    "test": {"bpb", "bits_per_char", "total_bits", "bits_per_line",
                             "total_bits_vs_first", "scored_bytes", "scored_chars"},
                    "steps_to_threshold", "final_val_bpb",
                    "val_curve": [{"step", "bpb", "bits_per_char"}],
                    "train_curve": [{"step", "bpb"}],
                    "bpe": [{"vocab_size", "vocab_requested", "train_bytes_per_token",
                             "test_bytes_per_token", "steps", "batch_size", "seq_len_tokens",
                             "flops_per_token", "train_flops", "byte_model_flops", "n_params",
                             "final_train_loss", "test": {"bpb", "bits", "scored_bytes",
                             "scored_tokens"}, "test_final": {same keys},
                             "selection": {"rule", "val_bpb", "fraction", "step",
                                           "epochs", "train_flops"},
                             "candidates": [{"fraction", "steps", "epochs",
                                             "final_train_loss", "val_curve"}],
                             "train_curve"}]  (only with --bpe)}]}

"test" of a BPE baseline is scored with the weights chosen on the validation split
(``bytelm.experiments.bpe_baseline``); "test_final" is the full budget's last step.
"""
from pathlib import Path

from bytelm.errors import UserError


def add_parser(sub) -> None:
    p = sub.add_parser("kasgarli", help="cross-language test: one model per language, same byte budget",
                       description="Trains the same preset for the same steps on each language of a "
                       "line-aligned parallel corpus (or, --mode monolingual, on different English "
                       "and Turkish texts of equal size) and scores the held-out lines. Extra "
                       "--model.*, --optim.*, --train.*, --data.*, --eval.* options apply to every run.")
    p.add_argument("--mode", default="parallel", choices=["parallel", "monolingual"],
                   help="parallel: same content in every language (default); monolingual: the "
                   "seed's English vs Turkish texts, not content-controlled")
    p.add_argument("--corpus", default=None,
                   help="parallel corpus folder of <lang>.txt files (default: parallel/bible of "
                   "the shared data)")
    p.add_argument("--langs", default=None,
                   help="comma-separated languages (default eng,tur,hun,kor,est,jpn; "
                   "monolingual: eng,tur)")
    p.add_argument("--mono", action="append", default=None, metavar="LANG=FILE[,FILE]",
                   help="monolingual text of a language (repeatable; default eng = "
                   "en/text/enwiki_train_00.txt, tur = tr/text/* without ntrex.txt)")
    p.add_argument("--preset", default="transformer-tiny", help="model preset (default transformer-tiny)")
    p.add_argument("--steps", type=int, default=100, help="training steps per language (default 100)")
    p.add_argument("--evals", type=int, default=10,
                   help="validation points on the curve (train.eval_every = steps / evals; default 10)")
    p.add_argument("--val-bytes", type=int, default=0,
                   help="bytes of the val split per validation (default 0: all)")
    p.add_argument("--test-bytes", type=int, default=0,
                   help="score only the first N test bytes (default 0: all, as total bits needs)")
    p.add_argument("--stride", type=int, default=0, help="test window spacing (default: window)")
    p.add_argument("--max-lines", type=int, default=0,
                   help="parallel: use only the first N lines of every file (default 0: all)")
    p.add_argument("--max-bytes", type=int, default=0,
                   help="monolingual: bytes per language (default 0: the smallest text)")
    p.add_argument("--threshold", type=float, default=2.5, help="target bpb (default 2.5)")
    p.add_argument("--bpe", default=None, metavar="V[,V]",
                   help="also train the tokenized baseline: the same preset over byte-level BPE "
                        "tokens of each language (vocabulary sizes V), at the byte model's "
                        "training FLOPs at most (weights chosen on the validation split among 1, 1/2 "
                        "and 1/4 of that budget), scored in bits per byte of the same test text")
    p.add_argument("--out", default=None, help="output folder (default kasgarli-<mode>); finished "
                   "runs of the same preset and steps in it are reused, interrupted ones resumed")
    p.set_defaults(func=run, accepts_overrides=True)


def mono_sources(entries: list[str] | None) -> dict[str, list[Path]]:
    from bytelm.data.shared import shared_data_dir
    from bytelm.experiments.kasgarli import MONOLINGUAL
    if not entries:
        return {lang: [shared_data_dir() / f for f in files] for lang, files in MONOLINGUAL.items()}
    out = {}
    for e in entries:
        lang, sep, files = e.partition("=")
        if not sep or not lang or not files:
            raise UserError(f"--mono expects LANG=FILE[,FILE], got {e!r}")
        out[lang] = [Path(f) for f in files.split(",") if f]
    return out


def run(args) -> int:
    from bytelm.io import dump_json
    from bytelm.experiments.kasgarli import (BIBLE_LANGS, bpe_table, markdown_table, plot_kasgarli,
                                       run_kasgarli)
    from bytelm.data.shared import shared_data_dir
    for name in ("steps", "evals"):
        if getattr(args, name) < 1:
            raise UserError(f"--{name} must be >= 1")
    for name in ("val_bytes", "test_bytes", "stride", "max_lines", "max_bytes"):
        if getattr(args, name) < 0:
            raise UserError(f"--{name.replace('_', '-')} must be >= 0")
    try:
        bpe = [int(v) for v in args.bpe.split(",") if v.strip()] if args.bpe else None
    except ValueError:
        raise UserError(f"--bpe expects comma-separated vocabulary sizes, got {args.bpe!r}") from None
    if bpe and min(bpe) <= 256:
        raise UserError(f"--bpe vocabulary sizes must be > 256, got {min(bpe)}")
    if bpe:
        from bytelm.registry import preset_config
        if preset_config(args.preset).family != "gpt":
            raise UserError(f"--bpe trains the same Transformer over BPE tokens, so it needs a "
                            f"Transformer preset, not {args.preset}; run the other families "
                            "without --bpe and set them beside it with "
                            "benchmarks/kasgarli_families.py")
    out = Path(args.out or f"kasgarli-{args.mode}")
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} exists and is not a folder")
    default_langs = ",".join(BIBLE_LANGS) if args.mode == "parallel" else "eng,tur"
    langs = [s.strip() for s in (args.langs or default_langs).split(",") if s.strip()]
    if len(set(langs)) != len(langs) or not langs:
        raise UserError("--langs must name distinct languages")
    corpus = Path(args.corpus) if args.corpus else shared_data_dir() / "parallel" / "bible"
    if args.mode == "parallel" and not corpus.is_dir():
        raise UserError(f"parallel corpus not found: {corpus}")
    # short runs: a warmup of 10% of the steps (at most 200) unless --optim.warmup_steps says
    overrides = {"optim.warmup_steps": min(200, max(1, args.steps // 10)),
                 "train.eval_every": max(1, args.steps // args.evals),
                 "train.eval_bytes": args.val_bytes, **args.overrides}
    res = run_kasgarli(args.mode, langs, out, args.preset, args.steps, overrides,
                       corpus_dir=corpus, mono_sources=mono_sources(args.mono),
                       max_lines=args.max_lines or None, max_bytes=args.max_bytes or None,
                       threshold=args.threshold, eval_bytes=args.test_bytes, stride=args.stride,
                       bpe_vocabs=bpe)
    dump_json(res, out / "kasgarli.json")
    plot_kasgarli(res, out / "kasgarli.png")
    label = "parallel, same content per language" if res["content_controlled"] else \
        "monolingual: NOT content-controlled (different texts of equal byte size)"
    print(f"Kasgarli test ({label}); {res['preset']}, {res['steps']} steps x "
          f"{res['batch_size']} x {res['seq_len']} = {res['bytes_per_language']:,} bytes per language")
    print(markdown_table(res))
    if bpe:
        print("\ntokenized baseline (same preset over BPE tokens, at most the byte model's "
              "training FLOPs, weights chosen on validation):")
        print(bpe_table(res))
    if not all(r["test_complete"] for r in res["languages"]):
        print("note: --test-bytes cut the test split; total bits cover only the scored bytes")
    print(f"wrote {out / 'kasgarli.json'} and {out / 'kasgarli.png'}")
    return 0
