"""Intonation transfer: the pitch change, per 10 ms hop of the translation, that gives it the speaker's intonation.

Each log-F0 contour (semitones about its median, interpolated over unvoiced hops) is split, as in Fujisaki's model
(Fujisaki & Hirose 1984), into a slow **phrase** component (declination, the final rise of a question, the lift of an
emphasised stretch: a moving average over ``PHRASE_SMOOTH_S``) and a fast **accent** component (the rest: word stress,
and the lexical tones of tonal languages). The translation keeps its own accents — they carry its words — scaled to
the speaker's F0 range, and takes the speaker's phrase component, mapped over relative position in the speech
(pauses left out, 0 = first word, 1 = last) since the two sentences have different syllables. The median moves to the
speaker's. Unvoiced stretches longer than a stop closure are left alone, so fricatives and noise are not shifted.
"""

from __future__ import annotations

import math

import numpy as np

from engine.prosody.analysis import HOP_S, PauseLayout, PitchProfile
from engine.prosody.analysis.frames import drop_short_runs, moving_average
from engine.prosody.options import ExpressiveOptions

#: Phrase component: moving average of the log-F0 contour over this span; the rest is the accent component.
PHRASE_SMOOTH_S = 0.3
#: Voiced stretches are joined across unvoiced gaps shorter than BRIDGE_S; the contour is smoothed over
#: CONTOUR_SMOOTH_S (a change that follows every voicing flicker frequency-modulates the voice), the change is ramped
#: over RAMP_S where it falls to 0 in longer unvoiced stretches.
BRIDGE_S = 0.15
CONTOUR_SMOOTH_S = 0.1
RAMP_S = 0.08
#: Fixed-point passes that move the planned median F0 of the shifted contour onto the speaker's.
MEDIAN_CORRECTIONS = 3
#: The translation's F0 range counts as at least this (semitones) when the range ratio is formed.
MIN_RANGE_ST = 0.5


def log_contour(f0_hz: np.ndarray, median_hz: float) -> np.ndarray:
    """Semitones about ``median_hz`` per hop, interpolated over unvoiced hops and smoothed over CONTOUR_SMOOTH_S."""
    voiced = np.isfinite(f0_hz)
    hops = np.arange(f0_hz.shape[0])
    contour = np.interp(hops, hops[voiced], 12.0 * np.log2(f0_hz[voiced] / median_hz))
    return moving_average(contour, round(CONTOUR_SMOOTH_S / HOP_S))


def phrase_component(contour_st: np.ndarray) -> np.ndarray:
    return moving_average(contour_st, round(PHRASE_SMOOTH_S / HOP_S))


def pitch_shift_st(
    f0_hz: np.ndarray, speaker_f0_hz: np.ndarray, speaker_layout: PauseLayout, options: ExpressiveOptions
) -> np.ndarray:
    """Pitch change in semitones per hop of the translation (F0 ``f0_hz``, one hop per 10 ms of its speech) that
    carries the speaker's median, range and phrase contour onto it (as far as ``options.pitch_follow`` and
    ``contour_follow`` say, within ``max_range_ratio`` and ``max_shift_st``); zeros when either side is unvoiced."""
    mine, theirs = PitchProfile.of(f0_hz), PitchProfile.of(speaker_f0_hz)
    if mine.median_hz is None or theirs.median_hz is None:
        return np.zeros(f0_hz.shape[0])
    gap = 12.0 * math.log2(theirs.median_hz / mine.median_hz) * options.pitch_follow
    ratio = float(np.clip(theirs.range_st / max(mine.range_st, MIN_RANGE_ST), 1 / options.max_range_ratio,
                          options.max_range_ratio))  # fmt: skip
    ratio = 1.0 + (ratio - 1.0) * options.pitch_follow
    own = log_contour(f0_hz, mine.median_hz)
    own_phrase = phrase_component(own)
    speaker_phrase = phrase_component(log_contour(speaker_f0_hz, theirs.median_hz))
    positions = speaker_layout.hop_positions()
    inside = np.isfinite(positions)
    mapped = np.interp(np.linspace(0.0, 1.0, f0_hz.shape[0]), positions[inside], speaker_phrase[inside])
    # Target contour: the speaker's phrase (weighted), the translation's accents scaled by the range ratio.
    wanted = options.contour_follow * mapped + (1.0 - options.contour_follow) * own_phrase * ratio
    wanted = wanted + (own - own_phrase) * ratio
    voiced = np.isfinite(f0_hz)
    shift = _bounded(wanted - own + gap, voiced, options.max_shift_st)
    # Smoothing, ramps and the bound move the planned median off the speaker's (by up to ~0.25 st); a few fixed-point
    # corrections of the offset bring it as close as the per-hop bound allows.
    for _ in range(MEDIAN_CORRECTIONS):
        planned = float(np.median(12.0 * np.log2(f0_hz[voiced] / mine.median_hz) + shift[voiced]))
        gap += 12.0 * math.log2(theirs.median_hz / mine.median_hz) * options.pitch_follow - planned
        shift = _bounded(wanted - own + gap, voiced, options.max_shift_st)
    return shift


def _bounded(shift_st: np.ndarray, voiced: np.ndarray, limit_st: float) -> np.ndarray:
    """``shift_st`` clipped to ±``limit_st`` inside voiced regions (voiced stretches joined across gaps shorter than
    BRIDGE_S), 0 outside, with RAMP_S ramps between."""
    region = ~drop_short_runs(~voiced, round(BRIDGE_S / HOP_S))
    region[: np.argmax(voiced)] = False
    region[len(voiced) - np.argmax(voiced[::-1]) :] = False
    shift = np.where(region, np.clip(shift_st, -limit_st, limit_st), 0.0)
    return moving_average(shift, round(RAMP_S / HOP_S))
