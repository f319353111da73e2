"""Framing helpers shared by every prosody analysis: 10 ms hops, frame levels, runs of a boolean mask."""

from __future__ import annotations

import math

import numpy as np

from engine.audio import SAMPLE_RATE_HZ

#: Analysis hop for activity, F0, syllables and pauses: 10 ms.
HOP_S = 0.01
HOP_SAMPLES = round(HOP_S * SAMPLE_RATE_HZ)


def frames(audio: np.ndarray, length: int, hop: int = HOP_SAMPLES) -> np.ndarray:
    """(n_frames, length) views, one every ``hop`` samples, frame i starting at sample i·hop (zero padded)."""
    n = max(1, math.ceil(audio.shape[0] / hop))
    padded = np.zeros((n - 1) * hop + length, dtype=np.float32)
    padded[: audio.shape[0]] = audio[: padded.shape[0]]
    return np.lib.stride_tricks.sliding_window_view(padded, length)[::hop][:n]


def frame_levels_db(audio: np.ndarray) -> np.ndarray:
    """RMS level of each 10 ms hop, in dBFS."""
    power = np.mean(np.square(frames(audio, HOP_SAMPLES), dtype=np.float64), axis=1)
    return 10.0 * np.log10(power + 1e-12)


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) index pairs, end exclusive, of the True runs of ``mask``."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def drop_short_runs(mask: np.ndarray, min_len: int) -> np.ndarray:
    """``mask`` with its True runs shorter than ``min_len`` set to False."""
    out = mask.copy()
    for start, end in runs(mask):
        if end - start < min_len:
            out[start:end] = False
    return out


def moving_average(values: np.ndarray, width: int) -> np.ndarray:
    """Centred moving average with edge values repeated (no fall towards zero at the ends)."""
    if width <= 1:
        return values
    padded = np.concatenate([np.full(width // 2, values[0]), values, np.full(width - 1 - width // 2, values[-1])])
    return np.convolve(padded, np.ones(width) / width, mode="valid")
