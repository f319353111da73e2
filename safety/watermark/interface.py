"""What every watermark backend offers and returns: the :class:`Watermarker` protocol and its result types.

Callers (the marking stage, the app's verify tab, the CLI, the bench) depend on this module only; backends
implement it. A backend also tells its period (:attr:`Watermarker.period_samples`), so that callers never need to
know which backend they hold, and opens per-stream embedders (:meth:`Watermarker.stream`) for live output.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from engine.audio import SAMPLE_RATE_HZ, AudioError
from engine.audio import resample as _resample

__all__ = [
    "SAMPLE_RATE_HZ",
    "EmbeddingStream",
    "PieceByPieceStream",
    "WatermarkError",
    "WatermarkResult",
    "Watermarker",
    "WindowScore",
    "make_payload",
    "merge_windows",
    "mono_float32",
    "resample",
]


class WatermarkError(RuntimeError):
    """The watermark could not be embedded or read (bad input, missing backend, failed external tool)."""


@dataclass(frozen=True)
class WindowScore:
    """Evidence for the mark in one stretch of the recording."""

    #: Window start and end, seconds from the start of the recording.
    start_s: float
    end_s: float
    #: The backend's score in this window (built-in: a z-score, about N(0, 1) without a mark).
    score: float
    #: Whether the window's middle lies in a stretch found to carry the mark.
    present: bool

    def __post_init__(self) -> None:
        if self.end_s < self.start_s:
            raise ValueError("a window must not end before it starts")


@dataclass(frozen=True)
class WatermarkResult:
    """What a detector found in one recording."""

    #: Whether the mark counts as present by the backend's own rule.
    detected: bool
    #: The 32-bit payload when it decoded with a valid CRC, else None (also when nothing was detected).
    payload: int | None
    #: Detection statistic (built-in: t-score of the best placement's correlation, searched over all hypotheses).
    score: float
    #: Chance of evidence this strong in unmarked audio, every hypothesis searched counted; NaN when the backend
    #: has none to give (audiowmark and AudioSeal report no p-value).
    p_value: float
    #: Evidence over time, for display.
    windows: list[WindowScore] = field(default_factory=list)
    #: (start_s, end_s) of each stretch found to carry the mark, in order; empty when nothing was detected or the
    #: backend cannot localise.
    marked_s: list[tuple[float, float]] = field(default_factory=list)
    #: No payload was read, and the recording holds less sound than one payload needs
    #: (:attr:`Watermarker.min_payload_s`): a mark may still be seen, but no payload can be expected from it.
    too_short: bool = False

    def __post_init__(self) -> None:
        if self.payload is not None and not 0 <= self.payload < 1 << 32:
            raise ValueError("payload must fit in 32 unsigned bits")
        if not (self.p_value != self.p_value or 0.0 <= self.p_value <= 1.0):  # NaN, or a probability
            raise ValueError("p_value must be a probability or NaN")


class EmbeddingStream(Protocol):
    """Marks one 16 kHz stream chunk by chunk (see :class:`safety.watermark.spread.embed.StreamingEmbedder`)."""

    @property
    def received_samples(self) -> int:
        """Samples pushed or skipped so far."""
        ...

    def push(self, chunk: np.ndarray) -> np.ndarray:
        """Add host samples; return the marked samples that are final so far (in order, each once)."""
        ...

    def skip_silence(self, samples: int) -> np.ndarray:
        """Add ``samples`` of digital silence cheaply; return what became final, like :meth:`push`."""
        ...

    def ahead(self) -> tuple[np.ndarray, EmbeddingStream]:
        """Every received sample not yet returned, marked as if silence followed, and the stream in which that
        silence has arrived (its ``received_samples`` tells how much)."""
        ...

    def finish(self) -> np.ndarray:
        """Mark the rest as if silence followed and return it."""
        ...


class Watermarker(Protocol):
    """What every backend offers: mark audio with a 32-bit payload, look for the mark, and mark streams."""

    #: 16 kHz samples after which the mark's pattern repeats: pieces of one output must be marked at their
    #: positions on its timeline to carry one continuous mark. 0 when the backend has no such pattern.
    period_samples: int
    #: Seconds of sound (pauses not counted) a recording needs to hold one whole payload, so that callers can say
    #: when a clip is too short to carry one (see :attr:`WatermarkResult.too_short`).
    min_payload_s: float

    def embed(self, audio: np.ndarray, sample_rate_hz: int, payload: int) -> np.ndarray: ...

    def detect(self, audio: np.ndarray, sample_rate_hz: int) -> WatermarkResult: ...

    def stream(self, payload: int) -> EmbeddingStream:
        """A new embedder for one 16 kHz output timeline."""
        ...


class PieceByPieceStream:
    """:class:`EmbeddingStream` for backends without a streaming embedder: each pushed chunk is marked on its own.

    Right for marks that carry no timeline position (AudioSeal marks every sample alike); audiowmark then marks
    each piece as a file of its own, which is all it can do with audio that arrives in pieces.
    """

    def __init__(self, watermarker: Watermarker, payload: int) -> None:
        self._watermarker = watermarker
        self._payload = payload
        self._received = 0

    @property
    def received_samples(self) -> int:
        return self._received

    def push(self, chunk: np.ndarray) -> np.ndarray:
        chunk = mono_float32(chunk)
        self._received += chunk.size
        return self._watermarker.embed(chunk, SAMPLE_RATE_HZ, self._payload) if chunk.size else chunk

    def skip_silence(self, samples: int) -> np.ndarray:
        if samples < 0:
            raise ValueError("cannot skip a negative number of samples")
        self._received += samples
        return np.zeros(samples, dtype=np.float32)

    def ahead(self) -> tuple[np.ndarray, EmbeddingStream]:
        return np.zeros(0, dtype=np.float32), self  # every chunk is final as soon as it is pushed

    def finish(self) -> np.ndarray:
        return np.zeros(0, dtype=np.float32)


def merge_windows(windows: list[WindowScore]) -> list[tuple[float, float]]:
    """Merged (start_s, end_s) ranges of the windows marked present, for backends that localise by window."""
    ranges: list[tuple[float, float]] = []
    for window in windows:
        if not window.present:
            continue
        if ranges and window.start_s <= ranges[-1][1]:
            ranges[-1] = (ranges[-1][0], max(ranges[-1][1], window.end_s))
        else:
            ranges.append((window.start_s, window.end_s))
    return ranges


def make_payload(deployment_id: int, session_id: int) -> int:
    """Pack a 16-bit deployment id and a 16-bit session id into the 32-bit payload."""
    if not (0 <= deployment_id < 1 << 16 and 0 <= session_id < 1 << 16):
        raise ValueError("deployment_id and session_id must each fit in 16 unsigned bits")
    return deployment_id << 16 | session_id


def describe_payload(payload: int) -> str:
    """A payload in words, the same on the page and in the CLI: deployment and session ids, in decimal."""
    return f"deployment {payload >> 16}, session {payload & 0xFFFF}"


def mono_float32(audio: np.ndarray) -> np.ndarray:
    """Validate mono float audio (shape (samples,), finite) and return it as float32."""
    audio = np.asarray(audio)
    if audio.ndim != 1:
        raise WatermarkError(f"expected mono audio of shape (samples,), got shape {audio.shape}")
    if not np.isfinite(audio).all():
        raise WatermarkError("audio contains NaN or infinite samples")
    return audio.astype(np.float32, copy=False)


def resample(samples: np.ndarray, from_hz: int, to_hz: int) -> np.ndarray:
    """Polyphase resampling with an exact rational ratio (float32 out); bad rates raise :class:`WatermarkError`."""
    if to_hz <= 0:
        raise WatermarkError(f"invalid sample rate {from_hz} Hz -> {to_hz} Hz")
    try:
        return _resample(samples, from_hz, to_hz)
    except AudioError as e:
        raise WatermarkError(f"invalid sample rate {from_hz} Hz -> {to_hz} Hz") from e
