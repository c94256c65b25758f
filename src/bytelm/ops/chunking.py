"""Pieces shared by the chunked linear-memory ops (hebbian, delta): the padding and reshaping of
(B, T, H, ...) inputs into chunks, and the masked segment sums of log decays."""
import torch
import torch.nn.functional as F


def to_chunks(x: torch.Tensor, chunk_size: int) -> torch.Tensor:
    """(B, T, H, *F) -> (B, H, N, C, *F), zero-padded at the end to N*C steps (padded steps must
    be no-ops for the op: g = 0, no write)."""
    B, T, H = x.shape[:3]
    N = max(1, -(-T // chunk_size))
    pad = N * chunk_size - T
    if pad:
        x = F.pad(x, (0, 0) * (x.dim() - 2) + (0, pad))
    x = x.view(B, N, chunk_size, H, *x.shape[3:])
    return x.permute(0, 3, 1, 2, *range(4, x.dim()))


def from_chunks(o: torch.Tensor, T: int) -> torch.Tensor:
    """(B, H, N, C, V) -> (B, T, H, V): the inverse of ``to_chunks`` with the padding dropped."""
    B, H, N, C, V = o.shape
    return o.permute(0, 2, 3, 1, 4).reshape(B, N * C, H, V)[:, :T]


def segsum(g_BHNC: torch.Tensor) -> torch.Tensor:
    """seg[..., t, s] = sum_{s < r <= t} g_r for s <= t, -inf above the diagonal.

    Each entry is summed from its own terms (not b_t - b_s), so it keeps full relative precision
    when the cumulative sums are large; masked entries are -inf BEFORE any exp.
    """
    C = g_BHNC.shape[-1]
    ones = torch.ones(C, C, dtype=torch.bool, device=g_BHNC.device)
    # x[..., r, s] = g_r where r > s (strictly lower triangle), summed over r <= t by the cumsum
    strict = torch.tril(ones, diagonal=-1)
    x = g_BHNC[..., :, None].expand(*g_BHNC.shape, C).masked_fill(~strict, 0.0)
    seg = torch.cumsum(x, dim=-2)  # (B, H, N, C, C)
    return seg.masked_fill(~torch.tril(ones), float("-inf"))
