"""Shared comparison helpers for the op tests."""
import torch


def rel_rms(actual: torch.Tensor, expected: torch.Tensor) -> float:
    """||actual - expected||_rms / ||expected||_rms, in fp64 (0 when both are zero)."""
    a, e = actual.detach().double(), expected.detach().double()
    num = (a - e).pow(2).mean().sqrt().item()
    den = e.pow(2).mean().sqrt().item()
    return num / den if den > 0 else num


def assert_close(actual: torch.Tensor, expected: torch.Tensor, tol: float, name: str = "") -> None:
    """Shapes equal, everything finite, relative RMS error below tol."""
    assert actual.shape == expected.shape, f"{name}: shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    assert torch.isfinite(actual).all(), f"{name}: non-finite values"
    err = rel_rms(actual, expected)
    assert err < tol, f"{name}: relative RMS error {err:.3e} >= {tol:.1e}"


def assert_same(res, ref, tol: float, grad_tol: float | None = None) -> None:
    """res and ref are (o, final_state, {name: grad}) of two implementations: all must match."""
    o, s, grads = res
    o_ref, s_ref, grads_ref = ref
    assert_close(o.float(), o_ref.float(), tol, "o")
    assert_close(s, s_ref, tol, "final_state")
    assert grads.keys() == grads_ref.keys()
    for n in grads_ref:
        assert_close(grads[n].float(), grads_ref[n].float(), grad_tol or tol, f"d{n}")
