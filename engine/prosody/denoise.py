"""Analysis-only denoising of the source: RNNoise (Valin 2018, a small recurrent network whose weights ship inside the
``pyrnnoise`` wheel). The stage measures pauses, pace, pitch and loudness on the denoised copy, so a noisy room is
not taken for speech, pauses or pitch; the model still hears (and the output is built from) the original."""

from __future__ import annotations

import numpy as np

from engine.audio import SAMPLE_RATE_HZ

#: RNNoise's output lags its 16 kHz input by 20 ms (its 10 ms frame plus the 48 kHz resampling, measured by
#: cross-correlation on espeak-ng speech).
DELAY_SAMPLES = 320
INT16_FULL_SCALE = 32768.0


def denoise(audio: np.ndarray) -> np.ndarray:
    """``audio`` (16 kHz mono float32) with stationary and babble noise suppressed; same length, aligned."""
    from pyrnnoise import RNNoise  # imported on first use: only the denoising option needs it

    samples = np.asarray(audio, dtype=np.float32)
    if samples.size == 0:
        return samples
    padded = np.concatenate([samples, np.zeros(DELAY_SAMPLES, np.float32)])
    frames = [frame for _, frame in RNNoise(SAMPLE_RATE_HZ).denoise_chunk(padded[None], partial=True)]
    # RNNoise works on 16-bit samples: its frames come back as int16 whatever went in.
    out = np.concatenate([f.reshape(-1) for f in frames]).astype(np.float32) / INT16_FULL_SCALE
    out = out[DELAY_SAMPLES : DELAY_SAMPLES + samples.shape[0]]
    return np.pad(out, (0, samples.shape[0] - out.shape[0])).astype(np.float32)
