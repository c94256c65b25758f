"""API tests for ``bytelm serve``: the page's numbers equal ``bytelm eval``'s, bad requests get
a 4xx with a one-line message, generation streams the model's own bytes and is serialised."""
import json
import math

import pytest
import torch

from bytelm.cli.__main__ import main

from .conftest import EVAL_TEXT, LONG

fastapi_testclient = pytest.importorskip("fastapi.testclient")


@pytest.fixture(scope="module")
def runs(gpt_run, bsfin_run):
    from bytelm.serve import load_runs
    return load_runs([gpt_run, bsfin_run], "cpu")


@pytest.fixture(scope="module")
def client(runs):
    from bytelm.serve import ServeConfig, create_app
    app = create_app(runs, ServeConfig(max_bytes=4096, max_new_bytes=300, busy_wait_s=0.2))
    with fastapi_testclient.TestClient(app) as c:
        yield c


def _eval(run, corpus, tmp_path) -> dict:
    out = tmp_path / f"{run.name}.json"
    assert main(["eval", str(run), "--data", str(corpus), "--split", "test", "--json", str(out)]) == 0
    return json.loads(out.read_text())


@pytest.mark.parametrize("name", ["gpt", "bsfin"])
def test_score_equals_eval(client, runs, name, gpt_run, bsfin_run, eval_corpus, tmp_path):
    ref = _eval({"gpt": gpt_run, "bsfin": bsfin_run}[name], eval_corpus, tmp_path)
    r = client.post("/api/score", json={"run": name, "text": EVAL_TEXT})
    assert r.status_code == 200, r.text
    got = r.json()
    data = EVAL_TEXT.encode()
    for key in ("bpb", "bits_per_char", "nats", "n_bytes", "n_chars", "seq_len", "stride"):
        assert got[key] == ref[key], key
    assert got["bytes"] == list(data) and got["bits"][0] is None
    # the per-byte bits add up to the total, and each is the probability of the byte that came
    bits = got["bits"][1:]
    assert sum(bits) == pytest.approx(ref["nats"] / math.log(2), abs=1e-4 * len(bits))
    hits = 0
    for i in range(1, len(data)):
        probs = got["top_probs"][i]
        assert probs == sorted(probs, reverse=True) and len(probs) == 5
        if data[i] in got["top_bytes"][i]:
            p = probs[got["top_bytes"][i].index(data[i])]
            assert -math.log2(max(p, 1e-4)) == pytest.approx(got["bits"][i], abs=2e-3 + 1e-4 / p)
            hits += 1
    assert hits > len(data) // 20, "the true byte is almost never among the candidates"
    model = runs[name].model
    if name == "gpt":
        assert got["ends"] is None
    else:
        # the first window's input is bytes 0..seq_len-1: the flags are the model's own patching
        with torch.no_grad():
            ends = model.patch_ends(torch.tensor([list(data[:got["seq_len"]])]))[0].tolist()
        assert got["ends"][:got["seq_len"]] == [int(e) for e in ends]
        assert 1 < sum(got["ends"]) < len(data) - 1


def test_runs_and_curves(client, gpt_run):
    r = client.get("/api/runs").json()
    by_name = {x["name"]: x for x in r["runs"]}
    assert set(by_name) == {"gpt", "bsfin"}
    assert by_name["bsfin"]["patches"] and not by_name["gpt"]["patches"]
    assert r["limits"] == {"max_bytes": 4096, "max_new_bytes": 300}
    c = client.get("/api/runs/gpt/curves").json()
    val = [json.loads(ln) for ln in (gpt_run / "metrics.jsonl").read_text().splitlines()]
    val = [v for v in val if v.get("kind") == "val"]
    assert c["val"]["step"] == [v["step"] for v in val] == [20, 40, 60]
    assert c["val"]["bpb"] == [v["bpb"] for v in val]
    assert c["train"]["step"] == list(range(1, 61))
    assert c["train"]["bpb"][-1] < c["train"]["bpb"][0]


