"""The hand-written prosody signal processing that the libraries replaced, kept only as the comparison's baseline
(``bench/expressive.py --libraries``): YIN F0 tracking, WSOLA time-stretching, variable-rate resampling."""

from __future__ import annotations

import math

import numpy as np
from scipy.signal import butter, sosfiltfilt

from engine.audio import SAMPLE_RATE_HZ
from engine.prosody.analysis import activity
from engine.prosody.analysis.frames import frames
from engine.prosody.analysis.pitch import F0_MAX_HZ, F0_MIN_HZ

#: YIN (the hand-written tracker Praat replaced): integration window, and the aperiodicity threshold under which a
#: frame is voiced.
YIN_WINDOW_S = 0.025
YIN_THRESHOLD = 0.3


def yin_f0(audio: np.ndarray, sample_rate_hz: int = SAMPLE_RATE_HZ) -> np.ndarray:
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
    return f0


#: WSOLA: 32 ms Hann frames at 50 % overlap, searched ±10 ms for the best waveform continuation.
WSOLA_FRAME_SAMPLES = 512
WSOLA_TOLERANCE_SAMPLES = 160


def wsola(audio: np.ndarray, input_position: np.ndarray) -> np.ndarray:
    """Waveform-similarity overlap-add. ``input_position[n]`` is the (fractional) input sample that output sample
    n should come from; its slope is the local speed. Each 32 ms output frame is cut from the input near its ideal
    place, shifted by up to ±10 ms to continue the previous frame's waveform, so pitch periods are not broken."""
    frame, hop, tolerance = WSOLA_FRAME_SAMPLES, WSOLA_FRAME_SAMPLES // 2, WSOLA_TOLERANCE_SAMPLES
    out_len = input_position.shape[0]
    window = np.hanning(frame + 1)[:frame].astype(np.float32)  # periodic Hann: sums to 1 at 50 % overlap
    margin = 2 * (frame + tolerance)
    padded = np.concatenate([np.zeros(margin, np.float32), audio.astype(np.float32), np.zeros(margin, np.float32)])
    n_frames = out_len // hop + 2
    centres = np.minimum(np.arange(n_frames) * hop + hop, out_len - 1)
    ideal = np.round(np.interp(centres, np.arange(out_len), input_position)).astype(int) - hop + margin
    out = np.zeros(n_frames * hop + frame, np.float32)
    norm = np.zeros_like(out)
    previous = None
    for k in range(n_frames):
        start = int(np.clip(ideal[k], tolerance, padded.shape[0] - frame - tolerance))
        if previous is not None:
            template = padded[previous + hop : previous + hop + frame]
            region = padded[start - tolerance : start + tolerance + frame]
            start += int(np.argmax(np.correlate(region, template * window, mode="valid"))) - tolerance
        out[k * hop : k * hop + frame] += padded[start : start + frame] * window
        norm[k * hop : k * hop + frame] += window
        previous = start
    # Output frame k is centred on output sample k·hop + hop; shift so output sample n maps to input_position[n].
    out = out[0:out_len] / np.maximum(norm[0:out_len], 1e-3)
    return out


def resample_variable(audio: np.ndarray, rate: np.ndarray) -> np.ndarray:
    """Read ``audio`` at a varying speed: ``rate[m]`` (> 0) input samples per output sample around input sample m.
    Speed 1.12 raises the pitch by 2 semitones and shortens by 1.12. Cubic (Catmull-Rom) interpolation, after a
    low-pass where the speed-up would fold content above the new Nyquist frequency back into the band."""
    peak_rate = float(rate.max())
    if peak_rate > 1.02:
        sos = butter(8, 0.95 / peak_rate, output="sos")
        audio = sosfiltfilt(sos, audio).astype(np.float32)
    output_time = np.concatenate([[0.0], np.cumsum(1.0 / rate)])[:-1]  # output time of each input sample
    n_out = int(output_time[-1]) + 1
    position = np.interp(np.arange(n_out), output_time, np.arange(audio.shape[0]))
    return _cubic(audio, position)


def _cubic(audio: np.ndarray, position: np.ndarray) -> np.ndarray:
    padded = np.concatenate([[audio[0]], audio, [audio[-1], audio[-1]]]).astype(np.float64)
    i = np.floor(position).astype(int) + 1
    t = position - (i - 1)
    p0, p1, p2, p3 = padded[i - 1], padded[i], padded[i + 1], padded[np.minimum(i + 2, padded.shape[0] - 1)]
    value = p1 + 0.5 * t * (p2 - p0 + t * (2 * p0 - 5 * p1 + 4 * p2 - p3 + t * (3 * (p1 - p2) + p3 - p0)))
    return value.astype(np.float32)
