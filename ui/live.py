"""Live translation state for one browser tab, and the registry that keys it by Gradio session.

The engine's :class:`StreamingSession` turns audio into events; a :class:`LiveTranslation` folds them into one
:class:`~engine.transcript.Transcript` (what the page shows and what can be downloaded at any time, even after a
disconnect mid-stream) and hands translated speech to the page's player.
"""

from __future__ import annotations

import html
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.constants import SAMPLE_RATE_HZ
from engine.stream_events import SpeechChunk, StreamEvent
from engine.streaming import StreamingSession
from engine.tasks import Task
from engine.transcript import Transcript
from safety.marking import MarkedTimeline


@dataclass
class LiveTranslation:
    """One tab's live stream: its events folded into a :class:`~engine.transcript.Transcript` (captions and
    downloads come from it), and its speech handed to the page's player. One per tab; not shared."""

    stream: StreamingSession
    #: The watermark (a :class:`safety.marking.SpeechMarker`): ``mark(audio, at_sample)`` marks 16 kHz speech that
    #: starts ``at_sample`` into its output. Speech is marked on the way out, once for the page's player (pieces
    #: back to back) and once for the saved file (pieces at their source times), each on its own timeline.
    mark: Callable[[np.ndarray, int], np.ndarray] = lambda audio, at_sample: audio
    speech: MarkedTimeline = field(init=False)  # for translation.wav
    transcript: Transcript = field(init=False)
    finished: bool = False
    unplayed: list[np.ndarray] = field(default_factory=list)  # speech waiting for the previous piece to end
    playing_until: float = 0.0  # monotonic time at which the piece last handed out ends
    handed_out: int = 0  # samples handed to the player so far: the player's timeline

    def __post_init__(self) -> None:
        self.speech = MarkedTimeline(self.mark)
        self.transcript = Transcript(self.speech, transcription=self.stream.task is Task.ASR)

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
        self.transcript.apply(events)
        self.unplayed += [event.audio for event in events if isinstance(event, SpeechChunk)]

    @property
    def lag_s(self) -> float:
        """How far the committed translation trails the speaker: 0 when nothing is pending."""
        if not self.transcript.partial:
            return 0.0
        return max(0.0, self.stream.source_time_s - self.transcript.last_commit_s)

    @staticmethod
    def empty_captions_html() -> str:
        return '<div class="captions"><span class="placeholder">Translation appears here while you speak.</span></div>'

    def captions_html(self) -> str:
        pieces = self.transcript.pieces
        committed = "".join(
            f'<span class="flagged" title="{html.escape("; ".join(p.flags))}">{html.escape(p.text)} ⚠</span>'
            if p.flags
            else html.escape(p.text)
            for p in pieces
        ).strip()
        partial = html.escape(self.transcript.partial.strip())
        parts = [f'<span class="committed">{committed}</span>'] if committed else []
        if partial:
            parts.append(f'<span class="partial">{partial}</span>')
        if not parts:
            return self.empty_captions_html()
        body = " ".join(parts)
        flagged = [f"“{p.text.strip()}”: {'; '.join(p.flags)}" for p in pieces if p.flags]
        notices = self.transcript.notices
        notes = "".join(f'<div class="notice">{html.escape(n)}</div>' for n in [*flagged[-3:], *notices[-3:]])
        return f'<div class="captions">{body}</div>{notes}'

    def transcript_text(self) -> str:
        return self.transcript.transcript_text()

    def status_text(self) -> str:
        return f"Behind the speaker: {self.lag_s:.1f} s · heard {self.stream.source_time_s:.0f} s"

    def write_downloads(self, folder: Path) -> list[Path]:
        """Transcript, translation (text, SRT, VTT) and translated audio, as they stand now."""
        return self.transcript.write(folder)


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
