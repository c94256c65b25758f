"""A wall-clock cap on a training run (``--train.time_budget_min``).

Checked after every optimizer step: the run's length is re-planned from the time of the most
recent steps, so the end of the learning-rate schedule moves with the machine's speed (a machine
that gets busier mid-run shortens the schedule instead of overrunning it), and the run is
stopped outright once the time left would not cover its final validation and checkpoint.
"""
import math
import time
from collections import deque


class WallClockBudget:
    """Plans ``total_steps`` to fit ``budget_s`` seconds of wall time and says when to stop.

    Args:
        budget_s: the cap, seconds of wall time for the whole run (earlier invocations included).
        used_s: seconds already spent by earlier invocations of a resumed run.
        window: steps whose mean duration predicts the next ones (recent, so a slowdown shows
            within ``window`` steps).
        skip: first steps of an invocation left out of the timing (compilation, warm caches).
        clock: seconds as a float; ``time.perf_counter`` unless a test fakes it.
    """

    def __init__(self, budget_s: float, used_s: float = 0.0, window: int = 20, skip: int = 3,
                 clock=time.perf_counter):
        self.budget_s = budget_s
        self.clock = clock
        self.t0 = clock() - used_s
        self.skip = skip
        self.marks: deque[tuple[int, float]] = deque(maxlen=window + 1)
        self.seen = 0
        # seconds the last validation + checkpoint took (None: none yet; then estimated)
        self.finish_s: float | None = None

    def elapsed(self) -> float:
        """Seconds of the budget used so far."""
        return self.clock() - self.t0

    def left(self) -> float:
        return self.budget_s - self.elapsed()

    def mark_step(self, step: int) -> None:
        """Records that optimizer step ``step`` (1-based count) just finished."""
        self.seen += 1
        if self.seen > self.skip:
            self.marks.append((step, self.clock()))

    def paused(self, seconds: float) -> None:
        """A validation + checkpoint of ``seconds`` ran between steps: it is not a step's time,
        and it is what the final one will cost."""
        self.finish_s = seconds
        self.marks.clear()

    def step_s(self) -> float | None:
        """Mean wall time of the recent steps; None until two of them are timed."""
        if len(self.marks) < 2:
            return None
        (s0, t0), (s1, t1) = self.marks[0], self.marks[-1]
        return (t1 - t0) / (s1 - s0)

    def reserve_s(self, eval_steps_equiv: float) -> float:
        """Time to keep for the final validation + checkpoint: the last one measured, else
        ``eval_steps_equiv`` training steps' worth (a forward over eval_bytes costs about a third
        of a training step over as many bytes)."""
        if self.finish_s is not None:
            return self.finish_s
        per = self.step_s()
        return eval_steps_equiv * per if per is not None else 0.0

    def plan(self, step: int, max_steps: int, eval_steps_equiv: float) -> int | None:
        """Total steps that fit the budget (between step and max_steps); None: not timed yet.

        ``step`` itself means: stop now (the time left only covers the final validation).
        """
        per = self.step_s()
        if per is None:
            return step if self.left() <= 0 else None
        room = self.left() - self.reserve_s(eval_steps_equiv)
        return max(step, min(max_steps, step + math.floor(room / per)))
