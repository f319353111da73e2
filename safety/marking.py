"""Marking what Parley says: every synthetic sample goes through a :class:`SpeechMarker` before anyone hears it.

The payload says where the speech came from: a 16-bit deployment id (who runs this server) and a 16-bit session id
derived from the browser session or run, so a recording found later can be traced to a deployment and a session
without storing anything about the person.

Live speech comes in pieces of a second or two, shorter than the built-in watermark's period (1.92 s carries one
payload). Marked each on its own, every piece would start the period afresh and no piece would hold the whole
payload. So each output timeline (a saved file, a speaker, a page's player) gets one :class:`MarkedStream`: one
streaming embedder that every sample of that timeline passes through once, at its position, with the pauses
between pieces fed in as silence (which costs no analysis). A recording of that output then carries one
continuous mark and yields the payload wherever about two seconds of speech fall in it, in one piece or several.

Marked audio is also brought within full scale here (:func:`within_full_scale`), because every output is then
written as 16-bit PCM, which clips: the model's speech may already reach full scale (the tiny test model's does on
a quarter of its samples), and the mark adds up to a few dB on the tiles it raises, so clipping after marking cut
those tiles back and lost the payload (a spoken text of 2.3 s read no payload). A gain is harmless to the mark, whose
features compare bands within one column.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from engine.audio import SAMPLE_RATE_HZ
from safety.watermark.interface import EmbeddingStream, Watermarker, make_payload, mono_float32

#: Highest sample magnitude marked audio may leave with: 16-bit PCM's largest positive value.
FULL_SCALE = 32767 / 32768


def within_full_scale(marked: np.ndarray) -> np.ndarray:
    """``marked`` scaled down, as a whole, to peak at :data:`FULL_SCALE` when it would clip; else unchanged."""
    peak = float(np.abs(marked).max(initial=0.0))
    return marked if peak <= FULL_SCALE else (marked * (FULL_SCALE / peak)).astype(np.float32)


def session_id(session_key: str) -> int:
    """A stable 16-bit id for a session key (not reversible to the key)."""
    return int.from_bytes(hashlib.blake2b(session_key.encode(), digest_size=2).digest(), "big")


@dataclass(frozen=True)
class SpeechMarker:
    """Embeds one payload into 16 kHz synthetic speech: whole signals, or the pieces of one output timeline."""

    #: The backend that marks.
    watermarker: Watermarker
    #: The 32-bit payload every marked sample carries (see :func:`safety.watermark.make_payload`).
    payload: int

    def __post_init__(self) -> None:
        if not 0 <= self.payload < 1 << 32:
            raise ValueError("payload must fit in 32 unsigned bits")

    @classmethod
    def for_session(cls, watermarker: Watermarker, deployment_id: int, session_key: str) -> SpeechMarker:
        return cls(watermarker, make_payload(deployment_id, session_id(session_key)))

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        """Mark a whole 16 kHz signal on its own (a file, a spoken text); the result never clips."""
        if audio.size == 0:
            return np.asarray(audio, dtype=np.float32)
        return MarkedStream(self.watermarker.stream(self.payload)).add(audio, 0)

    def stream(self) -> MarkedStream:
        """A new stream for one output timeline (one per player, speaker or file)."""
        return MarkedStream(self.watermarker.stream(self.payload))


class MarkedStream:
    """Marks the pieces of one output timeline as they come, each returned at once (live playback cannot wait).

    Pieces come in time order without overlap; what lies between them is silence on the timeline. Each piece's
    samples are pushed into the embedder once; the gap before it is fed in as silence, which costs no analysis.
    The embedder needs a little of what follows a sample (up to a segment plus a column and a hop, 152 ms) to
    finish marking it, so the end of each piece is marked at once as if silence followed
    (:meth:`EmbeddingStream.ahead`). When the next piece starts later than that, the guess was right: the stream
    continues from it, every segment is analysed once and the timeline equals marking it whole. When it starts
    sooner, the last segment is marked again with the real samples (only the new piece's part of it is returned),
    so the previous piece's last samples differ slightly from whole-timeline marking.
    """

    def __init__(self, embedder: EmbeddingStream) -> None:
        self._embedder = embedder
        self._ahead: EmbeddingStream | None = None  # the embedder as if silence followed the last piece
        self._cursor = 0  # end of the last piece on the timeline (samples the embedder has received)

    def add(self, audio: np.ndarray, at_sample: int) -> np.ndarray:
        """Mark the 16 kHz ``audio`` that plays from timeline sample ``at_sample``; returns it marked, same length,
        within full scale (each piece scaled on its own when it would clip: live pieces cannot wait for the next)."""
        audio = mono_float32(audio)
        if at_sample < self._cursor:
            raise ValueError(f"piece at sample {at_sample} overlaps the previous one (it ends at {self._cursor})")
        if audio.size == 0:
            return audio
        if self._ahead is not None and at_sample >= self._ahead.received_samples:
            # The silence the last piece's end was marked against is really there: continue from that stream.
            self._embedder = self._ahead
        gap = at_sample - self._embedder.received_samples
        final = [self._embedder.skip_silence(gap), self._embedder.push(audio)]
        rest, self._ahead = self._embedder.ahead()
        self._cursor = at_sample + audio.size
        # Together these run from the first sample not returned before (at or before at_sample) to the piece's end.
        marked = np.concatenate([*final, rest])
        return within_full_scale(marked[marked.size - audio.size :])


class MarkedTimeline:
    """Translated speech laid out for one saved file: each piece starts at the source time it belongs to (or when
    the previous piece ends, if that is later, so pieces never overlap and audio lines up with subtitles), and is
    marked there by one :class:`MarkedStream`."""

    def __init__(self, marker: SpeechMarker | Callable[[np.ndarray, int], np.ndarray]) -> None:
        """``marker`` is a :class:`SpeechMarker`; a plain ``mark(audio, at_sample)`` callable (tests, callers not yet
        switched to streams) marks each piece with that call instead."""
        self._stream = marker.stream() if isinstance(marker, SpeechMarker) else None
        self._mark = marker
        self._pieces: list[np.ndarray] = []  # marked, with the silence before each
        self._cursor = 0  # samples laid out so far
        self.speech_samples = 0  # samples of speech placed (the silence between pieces not counted)

    def add(self, source_time_s: float, audio: np.ndarray) -> None:
        """Place a 16 kHz piece."""
        start = max(self._cursor, round(source_time_s * SAMPLE_RATE_HZ))
        marked = self._stream.add(audio, start) if self._stream is not None else self._mark(audio, start)
        self._pieces += [np.zeros(start - self._cursor, dtype=np.float32), marked]
        self._cursor = start + audio.shape[0]
        self.speech_samples += audio.shape[0]

    def __bool__(self) -> bool:
        return self._cursor > 0

    def audio(self) -> np.ndarray:
        """The whole timeline so far."""
        return np.concatenate(self._pieces) if self._pieces else np.zeros(0, dtype=np.float32)
