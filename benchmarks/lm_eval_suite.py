"""A local lm-evaluation-harness suite for bytelm runs (issue #22): word-level perplexity of
the English test split through loglikelihood_rolling, and a cloze task built from the same text.

    python3 benchmarks/lm_eval_suite.py RUN [RUN ...] --out OUT.json
        [--text ../shared/data/en/text/enwiki_test.txt] [--tasks-dir DIR]
        [--max-docs N] [--cloze N] [--batch-size 16] [--device auto]

Tasks (documents are the text's blank-line-separated articles, as in shared/data's README):
- enwiki_ppl: every article, loglikelihood_rolling; word_perplexity, byte_perplexity and
  bits_per_byte, aggregated as lm_eval does (weighted by words / bytes over all articles).
- enwiki_cloze: LAMBADA-style, the last word of a paragraph given the article up to it;
  acc = greedy decoding gives exactly the word, perplexity = exp(-mean ln p(word)).
- enwiki_cloze_mc: the same blanks with 4 choices (the word and 3 last words of other
  items); acc and acc_norm (log-likelihood per character), as lm_eval's multiple_choice.

The scores come from ``bytelm.eval.loglik`` (what ``--model bytelm`` calls), so the GPU
machine needs no lm_eval; ``--tasks-dir DIR`` also writes the tasks as lm_eval YAML over local
jsonl (``bytelm lm-eval --model bytelm --model_args pretrained=RUN --include_path DIR --tasks
enwiki_ppl,enwiki_cloze,enwiki_cloze_mc``), and tests/benchmarks/test_lm_eval_suite.py checks
that lm_eval over those files reports the same numbers.
"""
import argparse
import json
import math
import random
import re
import sys
import time
from pathlib import Path

DEFAULT_TEXT = Path(__file__).resolve().parents[2] / "shared/data/en/text/enwiki_test.txt"
CLOZE_CONTEXT = 2000  # characters of the article kept before a blank (the model reads <= its context)
MIN_WORDS = 15  # a cloze paragraph has at least this many words
PER_DOC = 3  # blanks per article at most


def documents(text: str, max_docs: int = 0) -> list[str]:
    """The articles of ``text``: blocks separated by blank lines, stripped, non-empty."""
    docs = [d.strip() for d in re.split(r"\n\s*\n", text) if d.strip()]
    return docs[:max_docs] if max_docs else docs


def cloze_items(docs: list[str], n: int, seed: int = 0) -> list[dict]:
    """Up to n blanks: {"context", "word", "target" (" " + word), "choices", "gold"}.

    A blank is the last word of a paragraph of >= MIN_WORDS words (trailing punctuation
    dropped; letters only, >= 3 of them), after the article's preceding text (its last
    CLOZE_CONTEXT characters). Choices: the word and 3 other items' words, shuffled.
    """
    items = []
    for doc in docs:
        lines, taken, pos = doc.split("\n"), 0, 0
        for i, line in enumerate(lines):
            start, pos = pos, pos + len(line) + 1
            words = line.split(" ")
            if i == 0 or len(words) < MIN_WORDS or taken >= PER_DOC:
                continue
            m = re.fullmatch(r"([A-Za-z]{3,})[.!?,;:]*", words[-1])
            if not m:
                continue
            context = (doc[:start] + " ".join(words[:-1]))[-CLOZE_CONTEXT:]
            items.append({"context": context, "word": m.group(1), "target": " " + m.group(1)})
            taken += 1
    items = items[:n]
    rng = random.Random(seed)
    vocab = sorted({it["word"] for it in items})
    for it in items:
        others = [w for w in vocab if w != it["word"]]
        choices = rng.sample(others, min(3, len(others))) + [it["word"]]
        rng.shuffle(choices)
        it["choices"], it["gold"] = choices, choices.index(it["word"])
    return items


