"""bytelm chat: history carried across turns, replies stop at the stop string, Ctrl-C stops a
reply without ending the session."""
import bytelm
from bytelm.generate import generate_bytes


def test_chat_keeps_history(run_cli, ckpt):
    opts = ("--temperature", "0", "--mode", "standard", "--max-bytes", "6", "--stop", "")
    rc, out, err = run_cli("chat", ckpt, *opts, stdin=b"ab\ncd\n\n")
    assert rc == 0, err
    model = bytelm.load(ckpt)
    first = generate_bytes(model, b"ab\n", max_bytes=6, temperature=0)
    second = generate_bytes(model, b"ab\n" + first + b"\ncd\n", max_bytes=6, temperature=0)
    expected = first.decode("utf-8", "replace") + "\n" + second.decode("utf-8", "replace") + "\n"
    assert out == expected


def test_chat_ctrl_c_stops_only_the_reply(run_cli, ckpt, monkeypatch):
    import importlib
    gen = importlib.import_module("bytelm.generate")  # the module (bytelm.generate is the function)
    calls = {"n": 0}
    real = gen.iter_generate

    def interrupted(*a, **k):
        calls["n"] += 1
        if calls["n"] == 1:
            yield from real(*a, **{**k, "max_bytes": 2})
            raise KeyboardInterrupt
        yield from real(*a, **k)

    monkeypatch.setattr(gen, "iter_generate", interrupted)
    rc, out, err = run_cli("chat", ckpt, "--max-bytes", "3", "--stop", "", stdin=b"ab\ncd\n\n")
    assert rc == 0, err
    assert "[stopped]" in out and calls["n"] == 2


def test_chat_compiled_decoding_same_replies(run_cli, tmp_path):
    """--compile (AGIFORMER's compiled fixed-shape decoder, reused across turns) gives the
    replies of the default path."""
    import torch
    torch.manual_seed(0)
    bytelm.create_model("agiformer-tiny").save(tmp_path / "agi")
    opts = ("--temperature", "0", "--mode", "standard", "--max-bytes", "6", "--stop", "")
    outs = []
    for extra in ((), ("--compile",)):
        rc, out, err = run_cli("chat", tmp_path / "agi", *opts, *extra, stdin=b"ab\ncd\n\n")
        assert rc == 0, err
        outs.append(out)
    assert outs[0] == outs[1] and outs[0].count("\n") == 2
