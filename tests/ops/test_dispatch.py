"""bytelm.ops.dispatch.resolve_impl: names, env override, device rules."""
import pytest

from bytelm.ops.dispatch import resolve_impl


def test_resolve_impl(monkeypatch):
    monkeypatch.delenv("BYTELM_IMPL", raising=False)
    assert resolve_impl("auto", "cpu") == "chunk"
    assert resolve_impl("auto", "cuda") == "triton"
    assert resolve_impl("auto", "cuda", triton_available=False) == "chunk"
    assert resolve_impl("naive", "cpu") == "naive"
    assert resolve_impl("chunk", "cuda") == "chunk"
    with pytest.raises(ValueError):
        resolve_impl("triton", "cpu")
    with pytest.raises(ValueError):
        resolve_impl("fused", "cpu")


def test_env_overrides_auto(monkeypatch):
    monkeypatch.setenv("BYTELM_IMPL", "naive")
    assert resolve_impl("auto", "cpu") == "naive"
    assert resolve_impl("auto", "cuda") == "naive"
    assert resolve_impl("chunk", "cpu") == "chunk"  # an explicit choice wins
    monkeypatch.setenv("BYTELM_IMPL", "bogus")
    with pytest.raises(ValueError):
        resolve_impl("auto", "cpu")


def test_auto_keeps_chunk_until_kernel_is_preferred():
    assert resolve_impl("auto", "cuda", prefer_triton=False) == "chunk"
    assert resolve_impl("triton", "cuda", prefer_triton=False) == "triton"
