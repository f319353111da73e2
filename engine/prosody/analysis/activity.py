"""Where the sound is: per-hop activity and the pause layout of a segment (speech span, pauses inside it)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from engine.prosody.analysis.frames import HOP_S, drop_short_runs, frame_levels_db, runs

#: Frames quieter than this (dBFS, RMS over one hop) are silence whatever the rest of the segment does.
SILENCE_FLOOR_DB = -55.0
#: Frames this far below the segment's loud frames (95th percentile) are pauses.
PAUSE_DEPTH_DB = 30.0
#: Speech bursts shorter than this inside a pause (clicks, breaths) do not end the pause.
MIN_BURST_S = 0.03


def activity(audio: np.ndarray) -> np.ndarray:
    """Per 10 ms hop: True where there is sound (speech or noise), False in silences and pauses."""
    levels = frame_levels_db(audio)
    active = levels > max(SILENCE_FLOOR_DB, float(np.percentile(levels, 95)) - PAUSE_DEPTH_DB)
    return drop_short_runs(active, round(MIN_BURST_S / HOP_S))


@dataclass(frozen=True)
class PauseLayout:
    """Where the sound is: ``speech`` spans from the first to the last active hop; ``pauses`` are the silences of at
    least ``min_pause_s`` inside it. All in 10 ms hops, ends exclusive."""

    hops: int  # length of the analysed audio, in hops
    speech: tuple[int, int] | None  # first and last-plus-one active hop; None when nothing is active
    pauses: tuple[tuple[int, int], ...]  # (start, end) hops of each pause inside the speech

    @property
    def speech_hops(self) -> int:
        """Hops of speech, pauses excluded."""
        if self.speech is None:
            return 0
        return self.speech[1] - self.speech[0] - sum(end - start for start, end in self.pauses)

    def relative_positions(self) -> list[float]:
        """Each pause's position as a fraction of the speech (pauses excluded) that precedes it: 0 = start, 1 = end."""
        if self.speech is None or not self.speech_hops:
            return []
        positions, removed = [], 0
        for start, end in self.pauses:
            positions.append((start - self.speech[0] - removed) / self.speech_hops)
            removed += end - start
        return positions

    def hop_positions(self) -> np.ndarray:
        """Per hop: its position in the speech with pauses left out, 0 at the first active hop and 1 at the last;
        NaN outside the speech and in pauses (so the positions that are set rise strictly)."""
        position = np.full(self.hops, np.nan)
        if self.speech is None or self.speech_hops == 0:
            return position
        inside = np.zeros(self.hops, bool)
        inside[self.speech[0] : self.speech[1]] = True
        for start, end in self.pauses:
            inside[start:end] = False
        counted = np.cumsum(inside) - 1
        position[inside] = counted[inside] / max(1, self.speech_hops - 1)
        return position


def pause_layout(audio: np.ndarray, min_pause_s: float) -> PauseLayout:
    """The speech span and the pauses of at least ``min_pause_s`` in ``audio`` (16 kHz mono)."""
    active = activity(audio)
    spans = runs(active)
    if not spans:
        return PauseLayout(active.shape[0], None, ())
    speech = (spans[0][0], spans[-1][1])
    min_hops = round(min_pause_s / HOP_S)
    gaps = [(a_end, b_start) for (_, a_end), (b_start, _) in itertools.pairwise(spans)]
    return PauseLayout(active.shape[0], speech, tuple(g for g in gaps if g[1] - g[0] >= min_hops))
