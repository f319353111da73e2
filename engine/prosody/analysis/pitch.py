"""F0 tracking and pitch profiles."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from engine.audio import SAMPLE_RATE_HZ
from engine.prosody.analysis.activity import activity
from engine.prosody.analysis.frames import HOP_S, HOP_SAMPLES, drop_short_runs

#: F0 search range, in Hz (Praat's autocorrelation method; its floor sets the window: three periods, 50 ms).
F0_MIN_HZ = 60.0
F0_MAX_HZ = 450.0
#: Voiced runs shorter than this many hops are usually octave slips or noise.
MIN_VOICED_HOPS = 3


def track_f0(audio: np.ndarray) -> np.ndarray:
    """F0 in Hz per 10 ms hop (hop i centred on i · 10 ms), NaN where unvoiced or silent.

    Praat's autocorrelation pitch tracker (Boersma 1993) through parselmouth, with its Viterbi path over candidates.
    It replaced a hand-written YIN (de Cheveigné & Kawahara 2002): on speech re-synthesised with a known F0 contour
    (``bench/expressive.py --libraries``) it decides voicing far better (VDE 0.17 against 0.26 clean, 0.24 against
    0.46 with white noise at 10 dB SNR) with as few gross errors and in half the time. Silent hops are never voiced.
    """
    import parselmouth  # imported on first use: start-up of the engine does not need it

    samples = np.asarray(audio, dtype=np.float64)
    hops = max(1, math.ceil(samples.shape[0] / HOP_SAMPLES))
    f0 = np.full(hops, np.nan)
    if samples.shape[0] / SAMPLE_RATE_HZ >= 3.0 / F0_MIN_HZ:  # Praat needs three periods of the lowest F0
        pitch = parselmouth.Sound(samples, SAMPLE_RATE_HZ).to_pitch_ac(
            time_step=HOP_S, pitch_floor=F0_MIN_HZ, pitch_ceiling=F0_MAX_HZ
        )
        # Praat's frames are 10 ms apart but offset from ours (by up to half a hop): take the nearest one.
        times, values = pitch.xs(), pitch.selected_array["frequency"]
        grid_s = np.arange(hops) * HOP_S
        nearest = np.clip(np.round((grid_s - times[0]) / HOP_S).astype(int), 0, times.size - 1)
        inside = np.abs(times[nearest] - grid_s) < HOP_S
        f0[inside] = np.where(values[nearest[inside]] > 0, values[nearest[inside]], np.nan)
    f0[~activity(audio)[:hops]] = np.nan
    return _drop_short_voicing(f0)


def _drop_short_voicing(f0: np.ndarray) -> np.ndarray:
    """Voiced runs shorter than ``MIN_VOICED_HOPS`` count as unvoiced."""
    voiced = np.isfinite(f0)
    out = f0.copy()
    out[voiced & ~drop_short_runs(voiced, MIN_VOICED_HOPS)] = np.nan
    return out


@dataclass(frozen=True)
class PitchProfile:
    """A voice's pitch: median F0 in Hz and the 10th–90th percentile span in semitones; None when nothing is voiced."""

    median_hz: float | None  # median F0 of the voiced hops
    range_st: float | None  # 10th–90th percentile span of F0, in semitones

    @classmethod
    def of(cls, f0_hz: np.ndarray) -> PitchProfile:
        voiced = f0_hz[np.isfinite(f0_hz)]
        if voiced.size < 5:
            return cls(None, None)
        st = 12.0 * np.log2(voiced)
        return cls(float(np.median(voiced)), float(np.percentile(st, 90) - np.percentile(st, 10)))
