"""The causal UTF-8 rule: may a patch end at byte t, judged only from bytes <= t?

A patch must never end inside a multi-byte character, i.e. before a continuation byte
(0b10xxxxxx). Whether byte t+1 is a continuation byte is not known when byte t arrives, so the
rule is stated on byte t alone and its past: an end at t is allowed iff byte t completes a
character. Structurally (lead bytes announce a length; overlong forms, surrogates and code
points above U+10FFFF are not checked):

- an ASCII byte (0xxxxxxx) or a byte 0xF8..0xFF (never valid UTF-8: a one-byte character);
- a continuation byte that completes the sequence announced by its lead byte, found by counting
  back over the run of continuation bytes; a continuation byte beyond the announced length or
  with no lead byte before its run (a stray, also at the start of a row) is a one-byte character;
- never a lead byte (110xxxxx, 1110xxxx, 11110xxx) or a non-final continuation byte.

A lead byte followed by a non-continuation byte (a truncated sequence) is invalid UTF-8 and
would be a one-byte character, but that is only known one byte later, so no end is placed at
it. For valid UTF-8 the allowed positions are exactly the last bytes of the characters.
"""
import torch


def char_end_mask(x: torch.Tensor) -> torch.Tensor:
    """Where a patch may end without splitting a UTF-8 character, decided causally.

    Args:
        x: (B, T) bytes (uint8 or any integer dtype holding 0..255).
    Returns:
        (B, T) bool; [b, t] depends only on x[b, :t+1].
    """
    x = x.long()
    B, T = x.shape
    is_cont = (x & 0xC0) == 0x80
    idx = torch.arange(T, device=x.device).expand(B, T)
    # position of the last non-continuation byte at or before t (-1: none in the row)
    head = torch.where(is_cont, torch.full_like(idx, -1), idx).cummax(dim=1).values
    run = idx - head  # continuation bytes in the run ending at t (0 when x[t] is not one)
    lead = x.gather(1, head.clamp(min=0)).masked_fill(head < 0, 0)
    n = announced_length(lead)  # 0 when the run has no lead byte
    # a continuation byte completes its character iff it is the last announced one (run == n-1);
    # beyond it (run >= n) or without a lead (n == 0, so run >= -1 always holds) it stands alone
    cont_ok = run >= n - 1
    lead_here = announced_length(x) > 0
    return torch.where(is_cont, cont_ok, ~lead_here)


def announced_length(b: torch.Tensor) -> torch.Tensor:
    """Length of the sequence a lead byte announces: 2, 3 or 4; 0 for any other byte."""
    b = b.long()
    return torch.where((b & 0xE0) == 0xC0, 2,
                       torch.where((b & 0xF0) == 0xE0, 3,
                                   torch.where((b & 0xF8) == 0xF0, 4, 0)))
