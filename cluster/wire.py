"""What travels between a front end and a replica: plain, picklable values (numpy, not torch).

Why an encoder state travels back to the front end at all: a replica keeps the states it computed in a small cache
(``ref`` → tensor), so a step's later calls name the state instead of carrying it. Any call may reach another
replica (Serve routes each call on its own, and a replica may die); that replica answers :class:`Missing`, and the
front end sends the call again with the state itself. The state is smaller than the audio it came from (the
encoder subsamples 16 kHz audio to a few frames a second), so audio still travels once per step, never per token.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class WireState:
    """An encoder output as the session holds it: ``hidden`` is (batch, frames, hidden) float32 (batch 1 for a live
    step), ``mask`` (batch, frames) or None; the replica turns them back into the model's dtype."""

    ref: str  # cache key on the replica that computed it (a fresh random hex per encode)
    hidden: np.ndarray
    mask: np.ndarray | None
    seconds: float  # encoder time, for the translator's timings

    def item(self, index: int) -> WireState:
        """One row without its padding (as :meth:`engine.translator.Encoded.item`); no replica holds it yet, so
        the first call that names it carries it."""
        frames = self.hidden.shape[1] if self.mask is None else int(self.mask[index].sum())
        mask = None if self.mask is None else self.mask[index : index + 1, :frames]
        return WireState(f"{self.ref}:{index}", self.hidden[index : index + 1, :frames], mask, self.seconds)


@dataclass(frozen=True)
class Stamp:
    """Who answered a call and how busy it was: the front end's per-replica table and the status panel read it."""

    replica: str  # Serve's replica id
    pid: int  # the replica's process (the tests kill it)
    ongoing_calls: int  # calls waiting or running on that replica when this one finished
    queue_wait_s: float  # this call's wait in the replica's scheduler queue (0 for calls that bypass it)
    run_s: float  # seconds the replica spent on this call
    batch_rows: int  # rows in the model pass this call shared (1 outside the scheduler)


@dataclass(frozen=True)
class Reply:
    value: object
    stamp: Stamp


@dataclass(frozen=True)
class Missing:
    """The replica does not hold the named encoder state: send the call again with the state attached."""

    stamp: Stamp
