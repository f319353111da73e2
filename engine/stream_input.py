"""Live input clean-up: any chunking, rate, sample format and channel count in; whole 16 kHz VAD windows out.

Decisions downstream happen on window boundaries in source time, never on chunk arrival, which is what makes the
same audio give the same text whatever the chunk size.
"""

from __future__ import annotations

import numpy as np

from engine.audio import to_float32, to_mono
from engine.constants import SAMPLE_RATE_HZ, WINDOW_SAMPLES
from engine.resample import StreamResampler


class StreamInput:
    """Turns pushed chunks into 32 ms windows at 16 kHz. One per stream."""

    def __init__(self) -> None:
        self._resampler: StreamResampler | None = None
        self._pending = np.zeros(0, dtype=np.float32)  # 16 kHz samples short of a whole window
        self.notices: list[str] = []  # what the person should know, taken by the session after each push

    def push(self, samples: np.ndarray, sample_rate_hz: int) -> list[np.ndarray]:
        """Whole windows made available by this chunk (int or float PCM, mono or multi-channel)."""
        audio = to_mono(to_float32(np.asarray(samples)))
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