def test_generate_left_crops_a_prompt_longer_than_the_context(client, runs):
    """As ``bytelm generate`` does: a prompt over the context (128) continues its last 128 bytes."""
    from bytelm.generate.batch import generate_bytes
    prompt = "The cat sat on the mat. " * 6  # 144 bytes
    body = {"run": "gpt", "prompt": prompt, "max_bytes": 12, "temperature": 0}
    with client.stream("POST", "/api/generate", json=body) as r:
        assert r.status_code == 200, r.read()
        events = _events(r.iter_lines())
    got = bytes(e["byte"] for k, e in events if k == "message")
    assert got == generate_bytes(runs["gpt"].model, prompt.encode()[-128:], max_bytes=12, temperature=0)


@pytest.mark.parametrize("body, status, needle", [
    ({"run": "nope", "text": "ab"}, 404, "unknown run 'nope' (loaded: gpt, bsfin)"),
    ({"run": "../gpt", "text": "ab"}, 404, "unknown run"),
    ({"run": "gpt"}, 400, "exactly one of text and data_b64"),
    ({"run": "gpt", "text": "ab", "data_b64": "YWI="}, 400, "exactly one of text and data_b64"),
    ({"run": "gpt", "data_b64": "%%%"}, 400, "not valid base64"),
    ({"run": "gpt", "text": "a"}, 400, "at least 2 bytes"),
    ({"run": "gpt", "text": "ü" * 2049}, 413, "4,098 bytes, more than this server's limit of 4,096"),
    ({"run": "gpt", "text": "ab", "top_k": 0}, 422, "top_k: Input should be greater than or equal to 1"),
    ({"run": "gpt", "text": "ab", "path": "/etc"}, 422, "path: Extra inputs are not permitted"),
    ({"run": 3, "text": "ab"}, 422, "run: Input should be a valid string"),
])
def test_score_bad_requests(client, body, status, needle):
    r = client.post("/api/score", json=body)
    assert r.status_code == status, r.text
    msg = r.json()["error"]
    assert needle in msg and "\n" not in msg


