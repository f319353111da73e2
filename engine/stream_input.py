"""Live input clean-up: any chunking, rate, sample format and channel count in; whole 16 kHz VAD windows out.

Decisions downstream happen on window boundaries in source time, never on chunk arrival, which is what makes the
same audio give the same text whatever the chunk size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from engine.audio import AudioError, to_float32, to_mono
from engine.constants import SAMPLE_RATE_HZ, WINDOW_SAMPLES
from engine.resample import StreamResampler


@dataclass(frozen=True)
class LiveInputLimits:
    """What one live chunk may be: anything outside is refused in plain words before it costs memory or time (a
    chunk labelled 1 Hz would make the resampler allocate tens of gigabytes)."""

    #: Lowest and highest sample rate accepted, in Hz (telephone to studio).
    min_rate_hz: int = 8_000
    max_rate_hz: int = 192_000
    #: Longest chunk accepted, in seconds of audio (browsers send 0.5 s; sound cards less).
    max_chunk_s: float = 5.0
    #: Most channels accepted.
    max_channels: int = 8

    def __post_init__(self) -> None:
        if not 0 < self.min_rate_hz <= self.max_rate_hz or self.max_chunk_s <= 0 or self.max_channels < 1:
            raise ValueError("live input limits must be positive, with min_rate_hz <= max_rate_hz")

    def check(self, samples: np.ndarray, sample_rate_hz: int) -> None:
        """Raise :class:`AudioError` with a sentence for the person when the chunk is outside the limits."""
        if samples.dtype.kind not in "iuf" or samples.ndim > 2:
            raise AudioError("The audio chunk is not plain PCM samples (integers or real numbers, 1 or 2 dimensions).")
        frames, channels = (samples.shape[0], 1) if samples.ndim == 1 else sorted(samples.shape, reverse=True)
        self.check_layout(sample_rate_hz, channels, frames)

    def check_layout(self, sample_rate_hz: int, channels: int, frames: int) -> None:
        """The same limits, from what a chunk says of itself (a file header), before any sample is read."""
        if not self.min_rate_hz <= sample_rate_hz <= self.max_rate_hz:
            raise AudioError(
                f"The audio's sample rate ({sample_rate_hz} Hz) is outside {self.min_rate_hz}–{self.max_rate_hz} Hz."
            )
        if not 1 <= channels <= self.max_channels:
            raise AudioError(f"The audio has {channels} channels; 1 to {self.max_channels} are accepted.")
        if frames > self.max_chunk_s * sample_rate_hz:
            raise AudioError(f"One audio chunk may hold at most {self.max_chunk_s:g} s; send shorter chunks.")


def read_chunk(path: str | Path, limits: LiveInputLimits) -> tuple[int, np.ndarray]:
    """A live chunk as the browser uploads it (a small WAV file): checked against ``limits`` from its header, then
    read as float32 (whatever its sample format: 8- to 32-bit integers, float or double). Returns (rate, samples);
    anything unreadable raises :class:`AudioError` in the person's words."""
    try:
        handle = sf.SoundFile(Path(path))  # a path only: soundfile would take a number for an open descriptor
    except (sf.LibsndfileError, RuntimeError, TypeError, OSError) as e:
        raise AudioError("A piece of live audio could not be read as sound; it may be corrupt.") from e
    with handle:
        limits.check_layout(int(handle.samplerate), int(handle.channels), int(handle.frames))
        try:
            samples = handle.read(dtype="float32", always_2d=False)
        except (sf.LibsndfileError, RuntimeError) as e:
            raise AudioError("A piece of live audio is truncated or corrupt and could not be read.") from e
    return int(handle.samplerate), samples


#: A session built without limits (offline use, tests) still refuses impossible rates and shapes, at any length.
ANY_LENGTH = LiveInputLimits(max_chunk_s=math.inf)


class StreamInput:
    """Turns pushed chunks into 32 ms windows at 16 kHz. One per stream."""

    def __init__(self, limits: LiveInputLimits | None = None) -> None:
        self._limits = limits if limits is not None else ANY_LENGTH
        self._resampler: StreamResampler | None = None
        self._pending = np.zeros(0, dtype=np.float32)  # 16 kHz samples short of a whole window
        self.notices: list[str] = []  # what the person should know, taken by the session after each push

    def push(self, samples: np.ndarray, sample_rate_hz: int) -> list[np.ndarray]:
        """Whole windows made available by this chunk (int or float PCM, mono or multi-channel). A chunk outside the
        limits raises :class:`AudioError` and changes nothing: the stream goes on with the next good chunk."""
        samples = np.asarray(samples)
        self._limits.check(samples, sample_rate_hz)
        audio = to_mono(to_float32(samples))
        windows: list[np.ndarray] = []
        if not np.isfinite(audio).all():
            audio = np.nan_to_num(audio, nan=0.0, posinf=0.0, neginf=0.0)
            self.notices.append("Some audio samples were invalid and were replaced by silence.")
        if self._resampler is None or self._resampler.from_hz != sample_rate_hz:
            if self._resampler is not None:
                windows += self._windows(self._resampler.flush())
                self.notices.append(f"The input sample rate changed to {sample_rate_hz} Hz.")
            self._resampler = StreamResampler(sample_rate_hz, SAMPLE_RATE_HZ)
        return windows + self._windows(self._resampler.push(audio))

    def check(self, samples: np.ndarray, sample_rate_hz: int) -> None:
        self._limits.check(np.asarray(samples), sample_rate_hz)

    def flush(self) -> list[np.ndarray]:
        """End of stream: the resampler's tail, and the last partial window completed with silence."""
        windows = self._windows(self._resampler.flush()) if self._resampler else []
        if self._pending.size:
            windows += self._windows(np.zeros(WINDOW_SAMPLES - self._pending.size, dtype=np.float32))
        return windows

    def take_notices(self) -> list[str]:
        notices, self.notices = self.notices, []
        return notices

    def _windows(self, audio16: np.ndarray) -> list[np.ndarray]:
        self._pending = np.concatenate([self._pending, audio16]) if self._pending.size else audio16
        whole = self._pending.size // WINDOW_SAMPLES
        windows = [self._pending[i * WINDOW_SAMPLES : (i + 1) * WINDOW_SAMPLES] for i in range(whole)]
        self._pending = self._pending[whole * WINDOW_SAMPLES :].copy()
        return windows
