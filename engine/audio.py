"""Audio in: whatever people have (files of any common format, any rate, any channel count) to 16 kHz mono float32.

soundfile reads WAV/FLAC/OGG/MP3 directly; everything else (m4a, webm, video containers) goes through ffmpeg.
Validation turns bad input into :class:`AudioError` messages meant to be shown to the person as they are.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from math import gcd
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from engine.constants import SAMPLE_RATE_HZ

#: Peak below this (about -80 dBFS) counts as silence: nothing a microphone would pick up as speech.
SILENCE_PEAK = 1e-4
#: Shorter than this, there is nothing to translate.
MIN_DURATION_S = 0.1


class AudioError(ValueError):
    """Audio that cannot be used; the message is written for the person who supplied it."""


def to_float32(samples: np.ndarray) -> np.ndarray:
    """Integer PCM to float32 in [-1, 1]; float input is passed through as float32."""
    samples = np.asarray(samples)
    if samples.dtype.kind == "i":
        return samples.astype(np.float32) / float(np.iinfo(samples.dtype).max + 1)
    if samples.dtype.kind == "u":  # unsigned 8-bit PCM is centred on 128
        half = float(np.iinfo(samples.dtype).max + 1) / 2
        return (samples.astype(np.float32) - half) / half
    return samples.astype(np.float32, copy=False)


def to_mono(samples: np.ndarray) -> np.ndarray:
    """Average channels. Accepts (n,), (n, channels) and, for short channel-first input, (channels, n)."""
    if samples.ndim == 1:
        return samples
    if samples.ndim != 2:
        raise AudioError(f"Audio must be 1- or 2-dimensional, got shape {samples.shape}.")
    if samples.shape[0] <= 8 < samples.shape[1]:  # channel-first, as torch and some libraries give it
        samples = samples.T
    return samples.mean(axis=1, dtype=np.float32)


def resample(samples: np.ndarray, from_hz: int, to_hz: int = SAMPLE_RATE_HZ) -> np.ndarray:
    """Polyphase resampling (exact rational ratio, linear phase)."""
    if from_hz <= 0:
        raise AudioError(f"Invalid sample rate {from_hz} Hz.")
    if from_hz == to_hz:
        return samples.astype(np.float32, copy=False)
    g = gcd(int(from_hz), int(to_hz))
    return resample_poly(samples, to_hz // g, from_hz // g).astype(np.float32)


def prepare(samples: np.ndarray, sample_rate_hz: int, max_duration_s: float | None = None) -> np.ndarray:
    """Any PCM array at any rate → validated 16 kHz mono float32."""
    mono = to_mono(to_float32(samples))
    if max_duration_s is not None and mono.size / max(sample_rate_hz, 1) > max_duration_s:
        raise _too_long(mono.size / sample_rate_hz, max_duration_s)
    check_finite(mono)
    audio = resample(mono, sample_rate_hz)
    check_not_empty(audio)
    check_not_silent(audio)
    return audio


def check_finite(samples: np.ndarray) -> None:
    if not np.isfinite(samples).all():
        raise AudioError("The audio contains invalid samples (NaN or infinity); it may be corrupt.")


def check_not_empty(samples: np.ndarray) -> None:
    if samples.size < MIN_DURATION_S * SAMPLE_RATE_HZ:
        raise AudioError("The audio is empty or too short to contain speech.")


def check_not_silent(samples: np.ndarray) -> None:
    if float(np.max(np.abs(samples))) < SILENCE_PEAK:
        raise AudioError("The audio is silent: no sound was found in it. Check the microphone or the file.")


#: Most channels a file may have: more is not a recording anyone makes, and each costs memory while mixing down.
MAX_CHANNELS = 32
#: Sample rates a file may state: outside them the header lies (a 1 Hz label would make resampling to 16 kHz
#: allocate 16,000 samples per sample read).
MIN_FILE_RATE_HZ, MAX_FILE_RATE_HZ = 4_000, 768_000
#: What libsndfile reports as the length of a file whose header does not state it (its largest frame count).
UNKNOWN_FRAMES = 2**62
#: Files are read and mixed down to mono this many seconds at a time, so memory follows the mono length only.
READ_BLOCK_S = 30.0


def _too_long(seconds: float | None, max_duration_s: float) -> AudioError:
    """``seconds`` None: decoding stopped at the limit, so the length is only known to be more."""
    length = "longer than that" if seconds is None else f"{seconds / 60:.1f} minutes long"
    return AudioError(
        f"The recording is {length}; the limit is {max_duration_s / 60:.0f} minutes. Split it into shorter files."
    )


def decode(
    source: str | Path | bytes, max_file_bytes: int | None = None, max_duration_s: float | None = None
) -> tuple[np.ndarray, int]:
    """Decode a file (path or bytes) to mono float32 samples and their sample rate, without resampling.

    Limits are checked from the container's own description (duration, rate, channels) before anything is decoded,
    and decoding then goes block by block and stops at the limit, so a tiny file that claims or holds hours of
    audio costs neither memory nor time.
    """
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise AudioError(f"File not found: {path}")
        size = path.stat().st_size
        data: bytes | None = None
    else:
        path, data, size = None, bytes(source), len(source)
    if size == 0:
        raise AudioError("The file is empty.")
    if max_file_bytes is not None and size > max_file_bytes:
        raise AudioError(f"The file is {size / 2**20:.0f} MB; the limit is {max_file_bytes / 2**20:.0f} MB.")
    try:
        handle = sf.SoundFile(path if path is not None else io.BytesIO(data))
    except (sf.LibsndfileError, RuntimeError, TypeError):
        return _decode_with_ffmpeg(path, data, max_duration_s)  # not a format libsndfile knows
    with handle:
        return _read_blocks(handle, max_duration_s), int(handle.samplerate)


def _read_blocks(handle: sf.SoundFile, max_duration_s: float | None) -> np.ndarray:
    rate, channels = int(handle.samplerate), int(handle.channels)
    if not 0 < channels <= MAX_CHANNELS:
        raise AudioError(f"The file has {channels} channels; at most {MAX_CHANNELS} are accepted.")
    if not MIN_FILE_RATE_HZ <= rate <= MAX_FILE_RATE_HZ:
        raise AudioError(
            f"The file's sample rate ({rate} Hz) is outside "
            f"{MIN_FILE_RATE_HZ}–{MAX_FILE_RATE_HZ} Hz: it may be corrupt."
        )
    # A streamed file (FLAC written to a pipe) states no length: libsndfile says "the most it can count".
    stated_s = handle.frames / rate if handle.frames < UNKNOWN_FRAMES else None
    if max_duration_s is not None and stated_s is not None and stated_s > max_duration_s:  # nothing decoded yet
        raise _too_long(stated_s, max_duration_s)
    limit = None if max_duration_s is None else int(max_duration_s * rate) + 1
    blocks, frames = [], 0
    try:
        for block in handle.blocks(blocksize=max(1, int(READ_BLOCK_S * rate)), dtype="float32", always_2d=True):
            blocks.append(block.mean(axis=1, dtype=np.float32))
            frames += block.shape[0]
            if limit is not None and frames > limit:  # the header understated the length
                raise _too_long(None, max_duration_s)
    except (sf.LibsndfileError, RuntimeError) as e:
        raise AudioError("The file could not be read as audio. It may be corrupt or truncated.") from e
    return np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.float32)


def _decode_with_ffmpeg(path: Path | None, data: bytes | None, max_duration_s: float | None) -> tuple[np.ndarray, int]:
    """Anything else (m4a, webm, mp3 libsndfile refuses, video): ffmpeg decodes to 16 kHz mono, stopping just past
    the limit so that hours hidden in a small file are never decoded whole."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise AudioError("This audio format needs ffmpeg, which is not installed. Convert the file to WAV or FLAC.")
    cap = [] if max_duration_s is None else ["-t", f"{max_duration_s + 1.0:.3f}"]
    cmd = [ffmpeg, "-nostdin", "-v", "error", "-i", str(path) if path else "pipe:0", "-map", "0:a:0", *cap,
           "-f", "f32le", "-ac", "1", "-ar", str(SAMPLE_RATE_HZ), "pipe:1"]  # fmt: skip
    proc = subprocess.run(cmd, input=data, capture_output=True, check=False)
    if proc.returncode != 0 or not proc.stdout:
        raise AudioError("The file could not be read as audio. It may be corrupt or not an audio file.")
    samples = np.frombuffer(proc.stdout, dtype=np.float32).copy()
    if max_duration_s is not None and samples.size / SAMPLE_RATE_HZ > max_duration_s:
        raise _too_long(None, max_duration_s)
    return samples, SAMPLE_RATE_HZ


def load_audio(
    source: str | Path | bytes, max_duration_s: float | None = None, max_file_bytes: int | None = None
) -> np.ndarray:
    """Read a file (or its bytes) and return validated 16 kHz mono float32 samples."""
    samples, rate = decode(source, max_file_bytes=max_file_bytes, max_duration_s=max_duration_s)
    return prepare(samples, rate, max_duration_s=max_duration_s)


def duration_s(samples: np.ndarray, sample_rate_hz: int = SAMPLE_RATE_HZ) -> float:
    return samples.shape[0] / sample_rate_hz


def write_wav(path: Path, samples: np.ndarray, sample_rate_hz: int = SAMPLE_RATE_HZ) -> Path:
    """16-bit PCM WAV, the format every player opens."""
    sf.write(path, np.clip(samples, -1.0, 1.0), sample_rate_hz, subtype="PCM_16")
    return path
