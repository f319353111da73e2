"""Rooms on the server: one speaker, many listeners, each following in their own language.

A :class:`Room` runs one :class:`engine.room.RoomSession` on its own thread (the speaker's chunks never wait for the
model) and folds each language's events once into that language's :class:`~engine.transcript.Transcript`, which
all its listeners read: two listeners of one language see the same text because it is the same object. What is
per listener is only what must be: the watermark (every listener's speech is marked with that listener's own
payload, by their own marking stream), the playback position, and their own download folder.

Privacy: a room is found only by its code (13 signs of a 31-sign alphabet drawn with ``secrets``: 64.4 bits); a
listener holds a secret key that reaches their own view and nothing else — no audio path into the room, no list of
the other listeners (the speaker sees counts per language, never who), and downloads written to a folder of their
own. Limits (rooms, listeners per room, languages per room) are answered in one plain sentence.
"""

from __future__ import annotations

import secrets
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.audio import write_wav
from engine.background_stream import BackgroundStream
from engine.outputs import write_cues
from engine.room import EventSink, RoomFullError, RoomSession
from engine.stream_events import SpeechChunk, StreamEvent
from engine.transcript import Transcript
from safety.marking import MarkedStream, MarkedTimeline, SpeechMarker
from ui.live import captions_html

#: Room codes: 31 signs, none to misread (no 0/O, 1/I/L); 13 of them carry 64.4 bits.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 13

ENDED_BY_SPEAKER = "The speaker has left: this room has ended."
ENDED_IDLE = "The room ended after a long silence from the speaker."
UNKNOWN_CODE = "No room has this code; check the link you were given."


class RoomError(Exception):
    """A request about a room that cannot be served; the message is one sentence for the person."""


def new_code() -> str:
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"


def normalise_code(code: str) -> str:
    raw = "".join(c for c in code.upper() if c.isalnum())
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}" if len(raw) == CODE_LENGTH else raw


@dataclass
class Listener:
    """One listener's own part of a room: their language, whether they hear speech, their watermark stream and
    their place in it."""

    key: str
    lang: str
    speech: bool
    marker: SpeechMarker
    player: MarkedStream = field(init=False)
    unplayed: list[np.ndarray] = field(default_factory=list)  # speech not yet handed to the page's player
    handed_out: int = 0  # samples handed out: the player's timeline

    def __post_init__(self) -> None:
        self.player = self.marker.stream()

    def take_speech(self) -> np.ndarray | None:
        """The speech waiting, marked with this listener's payload: the page's player queues it after what it is
        playing, so it is handed out as soon as it is there."""
        if not self.unplayed:
            return None
        audio = self.player.add(np.concatenate(self.unplayed), self.handed_out)
        self.unplayed = []
        self.handed_out += audio.shape[0]
        return audio


@dataclass
class _Feed:
    """One language's text and speech, shared by its listeners."""

    transcript: Transcript = field(default_factory=Transcript)
    speech: list[tuple[float, np.ndarray]] = field(default_factory=list)  # unmarked, at source times


def listening_note(code: str, lang: str) -> str:
    """What a listener's status line says while the room is live (on joining and on every poll)."""
    return f"**Room {code}** · listening in {lang}."


@dataclass(frozen=True)
class ListenerView:
    captions_html: str
    speech: np.ndarray | None
    status: str
    ended: bool