def score(run, docs: list[str], items: list[dict], batch_size: int = 16, device: str = "auto") -> dict:
    """The three tasks' metrics for checkpoint ``run``, computed as lm_eval aggregates them."""
    from bytelm.eval.loglik import pair_request, rolling_request, score_requests
    from bytelm.train.checkpoint import load_model
    from bytelm.train.distributed import pick_device
    model = load_model(run, device=pick_device(device))
    t0 = time.time()
    ll_docs = [ll for ll, _ in score_requests(model, [rolling_request(d) for d in docs], batch_size)]
    words = sum(len(re.split(r"\s+", d)) for d in docs)
    nbytes = sum(len(d.encode("utf-8")) for d in docs)
    total = sum(ll_docs)
    ppl = {"word_perplexity": math.exp(-total / words), "byte_perplexity": math.exp(-total / nbytes),
           "bits_per_byte": -total / nbytes / math.log(2), "docs": len(docs), "words": words,
           "bytes": nbytes}
    cl = score_requests(model, [pair_request(it["context"], it["target"]) for it in items], batch_size)
    cloze = {"acc": sum(g for _, g in cl) / len(cl), "perplexity": math.exp(-sum(ll for ll, _ in cl) / len(cl)),
             "items": len(cl)}
    reqs = [pair_request(it["context"], " " + c) for it in items for c in it["choices"]]
    mc_ll = [ll for ll, _ in score_requests(model, reqs, batch_size)]
    acc = acc_norm = 0
    k = 0
    for it in items:
        lls = mc_ll[k:k + len(it["choices"])]
        k += len(it["choices"])
        acc += max(range(len(lls)), key=lls.__getitem__) == it["gold"]
        norm = [ll / len(c) for ll, c in zip(lls, it["choices"])]
        acc_norm += max(range(len(norm)), key=norm.__getitem__) == it["gold"]
    mc = {"acc": acc / len(items), "acc_norm": acc_norm / len(items), "items": len(items)}
    return {"enwiki_ppl": ppl, "enwiki_cloze": cloze, "enwiki_cloze_mc": mc,
            "seconds": time.time() - t0, "family": model.config.family,
            "params": model.n_params(), "context": model.config.context}


def write_tasks(out: Path, docs: list[str], items: list[dict]) -> None:
    """The suite as lm_eval tasks: OUT/{enwiki_docs,enwiki_cloze}.jsonl + one YAML per task."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "enwiki_docs.jsonl").write_text("".join(json.dumps({"text": d}) + "\n" for d in docs))
    (out / "enwiki_cloze.jsonl").write_text("".join(json.dumps(it) + "\n" for it in items))

    def data(name: str) -> str:
        return (f"dataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {out.resolve() / name}\n"
                "test_split: test\n")
    (out / "enwiki_ppl.yaml").write_text(
        "task: enwiki_ppl\n" + data("enwiki_docs.jsonl") +
        'output_type: loglikelihood_rolling\ndoc_to_text: ""\ndoc_to_target: "{{text}}"\n'
        "metric_list:\n" + "".join(f"  - metric: {m}\n    higher_is_better: false\n"
                                   for m in ("word_perplexity", "byte_perplexity", "bits_per_byte")))
    (out / "enwiki_cloze.yaml").write_text(
        "task: enwiki_cloze\n" + data("enwiki_cloze.jsonl") +
        'output_type: loglikelihood\ndoc_to_text: "{{context}}"\ndoc_to_target: "{{target}}"\n'
        "metric_list:\n  - metric: perplexity\n    aggregation: perplexity\n    higher_is_better: false\n"
        "  - metric: acc\n    aggregation: mean\n    higher_is_better: true\n")
    (out / "enwiki_cloze_mc.yaml").write_text(
        "task: enwiki_cloze_mc\n" + data("enwiki_cloze.jsonl") +
        'output_type: multiple_choice\ndoc_to_text: "{{context}}"\ndoc_to_choice: "{{choices}}"\n'
        'doc_to_target: "{{gold}}"\nmetric_list:\n  - metric: acc\n    aggregation: mean\n'
        "    higher_is_better: true\n  - metric: acc_norm\n    aggregation: mean\n    higher_is_better: true\n")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", help="run or checkpoint directories")
    ap.add_argument("--out", required=True, help="result JSON")
    ap.add_argument("--text", default=str(DEFAULT_TEXT), help="the test text (articles separated by blank lines)")
    ap.add_argument("--tasks-dir", default=None, help="also write the tasks as lm_eval YAML + jsonl here")
    ap.add_argument("--max-docs", type=int, default=0, help="first N articles only (0: all)")
    ap.add_argument("--cloze", type=int, default=500, help="cloze items at most")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args(argv)
    docs = documents(Path(args.text).read_text(encoding="utf-8"), args.max_docs)
    items = cloze_items(docs, args.cloze)
    if args.tasks_dir:
        write_tasks(Path(args.tasks_dir), docs, items)
    result = {"text": args.text, "command": " ".join(["python3", "benchmarks/lm_eval_suite.py", *
                                                       (argv if argv is not None else sys.argv[1:])]),
              "runs": {}}
    for run in args.runs:
        result["runs"][run] = score(run, docs, items, args.batch_size, args.device)
        print(json.dumps({run: result["runs"][run]}), flush=True)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
