"""The Kasgarli test: one architecture, one byte budget, one language at a time.

Parallel mode (content-controlled): the files of a line-aligned parallel corpus (line i is the same
unit in every language) are split by line index, the same indices for every language: the last
``test_frac`` of the lines are test, the ``val_frac`` before them val, the rest train. Each
language's model trains for the same steps x batch x seq_len bytes, and is scored on its own
test lines, which hold the same content in every language:

- bits per byte (bpb) and per UTF-8 character, as ``bytelm.eval.bpb`` defines them;
- total bits = sum of -log2 p over the scored test bytes = bpb x scored bytes: the cost of
  encoding the whole held-out content, comparable across languages because the content is equal;
  bits per line divides it by the number of test lines (units);
- steps to reach ``threshold`` bpb: the first validation step whose val bpb <= threshold (None
  if never; resolution ``eval_every``).

Monolingual mode (the seed's form, NOT content-controlled): a different text per language,
truncated to the same number of bytes (the same fraction of every file), each file cut 90/5/5 by
bytes at line boundaries.
"""
import dataclasses
import logging
import math
from pathlib import Path

from bytelm.errors import UserError

log = logging.getLogger(__name__)

BIBLE_LANGS = ("eng", "tur", "hun", "kor", "est", "jpn")
# the seed's English vs Turkish texts, relative to the shared data folder; NTREX (tr/text/ntrex.txt)
# stays out because it is the parallel benchmark
MONOLINGUAL = {"eng": ["en/text/enwiki_train_00.txt"],
               "tur": ["tr/text/ataturk_speeches.txt", "tr/text/news.txt", "tr/text/nutuk.txt",
                       "tr/text/treebank.txt"]}
SPLITS = ("train", "val", "test")


def line_splits(n_lines: int, val_frac: float = 0.05, test_frac: float = 0.05) -> dict[str, range]:
    """Line indices of each split: train first, then val, then test (the last lines).

    Raises:
        UserError: a split would be empty.
    """
    n_test = int(round(n_lines * test_frac))
    n_val = int(round(n_lines * val_frac))
    n_train = n_lines - n_val - n_test
    if min(n_test, n_val, n_train) < 1:
        raise UserError(f"{n_lines} lines are too few for val {val_frac} / test {test_frac}")
    return {"train": range(0, n_train), "val": range(n_train, n_train + n_val),
            "test": range(n_train + n_val, n_lines)}


