"""Tokenized baseline of the Kasgarli test: the same Transformer over BPE tokens, in bits per byte.

The report's thesis is that tokenizers penalise agglutinative languages and bytes do not. To test
it, each language also gets a byte-level BPE tokenizer (Hugging Face ``tokenizers``, trained on
that language's training split only, lossless: decode(encode(text)) == text) and a Transformer of
the same preset whose embedding and output head are resized to the vocabulary. It trains for the
same training FLOPs as the byte model (counted as ``flops_per_byte`` per position: 6 x non-
embedding parameters, the larger head included, + attention) and is scored on the same held-out
text: total bits of the test tokens / bytes they cover. As for the byte models, the first symbol
of the test stream is not scored (its bytes are left out of the denominator).

Equal FLOPs give the token model ~3-5x more passes over a small training split than the byte
model (a token covers 3-5 bytes), so its last step can be far past its best: a 30M Transformer on
the 3.7 MB Bible splits ends at ~13 epochs, train loss a fifth of test. The baseline is therefore
chosen on the validation split, as a tuned tokenized model would be: ``FRACTIONS`` of the budget
are each trained with their own learning-rate schedule, validation bpb is checked ``N_EVALS``
times in each, and the test split is scored once, with the weights of the best check
(``SELECTION``). The full-budget run's last step is kept too (``test_final``), the number an
unselected baseline would report.
"""
import logging
import math

import numpy as np
import torch
from torch import nn

from bytelm.config import OptimConfig
from bytelm.errors import UserError
from bytelm.nn.loss import byte_cross_entropy
from bytelm.optim import build_optimizer
from bytelm.train.schedule import lr_factor
from bytelm.train.step import MicroLoss, StepConfig, TrainStep

log = logging.getLogger(__name__)

FRACTIONS = (1.0, 0.5, 0.25)  # of the byte model's training FLOPs, one schedule each
N_EVALS = 10  # validation checks per schedule


def selection_rule(fractions=FRACTIONS, n_evals: int = N_EVALS) -> str:
    """The recorded rule by which a baseline's weights were chosen (kept with each result)."""
    return (f"best validation bpb over {n_evals} checks in each of {len(fractions)} schedules "
            f"({', '.join(f'{f:g}' for f in sorted(fractions, reverse=True))} of the FLOP budget)")


SELECTION = selection_rule()


