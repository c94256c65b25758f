"""Fixtures for the serve tests: two tiny runs trained once (a Transformer with learning curves,
a BSFIN with patches), a corpus whose test split is exactly ``EVAL_TEXT``, and a live server."""
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="bytelm serve needs the serve extra (fastapi, uvicorn)")

from bytelm.cli.__main__ import build_parser, main  # noqa: E402

from ..conftest import threads  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
# English and Turkish, multi-byte characters and newlines
EVAL_TEXT = ("Byte-level models read raw bytes, so every character of every language is in reach.\n"
             "Türkçe metin: çiçekler, ağaçlar ve göğün ışığı; İstanbul'da güzel bir gün.\n") * 12
LONG = 100_000
TRAIN = ["--train.batch_size=4", "--train.eval_every=20", "--train.eval_bytes=2000",
         "--train.progress=false", "--optim.warmup_steps=0", "--optim.schedule=constant"]


def _ok(argv) -> None:
    with threads(1):
        rc = main([str(a) for a in argv])
    assert rc == 0, f"bytelm {' '.join(map(str, argv))} exited {rc}"


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """One intra-op thread while these tests run: tiny models are faster so, and other jobs
    on the same cores cannot slow the timed browser steps down by orders of magnitude."""
    with threads(1):
        yield


@pytest.fixture(scope="session")
def serve_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("serve")


@pytest.fixture(scope="session")
def serve_corpus(serve_root) -> Path:
    """The repository's own docs (its Markdown files), prepared (a corpus every clone has)."""
    out = serve_root / "docs-corpus"
    _ok(["prepare", *sorted((REPO / "docs").glob("*.md")), REPO / "README.md", "--out", out])
    return out


@pytest.fixture(scope="session")
def eval_corpus(serve_root) -> Path:
    """A prepared corpus whose test split is EVAL_TEXT byte for byte (a file named test.txt is
    used whole as the test split)."""
    src = serve_root / "eval-src"
    src.mkdir()
    (src / "train.txt").write_text("some training text\n" * 20, encoding="utf-8")
    (src / "val.txt").write_text("some validation text\n" * 5, encoding="utf-8")
    (src / "test.txt").write_text(EVAL_TEXT, encoding="utf-8")
    out = serve_root / "eval-corpus"
    _ok(["prepare", src, "--out", out])
    assert (out / "test.bin").read_bytes() == EVAL_TEXT.encode()
    return out


def _train(root: Path, corpus: Path, name: str, preset: str, steps: int, lr: float) -> Path:
    run = root / name
    _ok(["train", "--preset", preset, "--data", corpus, "--out", run, f"--train.steps={steps}",
         f"--optim.lr={lr}", *TRAIN])
    return run


@pytest.fixture(scope="session")
def gpt_run(serve_root, serve_corpus) -> Path:
    """transformer-tiny, 60 steps at a high constant learning rate: far from uniform already."""
    return _train(serve_root, serve_corpus, "gpt", "transformer-tiny", 60, 5e-3)


@pytest.fixture(scope="session")
def bsfin_run(serve_root, serve_corpus) -> Path:
    """bsfin-tiny (babylon patches), 4 steps."""
    return _train(serve_root, serve_corpus, "bsfin", "bsfin-tiny", 4, 3e-3)


@pytest.fixture(scope="session")
def server(gpt_run, bsfin_run):
    """``bytelm serve gpt bsfin --port 0`` running in a thread; yields its URL. Generations may
    be long (LONG bytes) so that one is still running when a test stops it."""
    from bytelm.cli.serve import make_server
    args = build_parser().parse_args(["serve", str(gpt_run), str(bsfin_run), "--port", "0",
                                      "--max-new-bytes", str(LONG)])
    srv, sock, url, _ = make_server(args)
    t = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    t.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    yield url
    srv.should_exit = True
    t.join(5)
