"""EnhancedSGD: SGD with heavy-ball momentum and decoupled weight decay, whose learning-rate scale
and momentum are chosen every K steps by a tabular Q-learning controller (SPEC section 3).

The original (original_code_study.md section 2.8) was driven by noise: its reward came from one
micro-batch, its gradient statistics were read after clipping, and its compounded scales walked
the learning rate to 0.1 and the loss to divergence. Here:

- the controller decides once per window of K optimizer steps; its inputs are statistics of the
  whole window: an EMA of the loss (span K), the pre-clip gradient norms (median, coefficient of
  variation, spikes relative to a running median of earlier windows) and non-finite counts;
- reward = tanh(relative improvement of the smoothed loss / reward_scale)
  - spike_penalty * min(1, spikes / (0.1 K)) - nonfinite_penalty * [any NaN/Inf in the window];
- actions are one LR factor x one momentum factor, both sets containing 1.0; the scales compound
  but are clamped: the controller's peak LR ``lr * lr_scale`` stays in [lr_min, lr_max], the
  momentum in [0, 0.999], and the LR used by a step never exceeds lr_max;
- momentum factors act on the averaging horizon 1 / (1 - mu) (x0.5, x1, x2: 0.9 -> 0.8 / 0.95),
  so a factor can never push mu to or past 1;
- observe() only queues device tensors; the queue is read once per window (one host sync per K
  steps);
- the Q-table, epsilon, the generator state, the window buffers and the decision history are in
  ``state_dict()`` (``QController.state_dict()``: tensors and plain values; inside the
  optimizer's state dict: one JSON string in param group 0, see ``EnhancedSGD.state_dict``), so
  ``torch.load(weights_only=True)`` reads it and resuming reproduces the decision sequence exactly.

Composition with the trainer's schedule: the trainer writes the scheduled LR (warmup, cosine...)
into ``param_group["lr"]`` before every step; ``step()`` uses ``min(param_group["lr"] *
lr_scale, lr_max)``. So warmup still protects the first steps and the schedule still anneals,
while the controller corrects the LR *level*: at the schedule's peak the LR it sets lies in
[lr_min, lr_max]. With ``optim.schedule=constant`` (warmup 0) the controller alone sets the LR.
The schedule's phase is not part of the controller's state, which makes the problem
non-stationary for it; this is a known limitation (see benchmarks/optimizers.py for its
measured value against AdamW and plain SGD).

Without ``observe()`` calls (or with ``controller=None``) EnhancedSGD is plain SGD with momentum
and decoupled weight decay.
"""
import bisect
import json
import logging
import math
from typing import Any, Iterable

import torch

from bytelm.optim.closure import call_closure
from bytelm.optim.feedback import FeedbackOptimizer

log = logging.getLogger(__name__)

LR_FACTORS = (0.5, 0.8, 1.0, 1.25, 2.0)
"""multiplicative LR actions."""
HORIZON_FACTORS = (0.5, 1.0, 2.0)
"""momentum actions: factors of the averaging horizon 1 / (1 - momentum)."""
TREND_EDGES = (-0.02, -0.002, 0.002, 0.02)
"""bins of (smoothed loss - previous window's) / |previous|: fast/slow improvement, flat, worse."""
GNORM_EDGES = (math.log(0.5), math.log(1.5), math.log(3.0))
"""bins of log(window median pre-clip grad norm / running median of earlier windows)."""
CV_EDGES = (0.1, 0.3, 1.0)
"""bins of the coefficient of variation (std / mean) of the grad norms within the window."""
N_LR_BINS = 4
"""equal bins of log(lr * lr_scale) between log(lr_min) and log(lr_max)."""
MOMENTUM_EDGES = (0.8, 0.9, 0.95)
"""bins of the current momentum."""
MOMENTUM_MAX = 0.999

_BINS = (len(TREND_EDGES) + 1, len(GNORM_EDGES) + 1, len(CV_EDGES) + 1, N_LR_BINS,
         len(MOMENTUM_EDGES) + 1)