def _text(data: bytes, what: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UserError(f"{what} is not valid UTF-8 (byte {e.start}); BPE needs text") from None


def train_bpe(train: bytes, vocab_size: int):
    """A byte-level BPE tokenizer (GPT-2 style pre-tokenisation) trained on ``train``.

    Args:
        train: UTF-8 training text.
        vocab_size: target vocabulary (>= 256 + 1: the 256 byte symbols are always in it).
    Returns:
        tokenizers.Tokenizer.
    """
    try:
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    except ImportError:
        raise UserError("the BPE baseline needs the `tokenizers` package "
                        "(pip install tokenizers)") from None
    if vocab_size <= 256:
        raise UserError(f"BPE vocabulary must be > 256 (the byte alphabet), got {vocab_size}")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(_text(train, "the training split").splitlines(keepends=True), trainer)
    return tok


def encode(tok, data: bytes) -> np.ndarray:
    """Token ids of ``data`` (line by line, newlines kept), int64; lossless (checked)."""
    text = _text(data, "the text")
    ids = [i for enc in tok.encode_batch(text.splitlines(keepends=True)) for i in enc.ids]
    out = np.asarray(ids, dtype=np.int64)
    if tok.decode(out.tolist()) != text:
        raise RuntimeError("BPE round trip is not lossless")  # a tokenizers bug, not user input
    return out


def _n_bytes(tok, ids) -> int:
    """UTF-8 bytes spelled by token ids (byte-level tokens: one alphabet symbol per byte)."""
    return sum(len(tok.id_to_token(int(i))) for i in ids)


def token_model(preset: str, vocab_size: int, context: int | None = None):
    """The byte preset with its embedding and head resized to ``vocab_size`` (re-initialised)."""
    from bytelm.registry import create_model
    model = create_model(preset, **({"context": context} if context else {}))
    if not (hasattr(model, "embed") and hasattr(model, "head")
            and isinstance(model.embed, nn.Embedding) and isinstance(model.head, nn.Linear)):
        raise UserError(f"the BPE baseline needs a Transformer preset (embed + head), got {preset}")
    d, std = model.embed.embedding_dim, model.config.init_std
    model.embed = nn.Embedding(vocab_size, d)
    model.head = nn.Linear(d, vocab_size, bias=False)
    for w in (model.embed.weight, model.head.weight):
        nn.init.normal_(w, 0.0, std)
    return model


def train_tokens(model, ids: np.ndarray, steps: int, batch_size: int, seq_len: int,
                 optim: OptimConfig | None = None, device="cpu", precision: str = "auto",
                 seed: int = 0, on_eval=None, eval_every: int = 0) -> list[dict]:
    """The byte runs' recipe on random windows of the token stream: ``build_optimizer`` and
    ``lr_factor`` of ``optim`` (default OptimConfig()), its gradient clipping.

    ``on_eval(step)``, if given, is called every ``eval_every`` steps and after the last (the
    model is put back in training mode after it). Returns the loss history [{"step", "loss"}]
    (nats per token, every ~steps/20 steps).
    """
    if len(ids) < seq_len + 2:
        raise UserError(f"training split has {len(ids)} tokens, fewer than a {seq_len + 1}-token "
                        f"window; use a shorter --data.seq_len or more data")
    device = torch.device(device)
    model.to(device).train()
    optim = optim or OptimConfig()
    # bf16 autocast on CUDA only (precision "bf16" on a CPU trains in fp32, as score_tokens scores)
    step_fn = TrainStep(model, build_optimizer(model, optim),
                        StepConfig(precision=precision if device.type == "cuda" else "fp32",
                                   grad_clip=optim.grad_clip))
    rng = np.random.default_rng(seed)
    data = torch.from_numpy(ids)
    hist, every = [], max(1, steps // 20)
    for step in range(steps):
        lr = optim.lr * lr_factor(step, steps, min(optim.warmup_steps, steps), optim.schedule,
                                  optim.min_lr_ratio, optim.wsd_decay_frac)
        starts = rng.integers(0, len(ids) - seq_len - 1, size=batch_size)
        xy = torch.stack([data[s:s + seq_len + 1] for s in starts]).to(device)

        def micro(_: int, xy=xy, step=step) -> MicroLoss:
            ml = step_fn.lm_loss(xy)  # a token Transformer: no aux loss (0)
            if not torch.isfinite(ml.loss):  # before the update
                raise FloatingPointError(f"non-finite loss at step {step + 1} of the BPE baseline")
            return ml
        res = step_fn(lr, micro)
        if (step + 1) % every == 0 or step + 1 == steps:
            hist.append({"step": step + 1, "loss": float(res.loss)})
        if on_eval is not None and eval_every > 0 and ((step + 1) % eval_every == 0
                                                       or step + 1 == steps):
            on_eval(step + 1)
            model.train()
    return hist


@torch.no_grad()
def score_tokens(model, tok, ids: np.ndarray, seq_len: int, batch_size: int = 16,
                 device="cpu", precision: str = "auto") -> dict:
    """Bits of every test token but the first, given the preceding ones in windows of
    ``seq_len`` (each window starts where the last ended: no token is scored twice).

    Returns {"bits", "n_tokens", "n_bytes", "bpb", "bytes_per_token"}; n_bytes counts the UTF-8
    bytes of the scored tokens (the text minus its first token).
    """
    device = torch.device(device)
    model.to(device).eval()
    bf16 = device.type == "cuda" and precision in ("auto", "bf16")
    data = torch.from_numpy(ids)
    starts = list(range(0, len(ids) - 1, seq_len))
    bits = 0.0
    for i in range(0, len(starts), batch_size):
        chunk = [data[s:s + seq_len + 1] for s in starts[i:i + batch_size]]
        L = max(len(c) for c in chunk)
        x = torch.zeros(len(chunk), L, dtype=torch.long)
        mask = torch.zeros(len(chunk), L - 1, dtype=torch.bool)
        for b, c in enumerate(chunk):
            x[b, :len(c)] = c
            mask[b, :len(c) - 1] = True
        x, mask = x.to(device), mask.to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = model(x[:, :-1]).logits
        nats = byte_cross_entropy(logits, x[:, 1:], mask, reduction="sum")
        bits += float(nats) / math.log(2)
    # bytes covered by the scored tokens: the whole text minus the first token's bytes (a token
    # may hold part of a multi-byte character, so count via byte-level pieces, not decode)
    n_bytes = _n_bytes(tok, ids) - _n_bytes(tok, ids[:1]) if len(ids) > 1 else 0
    n = max(len(ids) - 1, 0)
    return {"bits": bits, "n_tokens": n, "n_bytes": n_bytes,
            "bpb": bits / n_bytes if n_bytes else float("nan"),
            "bytes_per_token": n_bytes / n if n else float("nan")}


def bpe_baseline(preset: str, train: bytes, test: bytes, vocab_size: int, byte_flops: float,
                 batch_size: int, seq_len: int, optim: OptimConfig | None = None, device="cpu",
                 precision: str = "auto", seed: int = 0, val: bytes | None = None,
                 fractions: tuple = FRACTIONS, n_evals: int = N_EVALS) -> dict:
    """Tokenizer + Transformer over tokens at (at most) the byte model's training FLOPs, scored
    in bits per byte of ``test``. ``byte_flops`` is the byte model's total training FLOPs;
    ``optim`` its optimizer settings (the same recipe; warm-up capped at the token run's steps).

    With ``val`` the weights are chosen on it (module docstring): each of ``fractions`` of the
    budget trains a fresh model (same initialisation, seed ``seed``) with its own schedule,
    ``n_evals`` validation checks each; ``test`` is scored with the best check's weights.
    Without ``val``: the full budget's last step (``fractions``, ``n_evals`` unused).
    """
    tok = train_bpe(train, vocab_size)
    tr_ids, te_ids = encode(tok, train), encode(tok, test)
    va_ids = encode(tok, val) if val is not None else None
    if va_ids is not None and len(va_ids) < 2:
        raise UserError("the validation split has fewer than 2 BPE tokens")
    if va_ids is None or not fractions:
        fractions = (1.0,)
    if max(fractions) != 1.0 or min(fractions) <= 0:
        raise UserError(f"BPE budget fractions must be in (0, 1] and include 1, got {fractions}")
    torch.manual_seed(seed)
    model = token_model(preset, tok.get_vocab_size(), context=seq_len)
    init = {k: v.detach().clone() for k, v in model.state_dict().items()}
    fpt = model.flops_per_byte(seq_len)  # per position: here per token
    steps = max(1, round(byte_flops / (fpt * batch_size * seq_len)))
    log.info("BPE %d: %.2f bytes/token (train), %d steps at the byte model's %.3g FLOPs",
             vocab_size, len(train) / max(len(tr_ids), 1), steps, byte_flops)

    def epochs(step: int) -> float:  # passes over the training tokens after ``step`` steps
        return step * batch_size * seq_len / max(len(tr_ids), 1)

    best = {"val_bpb": math.inf}
    candidates, hist, final = [], [], None
    for frac in sorted(fractions, reverse=True):
        n = max(1, round(steps * frac))
        model.load_state_dict(init)
        curve = []

        def check(step, frac=frac, curve=curve):
            v = score_tokens(model, tok, va_ids, seq_len, device=device, precision=precision)
            curve.append({"step": step, "bpb": v["bpb"]})
            if v["bpb"] < best["val_bpb"]:
                state = {k: t.detach().to("cpu", copy=True) for k, t in model.state_dict().items()}
                best.update(val_bpb=v["bpb"], fraction=frac, step=step, epochs=epochs(step),
                            state=state)

        h = train_tokens(model, tr_ids, n, batch_size, seq_len, optim, device=device,
                         precision=precision, seed=seed,
                         on_eval=None if va_ids is None else check,
                         eval_every=max(1, n // max(n_evals, 1)))
        candidates.append({"fraction": frac, "steps": n, "epochs": epochs(n),
                           "final_train_loss": h[-1]["loss"] if h else None, "val_curve": curve})
        if frac == 1.0:
            hist = h
            final = score_tokens(model, tok, te_ids, seq_len, device=device, precision=precision)
    if "state" in best:
        model.load_state_dict(best.pop("state"))
        score = score_tokens(model, tok, te_ids, seq_len, device=device, precision=precision)
        selection = {"rule": selection_rule(fractions, n_evals), **best,
                     "train_flops": fpt * best["step"] * batch_size * seq_len}
    else:
        score, selection = final, {"rule": "last step of the full budget (no validation split)"}
    return {"vocab_size": tok.get_vocab_size(), "vocab_requested": vocab_size,
            "train_bytes_per_token": len(train) / max(len(tr_ids), 1),
            "test_bytes_per_token": score["bytes_per_token"], "steps": steps,
            "batch_size": batch_size, "seq_len_tokens": seq_len, "flops_per_token": fpt,
            "train_flops": fpt * steps * batch_size * seq_len, "byte_model_flops": byte_flops,
            "n_params": model.n_params(), "final_train_loss": hist[-1]["loss"] if hist else None,
            "test": _test_record(score), "test_final": _test_record(final),
            "selection": selection, "candidates": candidates, "train_curve": hist}


def _test_record(score: dict) -> dict:
    return {"bpb": score["bpb"], "bits": score["bits"], "scored_bytes": score["n_bytes"],
            "scored_tokens": score["n_tokens"]}
