"""lm-evaluation-harness end to end on CPU with local tasks (no downloads): lm_eval's numbers
for ``--model bytelm`` equal benchmarks/lm_eval_suite.py's and bytelm's own generation."""
import json
import math

import pytest
import torch

import bytelm
from bytelm.generate.batch import generate_bytes
from tests.scripts import load_benchmark

lm_eval = pytest.importorskip("lm_eval")


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.setenv(var, "1")


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    """(suite module, checkpoint, task dir, docs, cloze items): 3 articles cut to ~1.5 KB."""
    s = load_benchmark("lm_eval_suite")
    if not s.DEFAULT_TEXT.is_file():
        pytest.skip(f"shared data not found at {s.DEFAULT_TEXT}")
    docs = [d[:d.rfind("\n", 0, 1500)] for d in s.documents(s.DEFAULT_TEXT.read_text(encoding="utf-8"), 3)]
    items = s.cloze_items(docs, 6)
    root = tmp_path_factory.mktemp("harness")
    torch.manual_seed(0)
    ckpt = root / "ckpt"
    bytelm.create_model("transformer-tiny").save(ckpt)
    tasks = root / "tasks"
    s.write_tasks(tasks, docs, items)
    (tasks / "gen.jsonl").write_text("".join(json.dumps({"prompt": p, "answer": "x"}) + "\n"
                                             for p in ("The cat", "Hello, wor")))
    (tasks / "gen.yaml").write_text(
        f"task: tiny_gen\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {tasks / 'gen.jsonl'}\n"
        'test_split: test\noutput_type: generate_until\ndoc_to_text: "{{prompt}}"\n'
        'doc_to_target: "{{answer}}"\ngeneration_kwargs:\n  until: ["e"]\n  max_gen_toks: 20\n'
        "  do_sample: false\nmetric_list:\n  - metric: exact_match\n")
    return s, ckpt, tasks, docs, items


def test_harness_end_to_end(suite, one_thread):
    import bytelm.eval.harness  # noqa: F401 - registers --model bytelm
    from lm_eval.tasks import TaskManager
    s, ckpt, tasks, docs, items = suite
    out = lm_eval.simple_evaluate(
        model="bytelm", model_args=f"pretrained={ckpt},batch_size=3,device=cpu",
        tasks=["enwiki_ppl", "enwiki_cloze", "enwiki_cloze_mc", "tiny_gen"],
        task_manager=TaskManager(include_path=str(tasks), include_defaults=False), log_samples=True)
    res = out["results"]
    want = s.score(ckpt, docs, items, batch_size=5, device="cpu")
    for task, metrics in [("enwiki_ppl", ("word_perplexity", "byte_perplexity", "bits_per_byte")),
                          ("enwiki_cloze", ("acc", "perplexity")),
                          ("enwiki_cloze_mc", ("acc", "acc_norm"))]:
        for m in metrics:
            assert res[task][f"{m},none"] == pytest.approx(want[task][m], rel=1e-6), (task, m)
    # an untrained model: every byte near uniform, so ~8 bits per byte (the test can fail)
    assert 7.5 < res["enwiki_ppl"]["bits_per_byte,none"] < 8.5
    model = bytelm.load(ckpt)
    for sample in out["samples"]["tiny_gen"]:
        prompt = sample["doc"]["prompt"]
        full = generate_bytes(model, prompt, max_bytes=20, temperature=0)
        cut = full.split(b"e")[0]
        assert sample["resps"][0][0] == cut.decode("utf-8", errors="replace")


def test_harness_bad_args(suite):
    from bytelm.errors import UserError
    from bytelm.eval.harness import BytelmLM
    _, ckpt, *_ = suite
    with pytest.raises(UserError, match="unknown --model_args"):
        BytelmLM(pretrained=str(ckpt), temperature=1)
    with pytest.raises(UserError, match="batch_size"):
        BytelmLM(pretrained=str(ckpt), batch_size="many")
