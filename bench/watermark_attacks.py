"""Attacks for the watermark benchmark: codecs, filters, noise, resampling, speed, pitch, tempo, echo, combinations.

Each takes 16 kHz mono float32 samples and a random generator and returns the attacked samples (16 kHz).
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from math import gcd

import numpy as np
from scipy.signal import butter, fftconvolve, lfilter, resample_poly, sosfilt

SAMPLE_RATE_HZ = 16_000
CLIP_S = 5.0
CROP_S = 2.0


def resample(samples: np.ndarray, from_hz: int, to_hz: int) -> np.ndarray:
    common = gcd(from_hz, to_hz)
    return resample_poly(samples, to_hz // common, from_hz // common).astype(np.float32)


def clip_of(speech: np.ndarray, rng: np.random.Generator, length_s: float = CLIP_S) -> np.ndarray:
    """A ``length_s`` excerpt at a random offset (zero-padded when the speech is shorter)."""
    length = int(length_s * SAMPLE_RATE_HZ)
    if speech.size <= length:
        return np.pad(speech, (0, length - speech.size)).astype(np.float32)
    start = int(rng.integers(0, speech.size - length))
    return speech[start : start + length].astype(np.float32)


def ffmpeg_roundtrip(samples: np.ndarray, *args: str) -> np.ndarray:
    """Encode with ffmpeg (``args`` = codec options and container), decode back to 16 kHz mono float32."""
    raw = ["-f", "f32le", "-ar", str(SAMPLE_RATE_HZ), "-ac", "1"]
    encode = ["ffmpeg", "-nostdin", "-v", "error", *raw, "-i", "pipe:0", *args, "pipe:1"]
    encoded = subprocess.run(encode, input=samples.astype(np.float32).tobytes(), capture_output=True, check=True)
    decode = ["ffmpeg", "-nostdin", "-v", "error", "-i", "pipe:0", *raw, "pipe:1"]
    decoded = subprocess.run(decode, input=encoded.stdout, capture_output=True, check=True)
    out = np.frombuffer(decoded.stdout, dtype=np.float32)
    return np.pad(out, (0, max(0, samples.size - out.size)))[: samples.size].copy()


def add_noise(samples: np.ndarray, snr_db: float, rng: np.random.Generator, pink: bool = False) -> np.ndarray:
    noise = rng.standard_normal(samples.size)
    if pink:  # 1/f power: shape white noise by 1/sqrt(f) in the frequency domain
        spectrum = np.fft.rfft(noise)
        spectrum[1:] /= np.sqrt(np.arange(1, spectrum.size))
        spectrum[0] = 0.0
        noise = np.fft.irfft(spectrum, n=samples.size)
    noise *= np.sqrt(np.mean(samples**2) / np.mean(noise**2) / 10 ** (snr_db / 10))
    return (samples + noise).astype(np.float32)


def quantise(samples: np.ndarray, bits: int) -> np.ndarray:
    levels = 2 ** (bits - 1)
    return (np.clip(np.round(samples * levels), -levels, levels - 1) / levels).astype(np.float32)


def filtered(samples: np.ndarray, cutoff_hz: float, kind: str, order: int) -> np.ndarray:
    sos = butter(order, cutoff_hz, btype=kind, fs=SAMPLE_RATE_HZ, output="sos")
    return sosfilt(sos, samples).astype(np.float32)


def echo(samples: np.ndarray, delay_s: float = 0.1, gain: float = 0.4) -> np.ndarray:
    delay = int(delay_s * SAMPLE_RATE_HZ)
    return lfilter([1.0] + [0.0] * (delay - 1) + [gain], [1.0], samples).astype(np.float32)


def pitch_shift(samples: np.ndarray, factor: float) -> np.ndarray:
    """Pitch up by ``factor`` at unchanged duration (ffmpeg asetrate + atempo)."""
    rate = int(SAMPLE_RATE_HZ * factor)
    raw = ["-f", "f32le", "-ar", str(SAMPLE_RATE_HZ), "-ac", "1"]
    filters = f"asetrate={rate},aresample={SAMPLE_RATE_HZ},atempo={1 / factor:.6f}"
    cmd = ["ffmpeg", "-nostdin", "-v", "error", *raw, "-i", "pipe:0", "-af", filters, *raw, "pipe:1"]
    proc = subprocess.run(cmd, input=samples.astype(np.float32).tobytes(), capture_output=True, check=True)
    out = np.frombuffer(proc.stdout, dtype=np.float32)
    return np.pad(out, (0, max(0, samples.size - out.size)))[: samples.size].copy()


def tempo(samples: np.ndarray, factor: float) -> np.ndarray:
    """Played ``factor`` times faster at unchanged pitch: ffmpeg's atempo (overlap-add with waveform-similarity
    alignment, as WSOLA does). The output is shorter or longer than the input."""
    raw = ["-f", "f32le", "-ar", str(SAMPLE_RATE_HZ), "-ac", "1"]
    cmd = ["ffmpeg", "-nostdin", "-v", "error", *raw, "-i", "pipe:0", "-af", f"atempo={factor:.6f}", *raw, "pipe:1"]
    proc = subprocess.run(cmd, input=samples.astype(np.float32).tobytes(), capture_output=True, check=True)
    return np.frombuffer(proc.stdout, dtype=np.float32).copy()


def room(samples: np.ndarray, rng: np.random.Generator, rt60_s: float = 0.3) -> np.ndarray:
    """A small room: the direct sound plus exponentially decaying noise (reverberation time rt60_s), normalised."""
    length = int(rt60_s * SAMPLE_RATE_HZ)
    response = rng.standard_normal(length) * 10 ** (-3 * np.arange(length) / length) * 0.3
    response[0] = 1.0
    out = fftconvolve(samples, response)[: samples.size]
    return (out * np.max(np.abs(samples)) / max(np.max(np.abs(out)), 1e-9)).astype(np.float32)


def mp3(samples: np.ndarray) -> np.ndarray:
    return ffmpeg_roundtrip(samples, "-c:a", "libmp3lame", "-b:a", "64k", "-f", "mp3")


def opus16(samples: np.ndarray) -> np.ndarray:
    return ffmpeg_roundtrip(samples, "-c:a", "libopus", "-b:a", "16k", "-f", "ogg")


Attack = Callable[[np.ndarray, np.random.Generator], np.ndarray]


@dataclass(frozen=True)
class AttackSpec:
    name: str
    apply: Attack
    required: bool = True


ATTACKS = (
    AttackSpec("none", lambda x, rng: x),
    AttackSpec("resample 8 kHz", lambda x, rng: resample(resample(x, SAMPLE_RATE_HZ, 8000), 8000, SAMPLE_RATE_HZ)),
    AttackSpec("resample 44.1 kHz", lambda x, rng: resample(resample(x, SAMPLE_RATE_HZ, 44100), 44100, 16000)),
    AttackSpec("low-pass 3.4 kHz", lambda x, rng: filtered(x, 3400.0, "lowpass", 8)),
    AttackSpec("high-pass 500 Hz", lambda x, rng: filtered(x, 500.0, "highpass", 4)),
    AttackSpec("white noise 20 dB", lambda x, rng: add_noise(x, 20.0, rng)),
    AttackSpec("MP3 64k", lambda x, rng: ffmpeg_roundtrip(x, "-c:a", "libmp3lame", "-b:a", "64k", "-f", "mp3")),
    AttackSpec("MP3 128k", lambda x, rng: ffmpeg_roundtrip(x, "-c:a", "libmp3lame", "-b:a", "128k", "-f", "mp3")),
    AttackSpec("Opus 32k", lambda x, rng: ffmpeg_roundtrip(x, "-c:a", "libopus", "-b:a", "32k", "-f", "ogg")),
    AttackSpec("int16", lambda x, rng: quantise(x, 16)),
    AttackSpec("8-bit", lambda x, rng: quantise(x, 8)),
    AttackSpec("gain +6 dB", lambda x, rng: np.clip(x * 10 ** (6 / 20), -1.0, 1.0).astype(np.float32)),
    AttackSpec("gain -6 dB", lambda x, rng: (x * 10 ** (-6 / 20)).astype(np.float32)),
    AttackSpec("crop 2 s", lambda x, rng: clip_of(x, rng, CROP_S)),
    # Issue 21's rows: played faster or slower (resampled), pitch or tempo changed alone, echo, loud pink noise.
    AttackSpec("speed 0.9x", lambda x, rng: resample(x, 10, 9)),
    AttackSpec("speed 1.1x", lambda x, rng: resample(x, 10, 11)),
    AttackSpec("pitch +6 %", lambda x, rng: pitch_shift(x, 1.06)),
    AttackSpec("pitch -6 %", lambda x, rng: pitch_shift(x, 0.94)),
    AttackSpec("tempo +10 % (WSOLA)", lambda x, rng: tempo(x, 1.1)),
    AttackSpec("tempo -10 % (WSOLA)", lambda x, rng: tempo(x, 0.9)),
    AttackSpec("echo 100 ms", lambda x, rng: echo(x)),
    AttackSpec("pink noise 10 dB", lambda x, rng: add_noise(x, 10.0, rng, pink=True)),
    # Combined, as when someone re-records a played translation: report-only for now.
    AttackSpec(
        "44.1k + MP3 64k + gain",
        lambda x, rng: 0.7 * mp3(resample(resample(x, 16000, 44100), 44100, 16000)),
        required=False,
    ),
    AttackSpec("speed 1.05 + MP3 64k", lambda x, rng: mp3(resample(x, 20, 21)), required=False),
    AttackSpec("room echo + noise 20 dB", lambda x, rng: add_noise(room(x, rng), 20.0, rng), required=False),
    AttackSpec(
        "phone band + Opus 16k",
        lambda x, rng: opus16(filtered(filtered(x, 300.0, "highpass", 4), 3400.0, "lowpass", 8)),
        required=False,
    ),
)
