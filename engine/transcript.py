"""A live stream's events folded once: what the captions show and what the downloads hold come from the same data.

Every front end (the page, the desktop terminal, the WebSocket API) applies a stream's events to one
:class:`Transcript` and renders from it; masks that the judge adds later reach back into pieces already shown, so a
term split across two commits is hidden in the captions exactly as in the saved files.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from engine.audio import write_wav
from engine.masking import mask
from engine.outputs import write_cues
from engine.stream_events import CommittedText, Notice, PartialText, SegmentEnd, SpeechChunk, StreamEvent
from engine.subtitles import Cue


class SpeechTimeline(Protocol):
    """Where translated speech is laid out for the saved WAV (``safety.marking.MarkedTimeline`` marks it)."""

    def add(self, source_time_s: float, audio: np.ndarray) -> None: ...

    def audio(self) -> np.ndarray: ...

    def __bool__(self) -> bool: ...


@dataclass(frozen=True)
class Piece:
    """A committed piece as shown: masked text (with its leading space) and the safety flags raised on it."""

    text: str
    flags: tuple[str, ...]


@dataclass
class _Segment:
    texts: list[str] = field(default_factory=list)  # pieces as emitted
    flags: list[tuple[str, ...]] = field(default_factory=list)
    masks: tuple[tuple[int, int], ...] = ()
    end: SegmentEnd | None = None

    def shown(self) -> list[str]:
        """The pieces with every mask of the segment applied (masking keeps lengths, so pieces split back)."""
        joined = mask("".join(self.texts), self.masks)
        pieces, start = [], 0
        for text in self.texts:
            pieces.append(joined[start : start + len(text)])
            start += len(text)
        return pieces


class Transcript:
    """Folds one stream's events. Not thread-safe; one per stream."""

    def __init__(self, speech: SpeechTimeline | None = None, transcription: bool = False) -> None:
        """``transcription``: the stream is speech recognition, so its text is the transcript (no translation
        files are written)."""
        self._transcription = transcription
        self._segments: dict[int, _Segment] = {}
        self._speech = speech
        self.partial = ""
        self.notices: list[str] = []
        self.last_commit_s = 0.0  # source time of the latest commit

    def apply(self, events: Iterable[StreamEvent]) -> None:
        for event in events:
            if isinstance(event, CommittedText):
                segment = self._segments.setdefault(event.segment, _Segment())
                segment.texts.append(event.text)
                segment.flags.append(tuple(event.safety.flags) if event.safety is not None else ())
                segment.masks = event.masks
                self.last_commit_s = event.source_time_s
            elif isinstance(event, PartialText):
                self.partial = event.text
            elif isinstance(event, SpeechChunk) and self._speech is not None:
                self._speech.add(event.source_time_s, event.audio)
            elif isinstance(event, SegmentEnd):
                self._segments.setdefault(event.segment, _Segment()).end = event
            elif isinstance(event, Notice):
                self.notices.append(event.message)

    @property
    def pieces(self) -> list[Piece]:
        """Every committed piece so far, in order, as it must be shown."""
        return [
            Piece(text, flags)
            for segment in self._segments.values()
            for text, flags in zip(segment.shown(), segment.flags, strict=True)
        ]

    @property
    def segments(self) -> list[SegmentEnd]:
        return [s.end for s in self._segments.values() if s.end is not None]

    def translation_cues(self) -> list[Cue]:
        """Finished segments' committed text (as shown) on the source timeline."""
        cues = []
        for segment in self._segments.values():
            text = "".join(segment.shown()).strip()
            if segment.end is not None and text:
                cues.append(Cue(segment.end.start_s, segment.end.end_s, text))
        return cues

    def transcript_cues(self) -> list[Cue]:
        return [Cue(s.start_s, s.end_s, s.transcript) for s in self.segments if s.transcript]

    def transcript_text(self) -> str:
        return " ".join(s.transcript for s in self.segments if s.transcript)

    def write(self, folder: Path) -> list[Path]:
        """``translation.{txt,srt,vtt}``, ``transcript.*`` (when the spoken language was known) and
        ``translation.wav``, as they stand now."""
        written = [] if self._transcription else write_cues(folder, "translation", self.translation_cues())
        written += write_cues(folder, "transcript", self.transcript_cues())
        if self._speech:
            written.append(write_wav(folder / "translation.wav", self._speech.audio()))
        return written