class Room:
    """One speaker's room. Thread-safe: the speaker's chunks, the room's thread and listeners' polls meet here."""

    def __init__(
        self,
        code: str,
        make_session: Callable[[EventSink], RoomSession],
        marker_for: Callable[[str], SpeechMarker],
        work_dir: Path,
        max_listeners: int,
        max_backlog_s: float,
    ) -> None:
        self.code = code
        self._marker_for = marker_for
        self._work_dir = work_dir
        self._max_listeners = max_listeners
        self._lock = threading.Lock()
        self._feeds: dict[str, _Feed] = {}
        self._listeners: dict[str, Listener] = {}
        self._session = make_session(self.on_events)
        self._runner = BackgroundStream(self._session, max_backlog_s)  # type: ignore[arg-type]  # same narrow API
        self.ended: str | None = None  # why, once it has ended
        self.notices: list[str] = []
        self.last_active = time.monotonic()

    # ---- the room's thread --------------------------------------------------------------------------------------

    def on_events(self, lang: str, events: list[StreamEvent]) -> None:
        with self._lock:
            feed = self._feeds.setdefault(lang, _Feed())
            feed.transcript.apply(events)
            speech = [(e.source_time_s, e.audio) for e in events if isinstance(e, SpeechChunk)]
            feed.speech += speech
            for listener in self._listeners.values():
                if listener.lang == lang and listener.speech:
                    listener.unplayed += [audio for _, audio in speech]

    # ---- the speaker --------------------------------------------------------------------------------------------

    def speak(self, samples: np.ndarray, sample_rate_hz: int, now: float) -> None:
        """Hand the speaker's chunk to the room's thread (never waits for the model)."""
        if self.ended is not None:
            raise RoomError(self.ended)
        self.last_active = now
        self._runner.offer(samples, sample_rate_hz)
        self.notices += [e.message for e in self._runner.take_events() if hasattr(e, "message")]

    def end(self, reason: str) -> None:
        """The speaker left (or went silent too long): the last words are translated, then everyone is told."""
        with self._lock:
            if self.ended is not None:
                return
        self._runner.finish()
        with self._lock:
            self.ended = reason

    def speaker_status(self) -> str:
        """Who listens, as counts per language (never who), and the safety flags per language."""
        with self._lock:
            counts = Counter(listener.lang for listener in self._listeners.values())
            flags = {lang: sum(1 for p in feed.transcript.pieces if p.flags) for lang, feed in self._feeds.items()}
        if not counts:
            listening = "Nobody is listening yet."
        else:
            total = sum(counts.values())
            per = ", ".join(f"{lang} {n}" for lang, n in sorted(counts.items()))
            listening = f"{total} listening: {per}."
        flagged = ", ".join(f"{lang} {n}" for lang, n in sorted(flags.items()) if n)
        safety = f" Safety flags: {flagged}." if flagged else " Safety: nothing flagged."
        notes = f" {self.notices[-1]}" if self.notices else ""
        return listening + safety + notes

    def source_transcript(self) -> str:
        """What the speaker said, from the first language's segment ends (every language has the same)."""
        with self._lock:
            feed = next(iter(self._feeds.values()), None)
            return feed.transcript.transcript_text() if feed is not None else ""

    def speaker_downloads(self) -> list[Path]:
        """The source transcript and every language's captions."""
        folder = Path(tempfile.mkdtemp(prefix="room-speaker-", dir=self._work_dir))
        with self._lock:
            feeds = dict(self._feeds)
            first = next(iter(feeds.values()), None)
            written = write_cues(folder, "transcript", first.transcript.transcript_cues()) if first else []
            for lang, feed in feeds.items():
                written += write_cues(folder, f"translation.{lang}", feed.transcript.translation_cues())
        return written

    # ---- listeners ----------------------------------------------------------------------------------------------

    def join(self, lang: str, speech: bool) -> str:
        """A new listener; returns their secret key. Raises :class:`RoomError` when the room is full or ended."""
        with self._lock:
            if self.ended is not None:
                raise RoomError(self.ended)
            if len(self._listeners) >= self._max_listeners:
                raise RoomError(f"This room is full ({self._max_listeners} listeners); try again later.")
        try:
            self._session.add_language(lang)
        except RoomFullError as e:
            raise RoomError(str(e)) from e
        key = secrets.token_urlsafe(24)
        with self._lock:
            self._feeds.setdefault(lang, _Feed())
            self._listeners[key] = Listener(key, lang, speech, self._marker_for(key))
        return key

    def leave(self, key: str) -> None:
        with self._lock:
            self._listeners.pop(key, None)

    def view(self, key: str) -> ListenerView:
        """What this listener sees and hears now: the language's captions (the whole transcript so far, so a late
        joiner reads what was said before), the tentative tail, their speech, and whether the room ended."""
        with self._lock:
            listener = self._listener(key)
            feed = self._feeds[listener.lang]
            speech = listener.take_speech() if listener.speech else None
            captions = captions_html(feed.transcript)
            ended = self.ended
        status = ended or listening_note(self.code, listener.lang)
        return ListenerView(captions, speech, status, ended is not None)

    def listener_downloads(self, key: str) -> list[Path]:
        """This listener's language as txt/SRT/VTT, and their speech (marked with their payload) as WAV."""
        folder = Path(tempfile.mkdtemp(prefix="room-listener-", dir=self._work_dir))
        with self._lock:
            listener = self._listener(key)
            feed = self._feeds[listener.lang]
            written = write_cues(folder, f"translation.{listener.lang}", feed.transcript.translation_cues())
            pieces = list(feed.speech) if listener.speech else []
        if pieces:
            timeline = MarkedTimeline(listener.marker)
            for source_time_s, audio in pieces:
                timeline.add(source_time_s, audio)
            written.append(write_wav(folder / f"translation.{listener.lang}.wav", timeline.audio()))
        return written

    def _listener(self, key: str) -> Listener:
        listener = self._listeners.get(key)
        if listener is None:
            raise RoomError("You are not in this room; open its link again.")
        return listener

    @property
    def listener_count(self) -> int:
        with self._lock:
            return len(self._listeners)


class RoomRegistry:
    """Open rooms by code, bounded; rooms idle too long are ended by :meth:`end_idle`."""

    def __init__(self, max_rooms: int, idle_timeout_s: float) -> None:
        self._max_rooms, self._idle_timeout_s = max_rooms, idle_timeout_s
        self._lock = threading.Lock()
        self._rooms: dict[str, Room] = {}

    def open(self, build: Callable[[str], Room]) -> Room:
        """A new room with a fresh code (``build(code)`` makes it). Raises :class:`RoomError` when the server
        already holds its most rooms."""
        with self._lock:
            if sum(1 for room in self._rooms.values() if room.ended is None) >= self._max_rooms:
                raise RoomError(f"The server already hosts its {self._max_rooms} rooms; try again later.")
            code = new_code()
            while code in self._rooms:
                code = new_code()
            room = self._rooms[code] = build(code)
            return room

    def find(self, code: str) -> Room:
        with self._lock:
            room = self._rooms.get(normalise_code(code or ""))
        if room is None:
            raise RoomError(UNKNOWN_CODE)
        return room

    def close(self, code: str, reason: str = ENDED_BY_SPEAKER) -> None:
        """End the room for everyone; its listeners still read why (the room stays findable until it expires)."""
        with self._lock:
            room = self._rooms.get(code)
        if room is not None:
            room.end(reason)

    def end_idle(self, now: float) -> None:
        """End rooms whose speaker sent nothing for the idle time, and forget ended rooms after as long again."""
        with self._lock:
            rooms = list(self._rooms.values())
        for room in rooms:
            if room.ended is None and now - room.last_active > self._idle_timeout_s:
                room.end(ENDED_IDLE)
            elif room.ended is not None and now - room.last_active > 2 * self._idle_timeout_s:
                with self._lock:
                    self._rooms.pop(room.code, None)

    def __len__(self) -> int:
        with self._lock:
            return sum(1 for room in self._rooms.values() if room.ended is None)
