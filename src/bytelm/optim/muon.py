"""Muon for the hidden matrices, AdamW for the rest, as one optimizer (``optim.name=muon``).

Muon (``torch.optim.Muon``: momentum, then Newton-Schulz orthogonalisation of the update) is
meant for the 2-D weights of hidden layers only; embeddings, the logits layer, norms and biases
stay on AdamW (Jordan et al. 2024; Liu et al. 2025, "Muon is scalable for LLM training"). The
update is scaled to AdamW's RMS (``adjust_lr_fn="match_rms_adamw"``), so the AdamW recipe's
learning rate and weight decay carry over.

``MuonAdamW`` is a ``torch.optim.Optimizer`` whose ``param_groups`` and ``state`` are those of an
inner ``torch.optim.Muon`` and ``torch.optim.AdamW`` (the same dicts), so the trainer's
per-group learning rates (``lr_mult``), ``state_dict``/``load_state_dict`` and distributed
checkpointing see one optimizer. Each group carries ``"muon": True/False``.
"""
import torch
from torch import nn

from bytelm.optim.closure import call_closure

# names (suffixes) of the layers that produce logits in bytelm's families: AdamW, never Muon
LOGIT_LAYERS = ("head.weight", "head.out.weight")


def muon_param_names(model: nn.Module) -> set[str]:
    """Names of the parameters Muon updates: 2-D weights that are neither an embedding nor the
    logits layer (``LOGIT_LAYERS``)."""
    emb = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    return {n for n, p in model.named_parameters()
            if p.requires_grad and p.dim() == 2 and id(p) not in emb and not n.endswith(LOGIT_LAYERS)}


class MuonAdamW(torch.optim.Optimizer):
    """One optimizer over ``groups`` (the model's ``param_groups``): each group is split into
    its Muon part (parameters in ``muon_ids``) and its AdamW part, keeping its other keys."""

    def __init__(self, groups: list[dict], muon_ids: set[int], lr: float, betas, eps: float,
                 momentum: float = 0.95, fused: bool | None = None, impl: str = "torch"):
        mu, ad = [], []
        for g in groups:
            rest = {k: v for k, v in g.items() if k != "params"}
            m = [p for p in g["params"] if id(p) in muon_ids]
            a = [p for p in g["params"] if id(p) not in muon_ids]
            if m:
                mu.append({**rest, "params": m, "muon": True})
            if a:
                ad.append({**rest, "params": a, "muon": False})
        if impl not in ("torch", "batched"):
            raise ValueError(f"muon impl must be 'torch' or 'batched', got {impl!r}")
        from bytelm.optim.batched_muon import BatchedMuon
        muon_cls = BatchedMuon if impl == "batched" else torch.optim.Muon
        self._muon = muon_cls(mu, lr=lr, momentum=momentum, adjust_lr_fn="match_rms_adamw") if mu else None
        self._adam = torch.optim.AdamW(ad, lr=lr, betas=betas, eps=eps, fused=fused) if ad else None
        inner = [o for o in (self._muon, self._adam) if o is not None]
        super().__init__([g for o in inner for g in o.param_groups], {})
        self._link()

    def _link(self) -> None:
        """Points the inner optimizers at this one's group dicts and state (after a load)."""
        if self._muon is not None:
            self._muon.param_groups = [g for g in self.param_groups if g["muon"]]
            self._muon.state = self.state
        if self._adam is not None:
            self._adam.param_groups = [g for g in self.param_groups if not g["muon"]]
            self._adam.state = self.state

    def load_state_dict(self, state_dict: dict) -> None:
        super().load_state_dict(state_dict)
        self._link()

    @torch.no_grad()
    def step(self, closure=None):
        loss = call_closure(closure)
        for o in (self._muon, self._adam):
            if o is not None:
                o.step()
        return loss


def build_muon(model: nn.Module, groups: list[dict], cfg) -> MuonAdamW:
    """``MuonAdamW`` over ``groups`` of ``model`` with the AdamW settings of ``cfg``."""
    names = muon_param_names(model)
    ids = {id(p) for n, p in model.named_parameters() if n in names}
    on_cuda = next(model.parameters()).is_cuda
    return MuonAdamW(groups, ids, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps,
                     momentum=cfg.muon_momentum, fused=on_cuda or None, impl=cfg.muon_impl)