def read_lines(path) -> list[bytes]:
    """The lines of a text file without their newlines."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise UserError(f"cannot read {path}: {e.strerror or e}") from None
    return data.rstrip(b"\n").split(b"\n") if data else []


def n_chars(data: bytes) -> int:
    """UTF-8 characters in ``data`` (bytes that are not continuation bytes)."""
    return sum(1 for b in data if (b & 0xC0) != 0x80)


def _write_and_prepare(parts: dict[str, bytes], folder: Path, extra: dict) -> Path:
    from bytelm.data import prepare
    src = folder / "src"
    src.mkdir(parents=True, exist_ok=True)
    for split, data in parts.items():
        (src / f"{split}.txt").write_bytes(data)
    # a file named after a split goes whole into that split
    prepare([str(src / f"{s}.txt") for s in SPLITS], folder / "corpus", split_rule="auto",
            extra_meta=extra)
    return folder / "corpus"


def prepare_parallel(corpus_dir, langs, out_dir, max_lines: int | None = None,
                     val_frac: float = 0.05, test_frac: float = 0.05) -> dict:
    """One prepared corpus per language from ``<corpus_dir>/<lang>.txt``, split by line index.

    Args:
        corpus_dir: folder of line-aligned files named ``<lang>.txt``.
        langs: languages to use.
        out_dir: gets ``<lang>/src/{train,val,test}.txt`` and ``<lang>/corpus``.
        max_lines: use only the first N lines (small runs); None: all.
    Returns:
        {lang: {"data", "lines": {split: n}, "bytes": {split: n}, "chars": {split: n}}} plus
        "line_ranges": {split: [start, stop]} under the key "_splits".
    Raises:
        UserError: a file is missing or the files do not have the same number of lines.
    """
    corpus_dir, out_dir = Path(corpus_dir), Path(out_dir)
    lines = {}
    for lang in langs:
        f = corpus_dir / f"{lang}.txt"
        if not f.is_file():
            raise UserError(f"no {lang}.txt in {corpus_dir}")
        lines[lang] = read_lines(f)[:max_lines]
    counts = {lang: len(v) for lang, v in lines.items()}
    if len(set(counts.values())) != 1:
        raise UserError(f"the files are not line-aligned (line counts {counts})")
    ranges = line_splits(next(iter(counts.values())), val_frac, test_frac)
    out = {"_splits": {s: [r.start, r.stop] for s, r in ranges.items()}}
    for lang in langs:
        parts = {s: b"".join(lines[lang][i] + b"\n" for i in r) for s, r in ranges.items()}
        data = _write_and_prepare(parts, out_dir / lang, {"kasgarli": "parallel", "lang": lang,
                                                           "source": str(corpus_dir / f"{lang}.txt")})
        out[lang] = {"data": str(data), "lines": {s: len(r) for s, r in ranges.items()},
                     "bytes": {s: len(p) for s, p in parts.items()},
                     "chars": {s: n_chars(p) for s, p in parts.items()}}
    return out


def prepare_monolingual(sources: dict[str, list], out_dir, max_bytes: int | None = None,
                        val_frac: float = 0.05, test_frac: float = 0.05) -> dict:
    """One prepared corpus per language from different texts of equal size (NOT the same content).

    Every language keeps the same number of bytes N (the smallest total, or ``max_bytes``): the
    first fraction N / total of each of its files, cut at a newline; each piece is cut
    train/val/test by bytes (``bytelm.data.fraction_cuts``) so every split keeps the file mix.
    Returns the same structure as ``prepare_parallel`` (lines count newlines).
    """
    from bytelm.data import fraction_cuts
    out_dir = Path(out_dir)
    texts = {}
    for lang, files in sources.items():
        datas = []
        for f in files:
            try:
                datas.append(Path(f).read_bytes())
            except OSError as e:
                raise UserError(f"cannot read {f}: {e.strerror or e}") from None
        texts[lang] = datas
    total = {lang: sum(len(d) for d in ds) for lang, ds in texts.items()}
    N = min(total.values()) if not max_bytes else min(max_bytes, *total.values())
    out = {"_splits": {"rule": f"per file: bytes cut {1 - val_frac - test_frac:.2f}/{val_frac}/"
                       f"{test_frac} at line boundaries", "bytes_per_language": N}}
    for lang, datas in texts.items():
        parts = {s: b"" for s in SPLITS}
        for d in datas:
            piece = d[:int(len(d) * N / total[lang])]
            piece = piece[:piece.rfind(b"\n") + 1] or piece
            a, b = fraction_cuts(piece, val_frac, test_frac)
            for s, chunk in zip(SPLITS, (piece[:a], piece[a:b], piece[b:])):
                parts[s] += chunk
        data = _write_and_prepare(parts, out_dir / lang, {"kasgarli": "monolingual", "lang": lang,
                                                           "sources": [str(f) for f in sources[lang]]})
        out[lang] = {"data": str(data), "lines": {s: p.count(b"\n") for s, p in parts.items()},
                     "bytes": {s: len(p) for s, p in parts.items()},
                     "chars": {s: n_chars(p) for s, p in parts.items()}}
    return out


def steps_to_reach(val_curve: list[dict], threshold: float) -> int | None:
    """First step of ``val_curve`` ([{"step", "bpb"}, ...]) with bpb <= threshold, else None."""
    for rec in sorted(val_curve, key=lambda r: r["step"]):
        if rec["bpb"] <= threshold:
            return rec["step"]
    return None


def heldout_metrics(score: dict, n_lines: int) -> dict:
    """bpb, bits/char, total bits (= nats / ln 2 = bpb x scored bytes) and bits per line."""
    total_bits = score["nats"] / math.log(2)
    return {"bpb": score["bpb"], "bits_per_char": score["bits_per_char"],
            "total_bits": total_bits, "bits_per_line": total_bits / max(n_lines, 1),
            "scored_bytes": score["n_bytes"], "scored_chars": score["n_chars"]}


def data_fingerprint(data_dir) -> str:
    """The train, val and test SHA-256 of a prepared corpus (from its meta.json, written with the
    splits): what a reused run must match."""
    from bytelm.data import load_meta
    splits = load_meta(data_dir)["splits"]
    return ",".join(splits[s]["sha256"] for s in SPLITS)


def train_language(preset: str, data_dir, run_dir, steps: int, overrides: dict | None = None) -> dict:
    """Trains ``preset`` on one prepared corpus; a finished run of the same preset, steps and
    data (``data_fingerprint``, kept in ``run_dir/data_sha256.txt``) in ``run_dir`` is reused, an
    interrupted one resumed.

    Raises:
        UserError: ``run_dir`` holds a run of another preset, step count or corpus.
    """
    import json

    from bytelm.options import build_run_config
    from bytelm.io import atomic_write_bytes
    from bytelm.train.loop import train
    run_dir = Path(run_dir)
    saved = run_dir / "run_config.json"
    fp, fp_file = data_fingerprint(data_dir), run_dir / "data_sha256.txt"
    if saved.is_file():
        old = json.loads(saved.read_text())
        if old.get("preset") != preset or old.get("train", {}).get("steps") != steps:
            raise UserError(f"{run_dir} holds a run of {old.get('preset')} for "
                            f"{old.get('train', {}).get('steps')} steps; use another --out")
        if not fp_file.is_file() or fp_file.read_text().strip() != fp:
            raise UserError(f"{run_dir} holds a run on other data (monolingual sizes depend on "
                            "the languages chosen) or one without a data fingerprint; use "
                            "another --out")
        if (run_dir / "summary.json").is_file():
            log.info("reusing the finished run in %s", run_dir)
            return json.loads((run_dir / "summary.json").read_text())
    over = {"train.progress": "false", **(overrides or {}), "data.path": str(data_dir),
            "train.out_dir": str(run_dir), "train.steps": steps}
    cfg = build_run_config(preset, over)
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(fp_file, (fp + "\n").encode())
    resume = (run_dir / "ckpt" / "last").is_dir()
    return train(cfg, resume=resume)


def run_kasgarli(mode: str, langs: list[str], out_dir, preset: str, steps: int,
                 overrides: dict | None = None, corpus_dir=None, mono_sources=None,
                 max_lines: int | None = None, max_bytes: int | None = None,
                 threshold: float = 2.5, eval_bytes: int = 0, stride: int = 0,
                 bpe_vocabs: list[int] | None = None) -> dict:
    """Prepares the corpora, trains one model per language, scores the test split.

    Args:
        mode: "parallel" or "monolingual".
        langs: languages (file stems of ``corpus_dir`` or keys of ``mono_sources``).
        out_dir: gets data/<lang>, runs/<lang> and the results.
        preset: model preset (the same for every language).
        steps: training steps; with the same batch and seq_len this is the same byte budget.
        overrides: dotted run-config overrides for every language.
        corpus_dir: parallel corpus folder; mono_sources: {lang: [files]} for monolingual.
        max_lines: parallel only: use the first N lines; max_bytes: monolingual size cap.
        threshold: bpb target of steps_to_threshold.
        eval_bytes: score only the first N test bytes (0: the whole test split).
        stride: test window spacing (0: the window length, no overlap).
        bpe_vocabs: also train the tokenized baseline (``bytelm.experiments.bpe_baseline``) of every
            language at each of these BPE vocabulary sizes, at the byte model's training FLOPs,
            scored in bits per byte of the same whole test split.
    Returns:
        the JSON-able result (schema in cli/kasgarli.py).
    """
    from bytelm.data import open_split
    from bytelm.eval.bpb import evaluate_bpb
    from bytelm.train.checkpoint import load_model
    from bytelm.train.distributed import pick_device
    from bytelm.train.loop import load_run_config
    from bytelm.train.metrics import read_metrics
    out_dir = Path(out_dir)
    if mode == "parallel":
        prep = prepare_parallel(corpus_dir, langs, out_dir / "data", max_lines=max_lines)
    elif mode == "monolingual":
        missing = [lang for lang in langs if lang not in mono_sources]
        if missing:
            raise UserError(f"no monolingual text for {', '.join(missing)}")
        prep = prepare_monolingual({lang: mono_sources[lang] for lang in langs}, out_dir / "data",
                                   max_bytes=max_bytes)
    else:
        raise UserError(f"mode must be parallel or monolingual, got {mode!r}")
    results = []
    cfg_used = None
    for lang in langs:
        run_dir = out_dir / "runs" / lang
        summary = train_language(preset, prep[lang]["data"], run_dir, steps, overrides)
        cfg_used = load_run_config(run_dir)
        model = load_model(run_dir / "ckpt" / "last", device=pick_device(cfg_used.train.device))
        split = open_split(prep[lang]["data"], "test", min_len=2)
        score = evaluate_bpb(model, split, seq_len=cfg_used.seq_len, stride=stride,
                             batch_size=cfg_used.eval.batch_size, max_bytes=eval_bytes or None,
                             precision=cfg_used.train.precision)
        val = [{"step": r["step"], "bpb": r["bpb"], "bits_per_char": r.get("bits_per_char")}
               for r in read_metrics(run_dir) if r.get("kind") == "val"]
        train_curve = [{"step": r["step"], "bpb": r["bpb"]} for r in read_metrics(run_dir)
                       if r.get("kind") == "train"]
        n_test_lines = prep[lang]["lines"]["test"]
        results.append({
            "lang": lang, "data": prep[lang]["data"], "run_dir": str(run_dir),
            "lines": prep[lang]["lines"], "bytes": prep[lang]["bytes"], "chars": prep[lang]["chars"],
            "bytes_seen": summary.get("bytes_seen"), "train_epochs":
                (summary.get("bytes_seen") or 0) / max(prep[lang]["bytes"]["train"], 1),
            "test": heldout_metrics(score, n_test_lines),
            "test_complete": score["n_bytes"] == prep[lang]["bytes"]["test"] - 1,
            "steps_to_threshold": steps_to_reach(val, threshold),
            "final_val_bpb": val[-1]["bpb"] if val else None,
            "val_curve": val, "train_curve": train_curve})
        if bpe_vocabs:
            results[-1]["bpe"] = _bpe_runs(preset, prep[lang]["data"], run_dir, model, summary,
                                           cfg_used, bpe_vocabs)
        del model
    ref = results[0]["test"]["total_bits"]
    for r in results:
        r["test"]["total_bits_vs_first"] = r["test"]["total_bits"] / ref if ref else None
    return {"mode": mode, "content_controlled": mode == "parallel",
            "note": ("parallel corpus: the same test lines (same content) in every language"
                     if mode == "parallel" else
                     "NOT content-controlled: different texts per language, equal byte size"),
            "preset": preset, "steps": steps, "threshold_bpb": threshold,
            # the resolved model config (preset + --model.* overrides), so a result can be sized
            "model": dataclasses.asdict(cfg_used.model) if cfg_used.model is not None else None,
            "batch_size": cfg_used.train.batch_size, "seq_len": cfg_used.seq_len,
            "eval_every": cfg_used.train.eval_every,
            "bytes_per_language": steps * cfg_used.train.batch_size * cfg_used.seq_len *
            cfg_used.train.grad_accum,
            "corpus": str(corpus_dir) if mode == "parallel" else
            {lang: [str(f) for f in mono_sources[lang]] for lang in langs},
            "splits": prep["_splits"], "eval": {"stride": stride or cfg_used.seq_len,
                                                "eval_bytes": eval_bytes},
            "languages": results}


def _bpe_runs(preset: str, data_dir, run_dir, byte_model, summary: dict, cfg,
              vocabs: list[int]) -> list:
    """The tokenized baselines of one language (see ``bytelm.experiments.bpe_baseline.bpe_baseline``).

    Each is chosen on the validation split (``tokenized.SELECTION``). Each result is kept as
    ``run_dir/bpe_<V>.json`` and reused when it was made for the same data
    (``data_fingerprint``), training FLOPs, batch, length and selection rule, so an interrupted
    or split run (languages in side-by-side processes) does not train it again."""
    import json

    from bytelm.io import dump_json
    from bytelm.experiments.bpe_baseline import SELECTION, bpe_baseline
    from bytelm.train.distributed import pick_device
    data_dir, run_dir = Path(data_dir), Path(run_dir)
    splits = {}  # read only when a baseline has to be trained
    flops = (summary.get("bytes_seen") or 0) * byte_model.flops_per_byte(cfg.seq_len)
    fp = data_fingerprint(data_dir)
    out = []
    for v in vocabs:
        saved = run_dir / f"bpe_{v}.json"
        if saved.is_file():
            old = json.loads(saved.read_text())
            if (old.get("data_sha256"), old.get("byte_model_flops"), old.get("batch_size"),
                    old.get("seq_len_tokens"), old.get("selection", {}).get("rule")) == (
                    fp, flops, cfg.train.batch_size, cfg.seq_len, SELECTION):
                log.info("reusing the BPE %d baseline in %s", v, saved)
                out.append(old)
                continue
        log.info("BPE baseline, vocabulary %d, on %s", v, data_dir)
        if not splits:
            splits = {k: (data_dir / f"{k}.bin").read_bytes() for k in ("train", "val", "test")}
        out.append(bpe_baseline(preset, splits["train"], splits["test"], v, flops,
                                cfg.train.batch_size, cfg.seq_len, optim=cfg.optim,
                                device=pick_device(cfg.train.device),
                                precision=cfg.train.precision, seed=cfg.train.seed,
                                val=splits["val"]))
        out[-1]["data_sha256"] = fp
        dump_json(out[-1], saved)
    return out


def best_bpe(lang_result: dict) -> dict:
    """A language's BPE baseline with the lowest validation bpb (``selection.val_bpb``).

    The vocabulary is chosen on validation like each baseline's weights, so the test split is
    only scored, never used to choose.

    Raises:
        UserError: a baseline without a recorded validation bpb (results from before selection
            on validation), since choosing among those would need the test split.
    """
    bpe = lang_result["bpe"]
    missing = [b["vocab_requested"] for b in bpe if "val_bpb" not in b.get("selection", {})]
    if missing:
        raise UserError(f"{lang_result['lang']}: BPE baseline(s) {missing} record no validation "
                        "bpb, so the best vocabulary cannot be chosen without the test split")
    return min(bpe, key=lambda b: b["selection"]["val_bpb"])


def best_bpe_bpb(lang_result: dict) -> float:
    """The test bpb of a language's BPE baseline chosen on validation (``best_bpe``)."""
    return best_bpe(lang_result)["test"]["bpb"]


