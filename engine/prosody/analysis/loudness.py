"""Integrated loudness, ITU-R BS.1770-4 (K-weighted, gated), mono."""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from scipy.signal import lfilter

from engine.audio import SAMPLE_RATE_HZ
from engine.prosody.analysis.activity import NOISE_RUN_S
from engine.prosody.analysis.frames import HOP_S, HOP_SAMPLES, drop_short_runs, frames

#: BS.1770: 400 ms blocks with 75 % overlap, absolute gate −70 LUFS, relative gate −10 LU.
LOUDNESS_BLOCK_S = 0.4
ABSOLUTE_GATE_LUFS = -70.0
RELATIVE_GATE_LU = -10.0


@lru_cache(maxsize=4)
def _k_weighting(sample_rate_hz: int) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """The two K-weighting biquads (high shelf +4 dB above ~1.7 kHz, then a ~38 Hz high-pass), designed for any
    rate with the bilinear transform from the analog parameters that reproduce BS.1770's 48 kHz coefficients."""
    shelf_hz, shelf_q, shelf_gain_db = 1681.974450955533, 0.7071752369554196, 3.999843853973347
    highpass_hz, highpass_q = 38.13547087602444, 0.5003270373238773
    k = math.tan(math.pi * shelf_hz / sample_rate_hz)
    vh = 10 ** (shelf_gain_db / 20)
    vb = vh**0.4996667741545416
    a0 = 1 + k / shelf_q + k * k
    shelf = (
        np.array([vh + vb * k / shelf_q + k * k, 2 * (k * k - vh), vh - vb * k / shelf_q + k * k]) / a0,
        np.array([1.0, 2 * (k * k - 1) / a0, (1 - k / shelf_q + k * k) / a0]),
    )
    k = math.tan(math.pi * highpass_hz / sample_rate_hz)
    a0 = 1 + k / highpass_q + k * k
    highpass = (
        np.array([1.0, -2.0, 1.0]),
        np.array([1.0, 2 * (k * k - 1) / a0, (1 - k / highpass_q + k * k) / a0]),
    )
    return shelf, highpass


def loudness_lufs(audio: np.ndarray, sample_rate_hz: int = SAMPLE_RATE_HZ) -> float:
    """Integrated loudness (BS.1770-4, mono) in LUFS; −inf for silence. Audio shorter than one 400 ms block is
    measured as one block."""
    weighted = np.asarray(audio, dtype=np.float64)
    for b, a in _k_weighting(sample_rate_hz):
        weighted = lfilter(b, a, weighted)
    block = round(LOUDNESS_BLOCK_S * sample_rate_hz)
    if weighted.shape[0] < block:
        powers = np.array([np.mean(np.square(weighted))]) if weighted.size else np.zeros(1)
    else:
        powers = np.mean(np.square(frames(weighted.astype(np.float32), block, block // 4)), axis=1, dtype=np.float64)
        powers = powers[: 1 + (weighted.shape[0] - block) // (block // 4)]
    with np.errstate(divide="ignore"):
        block_lufs = -0.691 + 10.0 * np.log10(powers)
    gated = powers[block_lufs > ABSOLUTE_GATE_LUFS]
    if gated.size == 0:
        return float("-inf")
    relative_gate = -0.691 + 10.0 * math.log10(float(np.mean(gated))) + RELATIVE_GATE_LU
    with np.errstate(divide="ignore"):
        gated = powers[(block_lufs > ABSOLUTE_GATE_LUFS) & (block_lufs > relative_gate)]
    return -0.691 + 10.0 * math.log10(float(np.mean(gated)))


def speech_loudness_lufs(audio: np.ndarray, active: np.ndarray) -> float:
    """Loudness of the speech in noisy ``audio``: the noise's power (measured on the stretches of at least
    NOISE_RUN_S that ``active`` marks silent, e.g. from a denoised copy) subtracted from the whole's, so that the
    noise's loudness is not transferred.
    The plain loudness when there is no silent hop or the noise is within 0.5 LU of the whole."""
    total = loudness_lufs(audio)
    # Only long silent stretches (pauses, lead and trail) hold the room's noise alone; short ones may be faint speech.
    quiet = np.repeat(drop_short_runs(~active, round(NOISE_RUN_S / HOP_S)), HOP_SAMPLES)[: audio.shape[0]]
    if not quiet.any() or not math.isfinite(total):
        return total
    noise = loudness_lufs(np.asarray(audio)[: quiet.shape[0]][quiet])
    if not math.isfinite(noise) or total - noise < 0.5:
        return total
    return 10.0 * math.log10(10 ** (total / 10) - 10 ** (noise / 10))
