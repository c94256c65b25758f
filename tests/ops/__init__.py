"""Shared comparison helper for the op tests."""
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
