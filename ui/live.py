"""Live translation state for one browser tab, and the registry that keys it by Gradio session.

The engine's :class:`StreamingSession` turns audio into events; a :class:`LiveTranslation` folds them into one
:class:`~engine.transcript.Transcript` (what the page shows and what can be downloaded at any time, even after a
disconnect mid-stream) and hands translated speech to the page's player.
"""

from __future__ import annotations

import html
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.background_stream import BackgroundStream
from engine.constants import SAMPLE_RATE_HZ
from engine.stream_events import StreamEvent
from engine.streaming import StreamingSession
from engine.tasks import Task
from engine.transcript import Transcript
from safety.marking import MarkedTimeline, SpeechMarker


@dataclass
class LiveTranslation:
    """One tab's live stream: its events folded into a :class:`~engine.transcript.Transcript` (captions and
    downloads come from it), and its speech handed to the page's player. One per tab; not shared."""

    stream: StreamingSession
    #: Audio allowed to wait for the model, in seconds; beyond it, audio is skipped and the person is told.
    max_backlog_s: float = 10.0
    #: The session's watermark. Speech is marked once, on the saved file's timeline (pieces at their source times);
    #: the page's player plays that same timeline, so what is heard is what is downloaded.
    marker: SpeechMarker | None = None
    speech: MarkedTimeline = field(init=False)  # translation.wav, and what the player plays
    transcript: Transcript = field(init=False)
    runner: BackgroundStream = field(init=False)  # the session runs on its own thread: chunks never wait for it
    finished: bool = False
    handed_out: int = 0  # samples of the timeline handed to the player so far
    last_active: float = field(default_factory=time.monotonic)  # when audio last arrived (monotonic seconds)

    def __post_init__(self) -> None:
        self.speech = MarkedTimeline(self.marker if self.marker is not None else _unmarked)
        self.transcript = Transcript(self.speech, transcription=self.stream.task is Task.ASR)
        self.runner = BackgroundStream(self.stream, self.max_backlog_s)

    def push(self, samples: np.ndarray, sample_rate_hz: int, now: float) -> np.ndarray | None:
        """Hand microphone audio to the stream (it is translated on the stream's own thread) and return the translated
        speech (16 kHz) laid out since the last call, if any.

        The page queues what it gets and plays it back to back, so the player's timeline is the saved file's:
        each piece at its source time or right after the previous one, with the pauses between them.
        """
        self.last_active = now
        self.runner.offer(samples, sample_rate_hz)
        self._apply(self.runner.take_events())
        return self._hand_out()

    def refresh(self) -> None:
        """Take the events the stream produced since the last chunk (between chunks, e.g. on a timer)."""
        self._apply(self.runner.take_events())

    def finish(self) -> np.ndarray | None:
        """End of stream: translate what is still waiting, flush the engine and hand out all speech not played."""
        if self.finished:
            return None
        self.finished = True
        self._apply(self.runner.finish())
        return self._hand_out()

    def _hand_out(self) -> np.ndarray | None:
        timeline = self.speech.audio()
        if timeline.shape[0] <= self.handed_out:
            return None
        audio = timeline[self.handed_out :]
        self.handed_out = timeline.shape[0]
        return audio

    def _apply(self, events: list[StreamEvent]) -> None:
        self.transcript.apply(events)

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
        return captions_html(self.transcript)

    def transcript_text(self) -> str:
        return self.transcript.transcript_text()

    def status_text(self) -> str:
        runner = self.runner
        text = f"Behind the speaker: {self.lag_s + runner.backlog_s:.1f} s · heard {runner.received_s:.0f} s"
        if runner.skipped_s:
            text += f" · {runner.skipped_s:.1f} s could not be translated in time"
        return text

    def write_downloads(self, folder: Path) -> list[Path]:
        """Transcript, translation (text, SRT, VTT) and translated audio, as they stand now."""
        return self.transcript.write(folder)


