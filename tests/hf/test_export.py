"""bytelm -> `export_hf` directory -> transformers -> the same logits and greedy bytes, every family."""
import pytest
import torch

import bytelm
from bytelm.generate.batch import generate_bytes

transformers = pytest.importorskip("transformers")

PRESETS = ["transformer-tiny", "agiformer-tiny", "bsfin-tiny", "hnet-tiny"]
PROMPT = "Hello, wor"


@pytest.fixture(scope="module", params=PRESETS)
def exported(request, tmp_path_factory):
    """(bytelm model, transformers model, tokenizer, export dir) for one tiny preset."""
    from bytelm.hf.export import export_hf
    torch.manual_seed(0)
    model = bytelm.create_model(request.param).eval()
    out = export_hf(model, tmp_path_factory.mktemp("hf") / request.param)
    hf = transformers.AutoModelForCausalLM.from_pretrained(out, trust_remote_code=True)
    tok = transformers.AutoTokenizer.from_pretrained(out, trust_remote_code=True)
    return model, hf, tok, out


def test_export_hf_logits(exported, one_thread):
    model, hf, _, _ = exported
    x = torch.randint(0, 256, (2, model.config.context), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        ref, got = model(x).logits, hf(x).logits
    assert got.dtype == torch.float32
    assert (got - ref).abs().max().item() < 1e-5
    # the comparison can fail: other bytes give other logits
    with torch.no_grad():
        assert (hf((x + 1) % 256).logits - ref).abs().max().item() > 1e-3


def test_export_hf_generate(exported, one_thread):
    """Greedy generate() == bytelm generate --temperature 0, past the context (128) where the
    Transformer's KV cache is rebuilt."""
    model, hf, tok, _ = exported
    n = model.config.context + 40
    ids = tok(PROMPT, return_tensors="pt")
    with torch.no_grad():
        out = hf.generate(**ids, max_new_tokens=n, do_sample=False)
    got = tok.decode_bytes(out[0, ids["input_ids"].shape[1]:])
    assert got == generate_bytes(model, PROMPT, max_bytes=n, temperature=0)
    assert len(got) == n


def test_export_hf_generate_uncached(exported, one_thread):
    """use_cache=False recomputes the whole prefix each byte: the same bytes."""
    model, hf, tok, _ = exported
    ids = tok(PROMPT, return_tensors="pt")
    with torch.no_grad():
        out = hf.generate(**ids, max_new_tokens=12, do_sample=False, use_cache=False)
    assert tok.decode_bytes(out[0, ids["input_ids"].shape[1]:]) == generate_bytes(
        model, PROMPT, max_bytes=12, temperature=0)


def test_load_export(exported):
    """bytelm.load reads an exported directory back: same config, same weights."""
    model, _, _, out = exported
    back = bytelm.load(out)
    assert back.config == model.config
    own = model.state_dict()
    assert all(torch.equal(v, own[k]) for k, v in back.state_dict().items())


def test_padding_refused(exported):
    _, hf, _, _ = exported
    x = torch.randint(0, 256, (2, 8))
    mask = torch.ones_like(x)
    mask[0, 0] = 0
    with pytest.raises(ValueError, match="no padding"):
        hf(x, attention_mask=mask)