STATE_FIELDS = ("trend", "gnorm", "cv", "lr", "momentum")
N_STATES = math.prod(_BINS)
_HISTORY = ("step", "state", "action", "reward", "lr", "momentum", "epsilon", "smoothed_loss",
            "explored")


def _median(xs: list[float]) -> float:
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])


def encode_state(bins: tuple[int, ...]) -> int:
    """Index into the Q-table of (trend, gnorm, cv, lr, momentum) bins."""
    s = 0
    for b, n in zip(bins, _BINS):
        s = s * n + b
    return s


def decode_state(s: int) -> dict[str, int]:
    """Inverse of ``encode_state``: {"trend", "gnorm", "cv", "lr", "momentum"} bins."""
    out = []
    for n in reversed(_BINS):
        out.append(s % n)
        s //= n
    return dict(zip(STATE_FIELDS, reversed(out)))


class QController:
    """Tabular Q-learning over (loss trend, grad-norm level, grad-norm CV, LR bin, momentum bin)
    states and (LR factor, momentum-horizon factor) actions; decides every ``every`` steps.

    Args:
        every: K, optimizer steps per decision window (>= 2).
        q_lr: Q-learning rate alpha in Q[s,a] += alpha (r + gamma max_a' Q[s',a'] - Q[s,a]).
        discount: gamma.
        epsilon, epsilon_decay, epsilon_min: exploration probability, its factor per decision,
            its floor.
        seed: seeds the controller's own torch.Generator (exploration draws).
        reward_scale: relative loss improvement per window that earns reward tanh(1) ~ 0.76.
        spike_factor: a step's grad norm above spike_factor x the running median is a spike.
        spike_penalty: reward lost when >= 10% of a window's steps spike (proportionally less).
        nonfinite_penalty: reward lost when a window holds a NaN/Inf loss or grad norm.
        median_windows: the running median covers this many earlier windows of grad norms.
        lr_factors, horizon_factors: the action sets (must contain 1.0).
    """

    def __init__(self, every: int = 50, q_lr: float = 0.1, discount: float = 0.9,
                 epsilon: float = 0.3, epsilon_decay: float = 0.97, epsilon_min: float = 0.02,
                 seed: int = 0, reward_scale: float = 0.01, spike_factor: float = 3.0,
                 spike_penalty: float = 0.5, nonfinite_penalty: float = 1.0,
                 median_windows: int = 4, lr_factors: Iterable[float] = LR_FACTORS,
                 horizon_factors: Iterable[float] = HORIZON_FACTORS):
        self.lr_factors = tuple(float(f) for f in lr_factors)
        self.horizon_factors = tuple(float(f) for f in horizon_factors)
        checks = [
            (every >= 2, f"every must be >= 2, got {every}"),
            (0 < q_lr <= 1, f"q_lr must be in (0, 1], got {q_lr}"),
            (0 <= discount < 1, f"discount must be in [0, 1), got {discount}"),
            (0 <= epsilon_min <= epsilon <= 1, "need 0 <= epsilon_min <= epsilon <= 1"),
            (0 < epsilon_decay <= 1, f"epsilon_decay must be in (0, 1], got {epsilon_decay}"),
            (reward_scale > 0, "reward_scale must be > 0"),
            (spike_factor > 1, "spike_factor must be > 1"),
            (spike_penalty >= 0 and nonfinite_penalty >= 0, "penalties must be >= 0"),
            (median_windows >= 1, "median_windows must be >= 1"),
            (1.0 in self.lr_factors and all(f > 0 for f in self.lr_factors),
             "lr_factors must be > 0 and contain 1.0"),
            (1.0 in self.horizon_factors and all(f > 0 for f in self.horizon_factors),
             "horizon_factors must be > 0 and contain 1.0"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ValueError(f"QController: {msg}")
        self.every, self.q_lr, self.discount = int(every), float(q_lr), float(discount)
        self.epsilon_decay, self.epsilon_min = float(epsilon_decay), float(epsilon_min)
        self.seed, self.reward_scale = int(seed), float(reward_scale)
        self.spike_factor, self.spike_penalty = float(spike_factor), float(spike_penalty)
        self.nonfinite_penalty, self.median_windows = float(nonfinite_penalty), int(median_windows)
        self.n_actions = len(self.lr_factors) * len(self.horizon_factors)
        self.keep_action = self.action_index(1.0, 1.0)
        # bound by EnhancedSGD.__init__ (bind)
        self.base_lr, self.lr_min, self.lr_max = 1.0, 1.0, 1.0
        self.generator = torch.Generator().manual_seed(self.seed)
        self.q = torch.zeros(N_STATES, self.n_actions, dtype=torch.float64)
        self.epsilon = float(epsilon)
        self.steps = 0
        self.lr_scale = 1.0
        self.momentum = 0.9
        self.ema = math.nan
        self.prev_smoothed = math.nan
        self.gnorm_hist: list[float] = []
        self.prev_state = -1
        self.prev_action = -1
        self.history: dict[str, list] = {k: [] for k in _HISTORY}
        # this window's observations: device tensors (never read before the window ends) and
        # host floats restored from a checkpoint taken mid-window
        self._dev_loss: list[torch.Tensor] = []
        self._dev_gnorm: list[torch.Tensor] = []
        self._host_loss: list[float] = []
        self._host_gnorm: list[float] = []
        self._drained = 0

    # --- actions and bounds -------------------------------------------------------------------
    def action_index(self, lr_factor: float, horizon_factor: float) -> int:
        return self.lr_factors.index(lr_factor) * len(self.horizon_factors) + \
            self.horizon_factors.index(horizon_factor)

    def action_factors(self, a: int) -> tuple[float, float]:
        """(LR factor, momentum-horizon factor) of action ``a``."""
        return (self.lr_factors[a // len(self.horizon_factors)],
                self.horizon_factors[a % len(self.horizon_factors)])

    def bind(self, base_lr: float, lr_min: float, lr_max: float, momentum: float) -> None:
        """Called by EnhancedSGD: the peak LR the scale multiplies, its bounds, the start momentum."""
        self.base_lr, self.lr_min, self.lr_max = float(base_lr), float(lr_min), float(lr_max)
        self.momentum = min(max(float(momentum), 0.0), MOMENTUM_MAX)
        self.lr_scale = 1.0

    @property
    def lr(self) -> float:
        """The controller's peak LR, lr * lr_scale, in [lr_min, lr_max]."""
        return self.base_lr * self.lr_scale

    def apply_action(self, a: int) -> None:
        """Compounds action ``a`` into lr_scale and momentum, clamped to their bounds."""
        f_lr, f_h = self.action_factors(a)
        lo, hi = self.lr_min / self.base_lr, self.lr_max / self.base_lr
        self.lr_scale = min(max(self.lr_scale * f_lr, lo), hi)
        # momentum acts through its horizon 1 / (1 - mu): mu' = 1 - (1 - mu) / f
        mu = 1.0 - (1.0 - self.momentum) / f_h
        self.momentum = min(max(mu, 0.0), MOMENTUM_MAX)

    # --- state and reward ---------------------------------------------------------------------
    def state_bins(self, trend: float, gnorm_level: float, cv: float) -> tuple[int, ...]:
        """Bins of the window statistics plus the current LR and momentum."""
        span = math.log(self.lr_max) - math.log(self.lr_min)
        pos = (math.log(self.lr) - math.log(self.lr_min)) / span if span > 0 else 0.0
        lr_bin = min(N_LR_BINS - 1, max(0, int(pos * N_LR_BINS)))
        return (bisect.bisect_right(TREND_EDGES, trend),
                bisect.bisect_right(GNORM_EDGES, gnorm_level),
                bisect.bisect_right(CV_EDGES, cv), lr_bin,
                bisect.bisect_right(MOMENTUM_EDGES, self.momentum))

    def window_stats(self, losses: list[float], gnorms: list[float]) -> dict[str, Any]:
        """Statistics of one window: smoothed loss (EMA, span K, carried across windows), trend
        vs the previous window, grad-norm level vs the running median of earlier windows, CV,
        spikes and non-finite count. Updates the EMA (not the running median)."""
        n = len(losses)
        bad = sum(1 for x in losses + gnorms if not math.isfinite(x))
        alpha = 2.0 / (self.every + 1)
        for x in losses:
            if math.isfinite(x):
                self.ema = x if math.isnan(self.ema) else self.ema + alpha * (x - self.ema)
        g = [x for x in gnorms if math.isfinite(x)]
        ref = _median(self.gnorm_hist) if self.gnorm_hist else (_median(g) if g else math.nan)
        level = cv = 0.0
        spikes = 0
        if g and ref > 0:
            med = _median(g)
            level = math.log(med / ref) if med > 0 else GNORM_EDGES[0] - 1.0
            spikes = sum(1 for x in g if x > self.spike_factor * ref)
        if len(g) >= 2:
            mean = sum(g) / len(g)
            if mean > 0:
                cv = math.sqrt(sum((x - mean) ** 2 for x in g) / len(g)) / mean
        if bad:
            # a window with NaN/Inf is as bad a trend as there is
            trend, improvement = math.inf, 0.0
        elif math.isnan(self.prev_smoothed) or math.isnan(self.ema) or self.prev_smoothed == 0:
            trend = improvement = 0.0
        else:
            trend = (self.ema - self.prev_smoothed) / abs(self.prev_smoothed)
            improvement = -trend
        return {"n": n, "bad": bad, "spikes": spikes, "trend": trend, "gnorm_level": level,
                "cv": cv, "improvement": improvement, "finite_gnorms": g}

    def reward(self, stats: dict[str, Any]) -> float:
        """tanh(improvement / reward_scale) - spike and non-finite penalties."""
        r = math.tanh(stats["improvement"] / self.reward_scale)
        r -= self.spike_penalty * min(1.0, stats["spikes"] / max(1.0, 0.1 * stats["n"]))
        if stats["bad"]:
            r -= self.nonfinite_penalty
        return r

    def q_update(self, s: int, a: int, r: float, s_next: int) -> None:
        """Q[s,a] += q_lr (r + discount max_a' Q[s_next,a'] - Q[s,a])."""
        target = r + self.discount * float(self.q[s_next].max())
        self.q[s, a] += self.q_lr * (target - float(self.q[s, a]))

    def greedy(self, s: int) -> int:
        """argmax_a Q[s,a]; ties go to the action closest to 'keep' (1.0, 1.0), then the lowest."""
        row = self.q[s].tolist()
        best = max(row)

        def dist(a: int) -> float:
            f_lr, f_h = self.action_factors(a)
            return abs(math.log(f_lr)) + abs(math.log(f_h))
        return min((a for a, v in enumerate(row) if v == best), key=lambda a: (dist(a), a))

    # --- observing ----------------------------------------------------------------------------
    def observe(self, loss, grad_norm) -> bool:
        """Queues one step's loss and pre-clip grad norm (device tensors or numbers); at the end of
        a window reads the queue (the only host sync) and decides. Returns whether it decided."""
        if not torch.is_tensor(loss):
            loss = torch.tensor(float(loss))
        if not torch.is_tensor(grad_norm):
            grad_norm = torch.tensor(float(grad_norm), device=loss.device)
        self._dev_loss.append(loss.detach().float().reshape(()))
        self._dev_gnorm.append(grad_norm.detach().float().reshape(()).to(loss.device))
        self.steps += 1
        if self.steps % self.every:
            return False
        losses, gnorms = self._pending_host()
        self._dev_loss, self._dev_gnorm, self._host_loss, self._host_gnorm = [], [], [], []
        self.decide(losses, gnorms)
        return True

    def _pending_host(self) -> tuple[list[float], list[float]]:
        """This window's values on the host: restored floats + the queued tensors (one sync)."""
        losses, gnorms = list(self._host_loss), list(self._host_gnorm)
        if self._dev_loss:
            vals = _to_host(torch.stack([torch.stack(self._dev_loss), torch.stack(self._dev_gnorm)]))
            losses += vals[0]
            gnorms += vals[1]
        return losses, gnorms

    def decide(self, losses: list[float], gnorms: list[float]) -> int:
        """Ends a window: reward and Q-update for the previous action, then an epsilon-greedy
        action for the new state, applied to lr_scale and momentum. Returns the action."""
        stats = self.window_stats(losses, gnorms)
        s = encode_state(self.state_bins(stats["trend"], stats["gnorm_level"], stats["cv"]))
        r = math.nan
        if self.prev_state >= 0:
            r = self.reward(stats)
            self.q_update(self.prev_state, self.prev_action, r, s)
        # both draws every time, so the generator advances the same way whatever is chosen
        u = float(torch.rand((), generator=self.generator, dtype=torch.float64))
        rand_a = int(torch.randint(self.n_actions, (), generator=self.generator))
        explored = u < self.epsilon
        a = rand_a if explored else self.greedy(s)
        self.apply_action(a)
        self.gnorm_hist = (self.gnorm_hist + stats["finite_gnorms"])[-self.median_windows * self.every:]
        if not math.isnan(self.ema):
            self.prev_smoothed = self.ema
        self.prev_state, self.prev_action = s, a
        rec = {"step": self.steps, "state": s, "action": a, "reward": r, "lr": self.lr,
               "momentum": self.momentum, "epsilon": self.epsilon, "smoothed_loss": self.ema,
               "explored": explored}
        for k in _HISTORY:
            self.history[k].append(rec[k])
        self.epsilon = max(self.epsilon_min, self.epsilon * self.epsilon_decay)
        log.debug("q-controller step %d: state %s action %s reward %.3f lr %.3g momentum %.4f",
                  self.steps, decode_state(s), self.action_factors(a), r, self.lr, self.momentum)
        return a

    def decisions(self, start: int = 0) -> list[dict[str, Any]]:
        """The decision history from index ``start``: step, state (+ its bins), action (+ its
        factors), reward (None for the first), lr (peak), momentum, epsilon, smoothed_loss
        (None before any finite loss). JSON-ready (no NaN)."""
        out = []
        for i in range(start, len(self.history["step"])):
            d = {k: self.history[k][i] for k in _HISTORY}
            for k in ("reward", "smoothed_loss"):
                if math.isnan(d[k]):
                    d[k] = None
            d["state_bins"] = decode_state(d["state"])
            d["lr_factor"], d["horizon_factor"] = self.action_factors(d["action"])
            out.append(d)
        return out

    def drain_decisions(self) -> list[dict[str, Any]]:
        """Decisions made since the last call (for a metrics log); restored checkpoints start
        after their history, whose decisions were logged by the run that made them."""
        out = self.decisions(self._drained)
        self._drained = len(self.history["step"])
        return out

    # --- checkpointing ------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly: tensors, numbers, strings, flat lists, dicts."""
        losses, gnorms = self._pending_host()
        return {
            "version": 1,
            "hparams": {"every": self.every, "q_lr": self.q_lr, "discount": self.discount,
                        "epsilon_decay": self.epsilon_decay, "epsilon_min": self.epsilon_min,
                        "seed": self.seed, "reward_scale": self.reward_scale,
                        "lr_factors": list(self.lr_factors),
                        "horizon_factors": list(self.horizon_factors)},
            "q": self.q.clone(),
            "epsilon": self.epsilon,
            "generator": self.generator.get_state(),
            "steps": self.steps,
            "lr_scale": self.lr_scale,
            "momentum": self.momentum,
            "ema": self.ema,
            "prev_smoothed": self.prev_smoothed,
            "gnorm_hist": list(self.gnorm_hist),
            "prev_state": self.prev_state,
            "prev_action": self.prev_action,
            "pending_loss": losses,
            "pending_gnorm": gnorms,
            "history": {k: list(v) for k, v in self.history.items()},
        }

    def load_state_dict(self, sd: dict[str, Any]) -> None:
        q = torch.as_tensor(sd["q"], dtype=torch.float64)
        if tuple(q.shape) != tuple(self.q.shape):
            raise ValueError(f"QController: saved Q-table {tuple(q.shape)} does not match this "
                             f"controller's {tuple(self.q.shape)} (different action sets?)")
        if sd["hparams"]["every"] != self.every:
            log.warning("QController: window %d in the checkpoint, %d now", sd["hparams"]["every"],
                        self.every)
        self.q = q.detach().to(torch.float64).cpu().clone()
        self.epsilon = float(sd["epsilon"])
        self.generator.set_state(torch.as_tensor(sd["generator"]).cpu().to(torch.uint8).clone())
        self.steps = int(sd["steps"])
        self.lr_scale = float(sd["lr_scale"])
        self.momentum = float(sd["momentum"])
        self.ema = float(sd["ema"])
        self.prev_smoothed = float(sd["prev_smoothed"])
        self.gnorm_hist = [float(x) for x in sd["gnorm_hist"]]
        self.prev_state, self.prev_action = int(sd["prev_state"]), int(sd["prev_action"])
        self._host_loss = [float(x) for x in sd["pending_loss"]]
        self._host_gnorm = [float(x) for x in sd["pending_gnorm"]]
        self._dev_loss, self._dev_gnorm = [], []
        self.history = {k: list(sd["history"].get(k, [])) for k in _HISTORY}
        self._drained = len(self.history["step"])


def _to_host(t: torch.Tensor) -> list:
    """The one device -> host read of a window (tests count its calls)."""
    return t.cpu().tolist()


class EnhancedSGD(torch.optim.Optimizer, FeedbackOptimizer):
    """SGD with heavy-ball momentum and decoupled weight decay, LR and momentum steered by an
    optional QController (see the module docstring for the design and the schedule contract).

    Update per parameter, with lr = min(group lr * lr_scale, lr_max) and mu the momentum:
        p <- p (1 - lr wd);  b <- mu b + g;  p <- p - lr b

    Args:
        params: parameters or param groups (a group's "weight_decay" overrides the default).
        lr: peak learning rate (the value the controller's scale multiplies).
        momentum: initial momentum in [0, 0.999].
        weight_decay: decoupled weight decay (as in AdamW: the decay is lr * wd * p).
        lr_min, lr_max: bounds of the controller's peak LR; default lr / 10 and lr * 10.
        controller: a QController, or None for plain SGD with momentum.
    """

    def __init__(self, params, lr: float, momentum: float = 0.9, weight_decay: float = 0.0,
                 lr_min: float | None = None, lr_max: float | None = None,
                 controller: QController | None = None):
        lr_min = lr / 10 if lr_min is None else lr_min
        lr_max = lr * 10 if lr_max is None else lr_max
        if not lr > 0:
            raise ValueError(f"EnhancedSGD: lr must be > 0, got {lr}")
        if not 0 < lr_min <= lr <= lr_max:
            raise ValueError("EnhancedSGD: need 0 < lr_min <= lr <= lr_max, got "
                             f"{lr_min}, {lr}, {lr_max}")
        if not 0 <= momentum <= MOMENTUM_MAX:
            raise ValueError(f"EnhancedSGD: momentum must be in [0, {MOMENTUM_MAX}], got {momentum}")
        if weight_decay < 0:
            raise ValueError(f"EnhancedSGD: weight_decay must be >= 0, got {weight_decay}")
        defaults = {"lr": lr, "momentum": momentum, "weight_decay": weight_decay,
                    "lr_min": lr_min, "lr_max": lr_max}
        super().__init__(params, defaults)
        self.controller = controller
        if controller is not None:
            controller.bind(lr, lr_min, lr_max, momentum)
        self.last_lr = lr

    def lr_and_momentum(self, group: dict) -> tuple[float, float]:
        """The LR and momentum a step uses for ``group``."""
        if self.controller is None:
            return min(group["lr"], group["lr_max"]), group["momentum"]
        return min(group["lr"] * self.controller.lr_scale, group["lr_max"]), self.controller.momentum

    @torch.no_grad()
    def step(self, closure=None):
        loss = call_closure(closure)
        for i, group in enumerate(self.param_groups):
            lr, mu = self.lr_and_momentum(group)
            if i == 0:
                self.last_lr = lr
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            grads = [p.grad for p in params]
            bufs = []
            for p in params:
                st = self.state[p]
                if "momentum_buffer" not in st:
                    st["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                bufs.append(st["momentum_buffer"])
            wd = group["weight_decay"]
            if wd and lr:
                torch._foreach_mul_(params, 1.0 - lr * wd)
            torch._foreach_mul_(bufs, mu)
            torch._foreach_add_(bufs, grads)
            torch._foreach_add_(params, bufs, alpha=-lr)
        return loss

    def observe(self, loss, grad_norm) -> bool:
        """Feeds the controller one step's loss and PRE-clip grad norm (device tensors; no host
        sync except once per window). Returns whether the controller decided this step."""
        if self.controller is None:
            return False
        return self.controller.observe(loss, grad_norm)

    def log_fields(self) -> dict[str, float]:
        """Host-side numbers for a metrics line (no device sync)."""
        out = {"lr_effective": self.last_lr}
        if self.controller is not None:
            out.update(lr_scale=self.controller.lr_scale, momentum=self.controller.momentum,
                       q_epsilon=self.controller.epsilon)
        return out

    def drain_decisions(self) -> list[dict[str, Any]]:
        """The controller's decisions since the last call (empty without a controller)."""
        return self.controller.drain_decisions() if self.controller is not None else []

    def state_dict(self) -> dict[str, Any]:
        # The controller rides in param group 0 as one JSON string. torch.distributed.checkpoint
        # (the trainer's save/load path) keeps only "state" and "param_groups", flattens nested
        # lists element by element (a saved history longer than the fresh one fails to load) and
        # requires every tensor of the optimizer on one device: a string leaf avoids all three.
        sd = super().state_dict()
        if self.controller is not None:
            ctrl = self.controller.state_dict()
            ctrl["q"], ctrl["generator"] = ctrl["q"].tolist(), ctrl["generator"].tolist()
            # json round-trips floats exactly (repr), NaN included
            sd["param_groups"][0]["controller"] = json.dumps(ctrl)
        return sd

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        sd = dict(state_dict)
        groups = [dict(g) for g in sd["param_groups"]]
        ctrl = groups[0].pop("controller", None) if groups else None
        if isinstance(ctrl, str):
            ctrl = json.loads(ctrl)
        sd["param_groups"] = groups
        super().load_state_dict(sd)
        if self.controller is None:
            return
        if ctrl is None:
            log.warning("EnhancedSGD: the checkpoint has no controller state; starting fresh")
        else:
            self.controller.load_state_dict(ctrl)
        # the bounds came back with the param groups
        g = self.param_groups[0]
        self.controller.lr_min, self.controller.lr_max = g["lr_min"], g["lr_max"]


def build_enhanced_sgd(params, cfg) -> EnhancedSGD:
    """EnhancedSGD from an OptimConfig-like object: reads lr, momentum, weight_decay and, when
    present, lr_min, lr_max (0: default), q_every (0: no controller), q_lr, q_discount,
    q_epsilon, q_epsilon_decay, q_epsilon_min, q_seed."""
    def get(name, default):
        return getattr(cfg, name, default)
    every = get("q_every", 50)
    ctrl = None
    if every:
        ctrl = QController(every=every, q_lr=get("q_lr", 0.1), discount=get("q_discount", 0.9),
                           epsilon=get("q_epsilon", 0.3), epsilon_decay=get("q_epsilon_decay", 0.97),
                           epsilon_min=get("q_epsilon_min", 0.02), seed=get("q_seed", 0))
    return EnhancedSGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
                       lr_min=get("lr_min", 0.0) or None, lr_max=get("lr_max", 0.0) or None,
                       controller=ctrl)
