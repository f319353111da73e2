"""How often a live session re-translates its open segment while it trails the speaker.

Why: every step re-encodes and re-decodes the segment so far, so a session that cannot keep up would queue more and
more steps (and ever staler captions). Instead it coarsens its own steps: with a stride of 2 it acts on every 2nd
step's worth of audio, halving its model work, and it goes back to its preset's pace once it has caught up. The
lag comes from whoever knows the speaker's clock (the front end's backlog of audio not yet read); the policy is
plain arithmetic, tested apart from any model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: Coarsest pace: one step per this many of the preset's steps (e.g. 2 s for the 0.5 s ``low`` preset).
MAX_STEP_STRIDE = 4
#: Go one stride finer when the lag is below this fraction of the finer pace's step.
CATCH_UP_FRACTION = 0.5


@dataclass
class StepPacer:
    """Maps the lag behind the speaker to a step stride, with hysteresis (one per session)."""

    step_s: float  # the preset's step
    max_stride: int = MAX_STEP_STRIDE
    stride: int = 1

    def __post_init__(self) -> None:
        if self.step_s <= 0 or self.max_stride < 1:
            raise ValueError("step_s must be positive and max_stride at least 1")

    def update(self, lag_s: float) -> bool:
        """Take the latest lag (seconds of speech waiting to be read); True when the stride changed. Coarser as soon
        as the lag exceeds one step at the current pace; finer one stride at a time once the lag is well within
        the finer pace's step."""
        before = self.stride
        if lag_s > self.stride * self.step_s:
            self.stride = min(self.max_stride, max(self.stride + 1, math.ceil(lag_s / self.step_s)))
        elif self.stride > 1 and lag_s < CATCH_UP_FRACTION * (self.stride - 1) * self.step_s:
            self.stride -= 1
        return self.stride != before

    @property
    def paced_step_s(self) -> float:
        return self.stride * self.step_s
