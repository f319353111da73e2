"""F0 tracking and pitch profiles."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from engine.audio import SAMPLE_RATE_HZ
from engine.prosody.analysis.activity import activity
from engine.prosody.analysis.frames import drop_short_runs, frames

#: YIN: integration window, F0 search range and the aperiodicity threshold under which a frame is voiced.
YIN_WINDOW_S = 0.025
F0_MIN_HZ = 60.0
F0_MAX_HZ = 450.0
YIN_THRESHOLD = 0.3
#: Voiced runs shorter than this many hops are usually octave slips or noise.
MIN_VOICED_HOPS = 3


def track_f0(audio: np.ndarray, sample_rate_hz: int = SAMPLE_RATE_HZ) -> np.ndarray:
    """F0 in Hz per 10 ms hop (hop i analyses the window starting at sample i·hop), NaN where unvoiced or silent.

    YIN (de Cheveigné & Kawahara 2002): cumulative-mean-normalised difference function, absolute threshold, the
    local minimum after the first dip below it, parabolic interpolation. Silent hops are never voiced.
    """
    window = round(YIN_WINDOW_S * sample_rate_hz)
    min_lag, max_lag = int(sample_rate_hz / F0_MAX_HZ), math.ceil(sample_rate_hz / F0_MIN_HZ)
    framed = frames(audio, window + max_lag).astype(np.float64)
    n_fft = 1 << math.ceil(math.log2(window + max_lag + 1))
    spectrum = np.fft.rfft(framed, n_fft, axis=1)
    head = np.fft.rfft(framed[:, :window], n_fft, axis=1)
    correlation = np.fft.irfft(np.conj(head) * spectrum, n_fft, axis=1)[:, : max_lag + 1]
    energy = np.concatenate([np.zeros((framed.shape[0], 1)), np.cumsum(np.square(framed), axis=1)], axis=1)
    lags = np.arange(max_lag + 1)
    lagged_energy = energy[:, lags + window] - energy[:, lags]
    difference = np.maximum(energy[:, [window]] + lagged_energy - 2.0 * correlation, 0.0)
    cumulative = np.cumsum(difference[:, 1:], axis=1)
    cmnd = np.ones_like(difference)
    cmnd[:, 1:] = difference[:, 1:] * lags[1:] / np.maximum(cumulative, 1e-12)

    f0 = np.full(framed.shape[0], np.nan)
    active = activity(audio)
    for i in np.flatnonzero(active[: framed.shape[0]]):
        row = cmnd[i]
        below = np.flatnonzero(row[min_lag:max_lag] < YIN_THRESHOLD)
        if below.size == 0:
            continue
        lag = min_lag + int(below[0])
        while lag + 1 < max_lag and row[lag + 1] < row[lag]:
            lag += 1
        a, b, c = row[lag - 1], row[lag], row[lag + 1]
        curvature = a - 2 * b + c
        offset = 0.5 * (a - c) / curvature if curvature > 0 else 0.0
        f0[i] = sample_rate_hz / (lag + float(np.clip(offset, -0.5, 0.5)))
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