def read_result(path) -> dict:
    """A ``bytelm kasgarli`` result JSON.

    Raises:
        UserError: unreadable, or not a kasgarli result.
    """
    import json
    try:
        result = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise UserError(f"cannot read {path}: {e}") from None
    if not isinstance(result, dict) or "languages" not in result:
        raise UserError(f"{path} is not a `bytelm kasgarli` result")
    return result


def bpe_table(result: dict) -> str:
    """Per language: byte model bpb, each BPE baseline's test bpb (weights chosen on validation;
    with the budget fraction and epochs of the chosen weights), and byte minus the BPE baseline
    whose vocabulary has the lowest validation bpb (``best_bpe``)."""
    langs = [r for r in result["languages"] if r.get("bpe")]
    if not langs:
        return ""
    vocabs = [b["vocab_requested"] for b in langs[0]["bpe"]]
    head = " | ".join(f"BPE {v} bpb (bytes/token)" for v in vocabs)
    rows = [f"| lang | bytes bpb | {head} | bytes - BPE chosen on val |",
            "|---|---:|" + "---:|" * len(vocabs) + "---:|"]
    for r in langs:
        cells = " | ".join(f"{b['test']['bpb']:.3f} ({b['test_bytes_per_token']:.2f}{_chosen(b)})"
                           for b in r["bpe"])
        rows.append(f"| {r['lang']} | {r['test']['bpb']:.3f} | {cells} | "
                    f"{r['test']['bpb'] - best_bpe_bpb(r):+.3f} |")
    return "\n".join(rows)