def captions_html(transcript: Transcript) -> str:
    """Committed captions (flagged pieces marked, their flags and the latest notices under them), then the
    tentative tail in grey: what a live tab or a room's listener is shown."""
    pieces = transcript.pieces
    committed = "".join(
        f'<span class="flagged" title="{html.escape("; ".join(p.flags))}">{html.escape(p.text)} ⚠</span>'
        if p.flags
        else html.escape(p.text)
        for p in pieces
    ).strip()
    partial = html.escape(transcript.partial.strip())
    parts = [f'<span class="committed">{committed}</span>'] if committed else []
    if partial:
        parts.append(f'<span class="partial">{partial}</span>')
    if not parts:
        return LiveTranslation.empty_captions_html()
    body = " ".join(parts)
    flagged = [f"“{p.text.strip()}”: {'; '.join(p.flags)}" for p in pieces if p.flags]
    notices = transcript.notices
    notes = "".join(f'<div class="notice">{html.escape(n)}</div>' for n in [*flagged[-3:], *notices[-3:]])
    return f'<div class="captions">{body}</div>{notes}'


def as_player_audio(audio: np.ndarray | None) -> tuple[int, np.ndarray] | None:
    """16 kHz float speech → what a Gradio audio output plays (int16); None for nothing, which the page's player
    (ui/page.js) ignores."""
    if audio is None or audio.size == 0:
        return None
    return SAMPLE_RATE_HZ, (np.clip(audio, -1.0, 1.0) * 32767).astype(np.int16)


def _unmarked(audio: np.ndarray, at_sample: int) -> np.ndarray:
    """Only for a stream built without a marker (tests of layout and playback); the app always passes one."""
    return audio


class LiveRegistry:
    """Per-tab live state, keyed by a secret the server issues to that tab's connection (held in its ``gr.State``,
    which never leaves the server): knowing a tab's public session hash is not enough to reach its captions or
    downloads. Entries are dropped when the tab closes (``drop_owner`` with the session hash) or is cleared, and by
    housekeeping once stopped and quiet (``drop_finished``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, LiveTranslation] = {}
        self._owners: dict[str, set[str]] = {}  # session hash → keys issued to it
        self._owner_of: dict[str, str] = {}  # key → its session hash, so a dropped key leaves no trace

    @staticmethod
    def new_key() -> str:
        return secrets.token_urlsafe(24)

    def get(self, key: str, create: Callable[[], LiveTranslation], owner: str | None = None) -> LiveTranslation:
        with self._lock:
            live = self._entries.get(key)
            if live is None or live.finished:
                live = self._entries[key] = create()
                if owner is not None:
                    self._owners.setdefault(owner, set()).add(key)
                    self._owner_of[key] = owner
            return live

    def peek(self, key: str | None) -> LiveTranslation | None:
        with self._lock:
            return self._entries.get(key) if key else None

    def drop(self, key: str | None) -> None:
        with self._lock:
            self._remove(key)

    def idle(self, since: float) -> list[tuple[str, LiveTranslation]]:
        """Unfinished streams whose audio last arrived before ``since`` (monotonic seconds)."""
        with self._lock:
            return [(k, v) for k, v in self._entries.items() if not v.finished and v.last_active < since]

    def drop_finished(self, since: float) -> int:
        """Drop stopped streams whose audio last arrived before ``since``; returns how many. Their downloads were
        handed out at Stop; kept, each would hold its model state (a VAD network, decoder caches) for as long as the
        tab stays open, and for ever for an API client, which never sends the heartbeat whose end closes a tab."""
        with self._lock:
            done = [k for k, v in self._entries.items() if v.finished and v.last_active < since]
            for key in done:
                self._remove(key)
            return len(done)

    def drop_owner(self, owner: str) -> None:
        with self._lock:
            for key in list(self._owners.get(owner, ())):
                self._remove(key)

    def _remove(self, key: str | None) -> None:
        """Under the lock: forget ``key`` everywhere."""
        self._entries.pop(key, None)
        owner = self._owner_of.pop(key, None) if key else None
        if owner is not None:
            keys = self._owners[owner]
            keys.discard(key)
            if not keys:
                del self._owners[owner]

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
