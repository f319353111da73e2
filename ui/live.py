"""Live translation state for one browser tab, and the registry that keys it by Gradio session.

The engine's :class:`StreamingSession` turns audio into events; a :class:`LiveTranslation` folds those events into
what the page shows (captions, transcript, latency, notices) and keeps what the person produced (text, timings,
translated audio) so it can be downloaded at any time, even after a disconnect mid-stream.
"""

from __future__ import annotations

import html
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.audio import SAMPLE_RATE_HZ, write_wav
from engine.streaming import (
    CommittedText,
    Notice,
    PartialText,
    SegmentEnd,
    SpeechChunk,
    StreamEvent,
    StreamingSession,
)
from engine.subtitles import Cue, to_srt, to_vtt
from safety.marking import MarkedTimeline


@dataclass
class LiveTranslation:
    """Folds a stream's events into page state. One per tab; not shared."""

    stream: StreamingSession
    #: The watermark (a :class:`safety.marking.SpeechMarker`): ``mark(audio, at_sample)`` marks 16 kHz speech that
    #: starts ``at_sample`` into its output. Speech is marked on the way out, once for the page's player (pieces
    #: back to back) and once for the saved file (pieces at their source times), each on its own timeline.
    mark: Callable[[np.ndarray, int], np.ndarray] = lambda audio, at_sample: audio
    #: Committed text in the pieces it arrived in, each with the safety flags raised on it.
    pieces: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    partial: str = ""
    segments: list[SegmentEnd] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    speech: MarkedTimeline = field(init=False)  # for translation.wav
    last_commit_s: float = 0.0
    finished: bool = False
    unplayed: list[np.ndarray] = field(default_factory=list)  # speech waiting for the previous piece to end
    playing_until: float = 0.0  # monotonic time at which the piece last handed out ends
    handed_out: int = 0  # samples handed to the player so far: the player's timeline

    def __post_init__(self) -> None:
        self.speech = MarkedTimeline(self.mark)

    def push(self, samples: np.ndarray, sample_rate_hz: int, now: float) -> np.ndarray | None:
        """Feed microphone audio; returns translated speech (16 kHz) to play now, if any.

        The page's player restarts on each new piece, so a piece is handed out only once the previous one has
        finished playing; speech that arrives meanwhile waits and goes out joined with whatever follows it.
        """
        self._apply(self.stream.push(samples, sample_rate_hz))
        if not self.unplayed or now < self.playing_until:
            return None
        return self._hand_out(now)

    def finish(self, now: float) -> np.ndarray | None:
        """End of stream: flush the engine and hand out all speech not played yet."""
        if self.finished:
            return None
        self.finished = True
        self._apply(self.stream.finish())
        return self._hand_out(now) if self.unplayed else None

    def _hand_out(self, now: float) -> np.ndarray:
        audio = self.mark(np.concatenate(self.unplayed), self.handed_out)
        self.unplayed = []
        self.handed_out += audio.shape[0]
        self.playing_until = now + audio.shape[0] / SAMPLE_RATE_HZ
        return audio

    def _apply(self, events: list[StreamEvent]) -> None:
        for event in events:
            if isinstance(event, CommittedText):
                flags = tuple(event.safety.flags) if event.safety is not None else ()
                self.pieces.append((event.text, flags))
                self.last_commit_s = event.source_time_s
            elif isinstance(event, PartialText):
                self.partial = event.text
            elif isinstance(event, SpeechChunk):
                self.speech.add(event.source_time_s, event.audio)
                self.unplayed.append(event.audio)
            elif isinstance(event, SegmentEnd):
                self.segments.append(event)
            elif isinstance(event, Notice):
                self.notices.append(event.message)

    @property
    def lag_s(self) -> float:
        """How far the committed translation trails the speaker: 0 when nothing is pending."""
        if not self.partial:
            return 0.0
        return max(0.0, self.stream.source_time_s - self.last_commit_s)

    @staticmethod
    def empty_captions_html() -> str:
        return '<div class="captions"><span class="placeholder">Translation appears here while you speak.</span></div>'

    def captions_html(self) -> str:
        committed = "".join(
            f'<span class="flagged" title="{html.escape("; ".join(flags))}">{html.escape(text)} ⚠</span>'
            if flags
            else html.escape(text)
            for text, flags in self.pieces
        ).strip()
        partial = html.escape(self.partial.strip())
        parts = [f'<span class="committed">{committed}</span>'] if committed else []
        if partial:
            parts.append(f'<span class="partial">{partial}</span>')
        if not parts:
            return self.empty_captions_html()
        body = " ".join(parts)
        flagged = [f"“{text.strip()}”: {'; '.join(flags)}" for text, flags in self.pieces if flags]
        notices = "".join(f'<div class="notice">{html.escape(n)}</div>' for n in [*flagged[-3:], *self.notices[-3:]])
        return f'<div class="captions">{body}</div>{notices}'

    def transcript_text(self) -> str:
        return " ".join(s.transcript for s in self.segments if s.transcript)

    def status_text(self) -> str:
        return f"Behind the speaker: {self.lag_s:.1f} s · heard {self.stream.source_time_s:.0f} s"

    def write_downloads(self, folder: Path) -> list[Path]:
        """Transcript, translation (text, SRT, VTT) and translated audio, as they stand now."""
        folder.mkdir(parents=True, exist_ok=True)
        written = []

        def text_file(name: str, content: str) -> None:
            (folder / name).write_text(content, encoding="utf-8")
            written.append(folder / name)

        translation = [Cue(s.start_s, s.end_s, s.text) for s in self.segments if s.text]
        transcript = [Cue(s.start_s, s.end_s, s.transcript) for s in self.segments if s.transcript]
        for stem, cues in (("translation", translation), ("transcript", transcript)):
            if cues:
                text_file(f"{stem}.txt", "\n".join(c.text for c in cues) + "\n")
                text_file(f"{stem}.srt", to_srt(cues))
                text_file(f"{stem}.vtt", to_vtt(cues))
        if self.speech:
            written.append(write_wav(folder / "translation.wav", self.speech.audio()))
        return written


class LiveRegistry:
    """Per-tab live state keyed by Gradio's session hash; entries are dropped when the tab closes (``unload``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, LiveTranslation] = {}

    def get(self, key: str, create: Callable[[], LiveTranslation]) -> LiveTranslation:
        with self._lock:
            live = self._entries.get(key)
            if live is None or live.finished:
                live = self._entries[key] = create()
            return live

    def peek(self, key: str) -> LiveTranslation | None:
        with self._lock:
            return self._entries.get(key)

    def drop(self, key: str) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