def _chosen(bpe: dict) -> str:
    """", x of budget at epoch e" for a BPE result chosen on validation, else ""."""
    sel = bpe.get("selection", {})
    if "step" not in sel:
        return ""
    return f"; {sel['fraction']:g} budget, epoch {sel['epochs']:.1f}"


def markdown_table(result: dict) -> str:
    """One row per language: test bytes, bpb, bits/char, total bits, bits/line, steps to target."""
    thr = result["threshold_bpb"]
    rows = [f"| lang | scored test bytes | chars | bpb | bits/char | total bits | bits/line | "
            f"x first | steps to {thr:g} bpb |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in result["languages"]:
        t = r["test"]
        steps = r["steps_to_threshold"]
        rows.append(f"| {r['lang']} | {t['scored_bytes']:,} | {t['scored_chars']:,} | "
                    f"{t['bpb']:.3f} | {t['bits_per_char']:.3f} | {t['total_bits']:,.0f} | "
                    f"{t['bits_per_line']:.1f} | {t['total_bits_vs_first']:.3f} | "
                    f"{steps if steps is not None else 'never'} |")
    return "\n".join(rows)


def plot_kasgarli(result: dict, path) -> None:
    """Validation curves of every language: bpb, bits per character (and bits per line); with
    the tokenized baseline, a last panel of each language's test bpb minus its BPE baseline's
    (vocabulary chosen on validation, ``best_bpe``)."""
    import matplotlib

    from bytelm.eval.plots import _figure, _save
    langs = result["languages"]
    panels = ["bpb", "bits_per_char"] + (["bits_per_line"] if result["content_controlled"] else [])
    with_bpe = all(r.get("bpe") for r in langs)
    n = len(panels) + with_bpe
    fig, axes = _figure(1, n, (5 * n, 4))
    axes = axes[0]
    # past ten languages the default colour cycle repeats: twenty colours and two line styles
    cmap = matplotlib.colormaps["tab20" if len(langs) > 10 else "tab10"]
    style = {r["lang"]: dict(color=cmap(i % cmap.N), ls="-" if i < cmap.N else "--",
                             marker="os^v"[i // 5 % 4]) for i, r in enumerate(langs)}
    for r in langs:
        steps = [v["step"] for v in r["val_curve"]]
        per_line = r["bytes"]["val"] / max(r["lines"]["val"], 1)
        ys = {"bpb": [v["bpb"] for v in r["val_curve"]],
              "bits_per_char": [v["bits_per_char"] for v in r["val_curve"]],
              "bits_per_line": [v["bpb"] * per_line for v in r["val_curve"]]}
        for ax, k in zip(axes, panels):
            if all(y is not None for y in ys[k]):
                ax.plot(steps, ys[k], ms=3, label=r["lang"], **style[r["lang"]])
    titles = {"bpb": "validation bits per byte", "bits_per_char": "validation bits per character",
              "bits_per_line": "validation bits per line (same content)"}
    for ax, k in zip(axes, panels):
        ax.set_title(titles[k], fontsize=10)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=2 if len(langs) > 8 else 1)
    axes[0].axhline(result["threshold_bpb"], color="k", ls=":", lw=1)
    if with_bpe:
        gaps = sorted((r["test"]["bpb"] - best_bpe_bpb(r), r["lang"]) for r in langs)
        ax = axes[-1]
        ax.barh([g[1] for g in gaps], [g[0] for g in gaps],
                color=[style[g[1]]["color"] for g in gaps])
        ax.axvline(0, color="k", lw=1)
        ax.set_title("test bpb: bytes minus BPE chosen on val (> 0: BPE better)", fontsize=10)
        ax.grid(alpha=0.3, axis="x")
    label = "parallel (content-controlled)" if result["content_controlled"] else \
        "monolingual, NOT content-controlled"
    fig.suptitle(f"Kasgarli test, {label}: {result['preset']}, {result['steps']} steps, "
                 f"{result['bytes_per_language']:,} bytes per language", fontsize=10)
    _save(fig, path, dpi=120)
