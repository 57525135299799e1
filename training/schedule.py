"""The learning-rate schedule: a plan over a run's epochs, and the rate at each step.

    constant  -l throughout, as the original tool
    poly      a linear warm-up over the first WARMUP_SHARE of the plan, then
              -l x (1 - t)^POLY_EXPONENT, as nnU-Net
    cosine    the same warm-up, then -l x (1 + cos(pi t)) / 2

t runs from 0 to 1 over the plan's steps after the warm-up. The rate is a pure function
of the plan and the position (epoch, step), so a resumed run repeats it exactly. The plan
is kept in every checkpoint: a resume that ends where the plan ends continues it; one
with another end, schedule or -l starts a new plan from the checkpoint's epoch (with a
new warm-up), since `-e` on resume means "this many epochs more".
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from runtime.distributed import say

SCHEDULES = ("constant", "poly", "cosine")
WARMUP_SHARE = 0.05  # a few steps at the start of a plan: Adam's moments are still empty
POLY_EXPONENT = 0.9  # nnU-Net's


@dataclass(frozen=True)
class LrPlan:
    """A schedule from `first_epoch` (completed when it began) to `last_epoch`."""

    schedule: str
    peak_lr: float
    first_epoch: int
    last_epoch: int

    def lr(self, epoch: int, step: int, steps: int) -> float:
        """The rate for step `step` (1-based) of the `steps` in epoch `epoch` (1-based)."""
        if self.schedule == "constant":
            return self.peak_lr
        epochs = self.last_epoch - self.first_epoch
        # The share of the plan done once this step is taken, in (0, 1].
        done = (epoch - 1 - self.first_epoch + step / steps) / epochs
        warmup = min(1.0, done / WARMUP_SHARE)
        # The decay position at the start of this step, so that no step has rate 0.
        t = max(0.0, (done - 1 / (epochs * steps) - WARMUP_SHARE) / (1 - WARMUP_SHARE))
        if self.schedule == "poly":
            decay = (1 - t) ** POLY_EXPONENT
        else:
            decay = (1 + math.cos(math.pi * t)) / 2
        return self.peak_lr * warmup * decay

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def plan_schedule(
    schedule: str, peak_lr: float, epochs_done: int, epochs: int, stored: dict | None
) -> LrPlan:
    """The plan for a run of `epochs` more epochs: the checkpoint's `stored` plan where it
    ends there with the same schedule and -l, else a new one (which is said)."""
    planned = LrPlan(schedule, peak_lr, epochs_done, epochs_done + epochs)
    if stored is None:
        return planned
    try:
        previous = LrPlan(**stored)
    except TypeError:
        previous = None
    if previous is not None and dataclasses.replace(previous, first_epoch=epochs_done) == planned:
        return previous
    say(
        f"A new {schedule} learning-rate schedule over epochs {epochs_done + 1}-"
        f"{planned.last_epoch}, as -e, -l or --lr-schedule differ from the checkpoint's."
    )
    return planned
