"""Resynchronising the built-in detector after playback-speed, tempo and pitch changes.

A speed change (resampling) scales time and frequency alike; a tempo change (WSOLA, Rubber Band) scales time only;
a pitch shift that keeps the tempo scales frequency only. Each is undone for one hypothesis (a, g): the audio is
read at a times its own rate (linear interpolation, y[n] = x[a n]), which restores time and scales frequencies
by a, and each tile's power is read at g times its frequency (:meth:`TileAnalyzer.band_power`). Speed s is
(s, 1), tempo t is (t, t), pitch p is (1, p). The search is coarse-to-fine, as audiowmark's speed search is
(coarse grid of speeds, then refinement): every hypothesis of the coarse grid is scored by its best pilot
placement on a middle excerpt, the best few are refined on a 3 x 3 grid on the whole recording, and the best
refinement is decoded. Hypotheses of one time scale share their STFTs (a frequency scale only reads the bins
differently), and the search stops at the first coarse hypothesis whose own time scale reads the payload. Every
hypothesis that can be tried counts in the p-value (Bonferroni), so the wider search cannot make unmarked audio
look marked more often than the p-value says.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING

import numpy as np

from engine.audio import SAMPLE_RATE_HZ
from safety.watermark.interface import WatermarkResult
from safety.watermark.spread.options import WatermarkOptions

if TYPE_CHECKING:
    from safety.watermark.spread.detect import Detector


def stretch(audio: np.ndarray, time_scale: float, start: int = 0, length: int | None = None) -> np.ndarray:
    """``audio`` read at ``time_scale`` times its rate, y[n] = x[time_scale * n] (linear interpolation), from
    output sample ``start`` for ``length`` samples (to the end when None)."""
    end = math.floor((audio.size - 1) / time_scale) + 1
    stop = end if length is None else min(end, start + length)
    if time_scale == 1.0:
        return audio[start:stop]
    positions = np.arange(start, stop) * time_scale
    return np.interp(positions, np.arange(audio.size), audio).astype(np.float32)


def _geometric(low: float, high: float, step: float) -> np.ndarray:
    """Factors from ``low`` to ``high`` spaced by ``step`` (relative), one of them exactly 1."""
    below = np.exp(-np.arange(1, math.floor(-math.log(low) / math.log1p(step)) + 1) * math.log1p(step))
    above = np.exp(np.arange(1, math.floor(math.log(high) / math.log1p(step)) + 1) * math.log1p(step))
    return np.concatenate([below[::-1], [1.0], above])


class ResyncSearch:
    """The coarse-to-fine search over (time scale, frequency scale) hypotheses of one detector."""

    def __init__(self, detector: Detector, options: WatermarkOptions) -> None:
        self._detector = detector
        self._options = options
        times = _geometric(options.time_scale_min, options.time_scale_max, options.coarse_time_step)
        pitches = _geometric(1 - options.pitch_scale_max, 1 + options.pitch_scale_max, options.coarse_pitch_step)
        changed = times[times != 1.0]
        # Tempo t within ± pitch_scale_max needs time scales 1 / (1 ± pitch_scale_max), one coarse step wider.
        reach = -math.log(1 - options.pitch_scale_max) + math.log1p(options.coarse_time_step)
        tempos = changed[np.abs(np.log(changed)) <= reach]
        #: Coarse hypotheses (time scale, frequency scale): speed, tempo (its frequency scale within the pitch
        #: range), pitch; the unchanged audio is not repeated (the detector tries it first).
        self.coarse = [(a, 1.0) for a in changed] + [(a, a) for a in tempos] + [(1.0, g) for g in pitches if g != 1]
        #: Every hypothesis the detector can try: the audio as it is, the coarse grid, the refinements.
        self.hypotheses = 1 if not self.coarse else 1 + len(self.coarse) + 9 * options.fine_candidates

    def search(self, audio: np.ndarray) -> WatermarkResult:
        """The best hypothesis's decode, with times mapped back to the recording's own."""
        options, detector = self._options, self._detector
        excerpt = round(options.coarse_excerpt_s * SAMPLE_RATE_HZ)
        by_time: dict[float, list[float]] = {}
        for a, g in self.coarse:
            by_time.setdefault(a, []).append(g)
        scored = []
        for a, scales in by_time.items():
            middle = max(0, (round(audio.size / a) - excerpt) // 2)
            placed = detector.placements_by_scale(stretch(audio, a, middle, excerpt), scales, options.hop_samples)
            for g, found in zip(scales, placed, strict=True):
                scored.append((max((item.best_score for item in found), default=-math.inf), a, g))
        scored.sort(reverse=True)
        # The pilots' chance is counted over every hypothesis of this search, and the result's over all.
        stage = len(self.coarse) + 9 * options.fine_candidates
        best: tuple[float, float, list] = (-math.inf, 1.0, [])
        decoded: list | None = None
        for _, a, g in scored[: options.fine_candidates]:
            for index, (restored_a, scales) in enumerate(self._refinements(a, g)):
                restored = stretch(audio, restored_a)
                for found in detector.placements_by_scale(restored, scales):
                    score = max((item.best_score for item in found), default=-math.inf)
                    if score > best[0]:
                        best = (score, restored_a, found)
                if index == 0 and best[2] and best[2] is not decoded:
                    decoded = best[2]
                    # Early exit: the coarse hypothesis's time scale often reads the payload, and the six
                    # refinements around it then cost far more than decoding it. Decoding here adds no hypothesis:
                    # every one of the search is already counted in the p-value (a placement decoded again at the
                    # end gives the same answer, so it is no second chance).
                    early = detector.decide(best[2], min(1.0, stage * detector.pilot_p(best[2])), self.hypotheses)
                    if early.payload is not None:
                        return _in_recording_time(early, best[1])
        _, a, found = best
        if not found:
            return WatermarkResult(detected=False, payload=None, score=0.0, p_value=1.0)
        result = detector.decide(found, min(1.0, stage * detector.pilot_p(found)), self.hypotheses)
        return _in_recording_time(result, a)

    def _refinements(self, a: float, g: float) -> list[tuple[float, list[float]]]:
        """The 3 x 3 refinement grid around coarse hypothesis (a, g) as (time scale, its three frequency scales),
        the hypothesis's own time scale first."""
        options = self._options
        scales = [g * (1 + options.fine_pitch_step) ** dg for dg in (0, -1, 1)]
        return [(a * (1 + options.fine_time_step) ** da, scales) for da in (0, -1, 1)]


def _in_recording_time(result: WatermarkResult, time_scale: float) -> WatermarkResult:
    """Times found on audio read at ``time_scale`` times its rate, in the recording's own seconds."""
    windows = [
        dataclasses.replace(w, start_s=w.start_s * time_scale, end_s=w.end_s * time_scale) for w in result.windows
    ]
    marked_s = [(start * time_scale, end * time_scale) for start, end in result.marked_s]
    return dataclasses.replace(result, windows=windows, marked_s=marked_s)
