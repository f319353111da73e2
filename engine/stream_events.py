"""What a streaming session emits: frozen events, each stamped with the source time and compute it depends on."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.constants import SAMPLE_RATE_HZ
from engine.hooks import Report

#: A span of text to hide: (start, exclusive end) character offsets.
Span = tuple[int, int]


@dataclass(frozen=True)
class StreamEvent:
    """Common stamps: the segment, the source seconds read when it was decided, when it was emitted (Unix time),
    and the session's compute time so far (source time + compute time = computation-aware delay)."""

    segment: int
    source_time_s: float
    emitted_at: float
    compute_s: float


@dataclass(frozen=True)
class PartialText(StreamEvent):
    text: str  # tentative continuation after the committed text; replaces the previous partial


@dataclass(frozen=True)
class CommittedText(StreamEvent):
    text: str  # final; append to the segment's committed text (carries its own leading space); masked as shown
    token_ids: tuple[int, ...]
    safety: Report | None = None  # the safety judge's report (on the segment's committed text so far), if any
    #: Every span of the segment's committed text (its pieces joined, this one included) to show masked. Earlier
    #: pieces can gain a mask here: a term split across two commits is found only once both are in.
    masks: tuple[Span, ...] = ()


@dataclass(frozen=True)
class SpeechChunk(StreamEvent):
    audio: np.ndarray  # float32 mono
    sample_rate_hz: int = SAMPLE_RATE_HZ


@dataclass(frozen=True)
class SegmentEnd(StreamEvent):
    start_s: float  # the segment's source audio span
    end_s: float
    text: str  # the segment's whole committed text, masked where the judge asked for it
    transcript: str | None = None  # the segment in the spoken language, when the session knows it
    #: The language the segment was translated into and whether it was spoken: both can change between segments
    #: (:meth:`engine.streaming.StreamingSession.retarget`), never within one.
    tgt_lang: str = ""
    spoken: bool = False


@dataclass(frozen=True)
class Notice(StreamEvent):
    message: str  # something the person should know (bad samples replaced, rate changed)


@dataclass(frozen=True)
class StepsCoarsened(Notice):
    """The session trails the speaker and re-translates less often (or is back to its preset's pace)."""

    step_s: float  # seconds of speech between two re-translations of the open segment, from now on