def test_raw_bytes_and_malformed_bodies(client):
    ok = client.post("/api/score", json={"run": "gpt", "data_b64": "/wCAYWI="})  # ff 00 80 a b
    assert ok.status_code == 200 and ok.json()["bytes"] == [255, 0, 128, 97, 98]
    r = client.post("/api/score", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["error"] == "the request body is not valid JSON"
    big = b'{"run": "gpt", "text": "' + b"a" * 40000 + b'"}'
    r = client.post("/api/score", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "over the limit" in r.json()["error"]
    # a streamed body without Content-Length is cut off the same way
    r = client.post("/api/score", content=iter([big[:20000], big[20000:]]),
                    headers={"content-type": "application/json"})
    assert r.status_code == 413 and "over the limit" in r.json()["error"]


def test_host_header_checked(runs):
    from bytelm.serve import ServeConfig, create_app
    app = create_app(runs, ServeConfig(allowed_hosts=["127.0.0.1", "localhost"]))
    assert fastapi_testclient.TestClient(app, base_url="http://localhost").get("/api/runs").status_code == 200
    assert fastapi_testclient.TestClient(app, base_url="http://evil.example").get("/api/runs").status_code == 400


def _events(lines) -> list[tuple[str, dict]]:
    out, kind = [], "message"
    for ln in lines:
        if ln.startswith("event: "):
            kind = ln[7:]
        elif ln.startswith("data: "):
            out.append((kind, json.loads(ln[6:])))
            kind = "message"
    return out


@pytest.mark.parametrize("run, sampling", [
    ("gpt", {"temperature": 0.9, "top_k": 20, "top_p": 0.95}),
    ("bsfin", {"mode": "entropy", "entropy_low": 0.5, "entropy_high": 2.0, "top_k": 5}),
])
def test_generate_streams_the_models_bytes(client, runs, run, sampling):
    from bytelm.generate.batch import generate_bytes
    body = {"run": run, "prompt": "The ", "max_bytes": 40, "seed": 7, **sampling}
    with client.stream("POST", "/api/generate", json=body) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        events = _events(r.iter_lines())
    assert events[-1] == ("done", {"n": 40})
    got = bytes(e["byte"] for k, e in events if k == "message")
    sampling.setdefault("temperature", 0.8)  # the request's default
    want = generate_bytes(runs[run].model, b"The ", max_bytes=40, seed=7, **sampling)
    assert got == want


@pytest.mark.parametrize("body, status, needle", [
    ({"run": "gpt", "prompt": ""}, 422, "prompt: String should have at least 1 character"),
    ({"run": "gpt", "prompt": "a", "max_bytes": 301}, 413, "limit of 300"),
    ({"run": "gpt", "prompt": "a", "top_p": 0}, 422, "top_p: Input should be greater than 0"),
    ({"run": "gpt", "prompt": "a", "temperature": -1}, 422, "temperature"),
    ({"run": "gpt", "prompt": "a", "mode": "beam"}, 422, "mode: Input should be 'standard' or 'entropy'"),
    ({"run": "gpt", "prompt": "a", "entropy_low": 2, "entropy_high": 1}, 422, "entropy_low must be <="),
    ({"run": "x", "prompt": "a"}, 404, "unknown run 'x'"),
])
def test_generate_bad_requests(client, body, status, needle):
    r = client.post("/api/generate", json=body)
    assert r.status_code == status, r.text
    assert needle in r.json()["error"]
    assert client.get("/api/status").json() == {"generating": False}


def test_generate_is_serialised_and_stop_frees_it(server):
    """Against the live server (a real socket): a second generation waits, then gets a 409;
    closing the first stream (what the page's stop button does) ends it on the server."""
    import time

    import httpx
    long = {"run": "gpt", "prompt": "The ", "max_bytes": LONG, "temperature": 1.0}
    with httpx.Client(base_url=server, timeout=10) as c:
        with c.stream("POST", "/api/generate", json=long) as r:
            assert r.status_code == 200
            lines = r.iter_lines()  # kept: a dropped iterator closes the connection
            assert next(lines).startswith("data: ")
            assert c.get("/api/status").json() == {"generating": True}
            busy = c.post("/api/generate", json={**long, "max_bytes": 5})
            assert busy.status_code == 409 and "another generation is running" in busy.json()["error"]
        deadline = time.monotonic() + 5
        while c.get("/api/status").json()["generating"]:
            assert time.monotonic() < deadline, "closing the stream did not end the generation"
            time.sleep(0.02)
        with c.stream("POST", "/api/generate", json={**long, "max_bytes": 3}) as r:
            assert _events(r.iter_lines())[-1] == ("done", {"n": 3})


def test_cli_errors(gpt_run, monkeypatch, capsys):
    assert main(["serve", str(gpt_run), "--port", "70000"]) == 2
    assert "--port must be in 0..65535" in capsys.readouterr().err
    assert main(["serve", str(gpt_run / "nothing")]) == 2
    assert "checkpoint not found" in capsys.readouterr().err
    monkeypatch.setitem(__import__("sys").modules, "uvicorn", None)
    assert main(["serve", str(gpt_run)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "needs the serve extra (uvicorn is missing)" in err


def test_generation_steps_run_under_the_default_precision(monkeypatch):
    """Each generated byte is produced inside autocast_ctx(model device, "auto") (bf16 on CUDA,
    as `bytelm generate`), entered per step: autocast is per thread and steps move between
    worker threads."""
    import contextlib

    import torch

    from bytelm.serve import app as app_mod
    seen = []

    @contextlib.contextmanager
    def fake_ctx(device, precision):
        seen.append((device, precision, "in"))
        yield
        seen.append((device, precision, "out"))

    monkeypatch.setattr(app_mod, "autocast_ctx", fake_ctx)

    def gen():
        yield 65
        yield 66

    it, dev = gen(), torch.device("cpu")
    assert [app_mod._next_byte(it, dev) for _ in range(3)] == [65, 66, None]
    assert seen == [(dev, "auto", "in"), (dev, "auto", "out")] * 3
