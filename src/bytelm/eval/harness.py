"""lm-evaluation-harness backend: ``--model bytelm --model_args pretrained=RUN``.

Importing this module registers the model type ``bytelm`` with lm_eval (``bytelm lm-eval``
does, then runs lm_eval's own CLI). Text is UTF-8 bytes; no tokenizer is involved.

- loglikelihood(context, continuation): ln p(continuation bytes | context bytes), and whether
  greedy decoding gives them. An empty context reads ``prefix`` (default one newline byte)
  instead, where token models read BOS. Trailing spaces stay in the context (token backends
  move them into the continuation for tokenization's sake; bytes have no such issue).
- loglikelihood_rolling(text): ln p of all of ``prefix + text``'s text bytes, in disjoint
  windows of the model's context (``bytelm.eval.loglik``). lm_eval turns it into word and byte
  perplexity and bits per byte (bits per byte here = bytelm eval's, on the same windows).
- generate_until(context, gen_kwargs): bytelm's cached decoding (``iter_generate``: O(1)
  model work per byte for AGIFORMER/BSFIN, a KV cache for the Transformer), greedy unless
  ``do_sample``; stops at any ``until`` string or ``max_gen_toks`` bytes. A context longer than
  the model's is cropped from the left. Requests run one after another.
"""
import logging

import torch
from lm_eval.api.model import LM
from lm_eval.api.registry import register_model
from tqdm import tqdm

from bytelm.errors import UserError

log = logging.getLogger(__name__)


@register_model("bytelm")
class BytelmLM(LM):
    """An lm_eval LM over a bytelm checkpoint (run dir, checkpoint dir or ``export-hf`` dir).

    Args:
        pretrained: path given to ``bytelm.load``.
        device: "auto", "cpu", "cuda", "cuda:N".
        batch_size: windows per forward for the log-likelihood requests.
        prefix: text read before an empty context and before every rolling document.
        precision: "auto" (bf16 autocast on CUDA), "bf16" or "fp32".
    """

    def __init__(self, pretrained: str, device: str = "auto", batch_size: int | str = 16,
                 prefix: str = "\n", precision: str = "auto", max_batch_size: int | None = None,
                 **unknown):
        super().__init__()
        if unknown:
            raise UserError(f"unknown --model_args for bytelm: {', '.join(sorted(unknown))} "
                            "(pretrained, device, batch_size, prefix, precision)")
        from bytelm.train.checkpoint import load_model
        from bytelm.train.distributed import pick_device
        device = str(device)
        if device.startswith("cuda") and not torch.cuda.is_available():
            # lm_eval's CLI asks for cuda:0 unless told otherwise, as its HF backend does
            log.warning("no CUDA device: running on the CPU")
            device = "cpu"
        self.model = load_model(pretrained, device=pick_device(device))
        self._device = next(self.model.parameters()).device
        self.batch_size = _batch_size(batch_size)
        self.prefix = prefix.encode("utf-8")
        if not self.prefix:
            raise UserError("prefix must be at least one byte (the first byte needs a context)")
        if precision not in ("auto", "bf16", "fp32"):
            raise UserError(f"precision must be auto, bf16 or fp32, got {precision!r}")
        self.precision = precision

    def _score(self, requests: list[tuple[bytes, int]], desc: str, disable_tqdm: bool):
        from bytelm.eval.loglik import score_requests
        return score_requests(self.model, requests, self.batch_size, self.precision,
                              progress=desc if not disable_tqdm else None)

    def loglikelihood(self, requests, disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        from bytelm.eval.loglik import pair_request
        todo = [pair_request(ctx, cont, self.prefix) for ctx, cont in (r.args[:2] for r in requests)]
        out = self._score(todo, "loglikelihood", disable_tqdm)
        return self._cached("loglikelihood", requests, out)

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False) -> list[float]:
        from bytelm.eval.loglik import rolling_request
        todo = [rolling_request(r.args[0], self.prefix) for r in requests]
        out = [ll for ll, _ in self._score(todo, "loglikelihood_rolling", disable_tqdm)]
        return self._cached("loglikelihood_rolling", requests, out)

    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        from bytelm.generate.batch import iter_generate
        C = self.model.config.context
        out = []
        for ctx, kw in tqdm([r.args for r in requests], desc="generate_until",
                            disable=disable_tqdm):
            kw = dict(kw or {})
            until = kw.pop("until", None) or []
            until = [until] if isinstance(until, str) else list(until)
            stops = [u.encode("utf-8") for u in until if u]
            max_new = int(kw.pop("max_gen_toks", 256))
            sample = bool(kw.pop("do_sample", False))
            temperature = float(kw.get("temperature", 1.0)) if sample else 0.0
            top_p, top_k = float(kw.get("top_p", 1.0)), int(kw.get("top_k", 0))
            prompt = (ctx.encode("utf-8") or self.prefix)[-C:]
            got = bytearray()
            for b in iter_generate(self.model, prompt, max_bytes=max_new, temperature=temperature,
                                   top_p=top_p, top_k=top_k):
                got.append(b)
                if any(got.endswith(s) for s in stops):
                    break
            cut = min([got.find(s) for s in stops if s in got] or [len(got)])
            out.append(bytes(got[:cut]).decode("utf-8", errors="replace"))
        return self._cached("generate_until", requests, out)

    def _cached(self, kind: str, requests, results: list) -> list:
        for r, res in zip(requests, results):
            self.cache_hook.add_partial(kind, r.args, res)
        return results


def _batch_size(value) -> int:
    # lm_eval passes "auto" / "auto:N" from --batch_size; windows are small, a fixed size is fine
    if isinstance(value, str) and value.startswith("auto"):
        return 16
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise UserError(f"batch_size must be a positive integer or auto, got {value!r}") from None
    if n < 1:
        raise UserError(f"batch_size must be >= 1, got {n}")
    return n
