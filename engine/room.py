"""A room: one speaker's live stream translated into every language its listeners chose, at the cost of languages.

Why a room is not one solo session per listener: the expensive parts of a step that do not depend on the target
language — cleaning and windowing the audio, Silero VAD, the speech encoder — are done once for the whole room, and
listeners who share a language share one decode. Each language present gets one ordinary
:class:`~engine.streaming.StreamingSession` (its own decode, commit policy, judge and speech); what makes it cheap is
what the sessions are given:

- the room cuts the speaker's audio into 16 kHz windows once and hands every session the same windows (their own
  input stage then passes them through unchanged);
- :class:`SharedVad` gives every session a tap on one VAD pass per window, computed before the sessions step;
- :class:`SharedSteps` is the backend all sessions call: every session asks for the same segment at the same step,
  and the first ask runs the encoder while the others wait for its answer; a decode that two languages make alike
  (the source transcript at a segment's end) runs once too.

The sessions of one step run on parallel threads, so their decodes reach the scheduler together and are batched
into one pass. Because each language is a real streaming session fed the same windows and encoder output, a
listener reads exactly what a solo session into that language commits for the same audio.

A language added while the speaker talks starts at that point of the stream (its times are shifted onto the room's
clock); it stays decoded until the room ends, so the speaker's downloads hold every language that was present.
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from engine.backend import EncoderState, StreamingBackend
from engine.constants import SAMPLE_RATE_HZ, WINDOW_SAMPLES
from engine.segmenter import SpeechProbability
from engine.stream_events import Notice, SegmentEnd, StreamEvent
from engine.stream_input import LiveInputLimits, StreamInput
from engine.streaming import StreamingSession

#: Builds one language's session from the room's shared VAD tap and backend.
SessionFactory = Callable[[str, SpeechProbability, StreamingBackend], StreamingSession]
#: Receives each language's events after every push, on the room's thread.
EventSink = Callable[[str, list[StreamEvent]], None]

#: Encoder outputs kept for sessions that have not asked yet (one step needs one; a cut segment two).
KEPT_ENCODINGS = 4
#: Decodes kept for another language's identical ask (transcripts at a segment end, asked once per language).
KEPT_DECODES = 64


class RoomFullError(Exception):
    """The room already decodes its most languages; the sentence is for the person who asked."""


class SharedVad:
    """One Silero pass per window for all the room's sessions: the room computes each window's probability once
    (:meth:`compute`) before the sessions step, and each session reads them in order through its own tap."""

    def __init__(self, vad: SpeechProbability) -> None:
        self._vad = vad
        self._probabilities: dict[int, float] = {}  # window index since the stream began → probability
        self.windows_seen = 0

    def compute(self, windows: Sequence[np.ndarray]) -> None:
        for window in windows:
            self._probabilities[self.windows_seen] = self._vad.probability(window)
            self.windows_seen += 1

    def tap(self) -> SpeechProbability:
        """A reader for a session that starts now (at the next window)."""
        return _VadTap(self, self.windows_seen)

    def forget_before(self, index: int) -> None:
        for old in [i for i in self._probabilities if i < index]:
            del self._probabilities[old]

    def at(self, index: int) -> float:
        return self._probabilities[index]


class _VadTap:
    def __init__(self, shared: SharedVad, start: int) -> None:
        self._shared, self.next_index = shared, start

    def probability(self, window: np.ndarray) -> float:
        probability = self._shared.at(self.next_index)
        self.next_index += 1
        return probability


class SharedSteps:
    """:class:`~engine.backend.StreamingBackend` over another one, for the sessions of one room: an encode or decode
    asked for again with the same inputs (by another language of the same step) is answered from the first ask.
    Thread-safe; the first asker runs the call, the others wait for its result."""

    def __init__(self, backend: StreamingBackend) -> None:
        self._backend = backend
        self._lock = threading.Lock()
        self._encodes: OrderedDict[Hashable, Future] = OrderedDict()
        self._decodes: OrderedDict[Hashable, tuple[EncoderState, Future]] = OrderedDict()
        self.encodes = 0  # encoder passes actually run: the room's steps (benchmarks read it)

    def encode(self, audio: np.ndarray) -> EncoderState:
        audio = np.ascontiguousarray(audio, dtype=np.float32)
        key = (audio.shape[0], hashlib.blake2b(audio.tobytes(), digest_size=16).digest())

        def run() -> EncoderState:
            self.encodes += 1  # only the first asker runs this
            return self._backend.encode(audio)

        return self._once(self._encodes, key, KEPT_ENCODINGS, None, run)

    def continue_text(
        self,
        state: EncoderState,
        tgt_lang: str,
        prefix: Sequence[int],
        max_new_tokens: int,
        banned_words: Sequence[str] = (),
    ) -> list[int]:
        # Keyed by the state object itself (kept alive by the entry, so its id is not reused while cached).
        key = (id(state), tgt_lang, tuple(prefix), max_new_tokens, tuple(banned_words))
        tokens = self._once(
            self._decodes,
            key,
            KEPT_DECODES,
            state,
            lambda: self._backend.continue_text(state, tgt_lang, prefix, max_new_tokens, banned_words),
        )
        return list(tokens)

    def speak(
        self, state: EncoderState, tgt_lang: str, committed: Sequence[int], new_count: int, speaker_id: int | None
    ) -> np.ndarray:
        return self._backend.speak(state, tgt_lang, committed, new_count, speaker_id)

    def starts_word(self, token_id: int) -> bool:
        return self._backend.starts_word(token_id)

    def detokenize(self, tokens: Sequence[int]) -> str:
        return self._backend.detokenize(tokens)

    def _once(self, cache: OrderedDict, key: Hashable, keep: int, state: EncoderState | None, work: Callable):
        with self._lock:
            entry = cache.get(key)
            owner = entry is None
            if owner:
                future: Future = Future()
                cache[key] = future if state is None else (state, future)
                while len(cache) > keep:
                    cache.popitem(last=False)
            else:
                future = entry if state is None else entry[1]
        if owner:
            try:
                future.set_result(work())
            except BaseException as e:
                future.set_exception(e)
                with self._lock:
                    cache.pop(key, None)  # a failure is not remembered: the next ask tries again
                raise
        return future.result()


@dataclasses.dataclass
class _Language:
    session: StreamingSession
    vad: _VadTap
    offset_s: float  # room time at which this language's session started


class RoomSession:
    """One speaker's stream, translated into each language added; not thread-safe except :meth:`add_language`
    (listeners join from their own threads). Push from one thread only, like a :class:`StreamingSession`."""

    def __init__(
        self,
        make_session: SessionFactory,
        backend: StreamingBackend,
        vad: SpeechProbability,
        on_events: EventSink,
        limits: LiveInputLimits | None = None,
        max_languages: int = 8,
    ) -> None:
        if max_languages < 1:
            raise ValueError("max_languages must be at least 1")
        self._make_session = make_session
        self._backend = SharedSteps(backend)
        self._vad = SharedVad(vad)
        self._on_events = on_events
        self._input = StreamInput(limits)
        self._max_languages = max_languages
        self._lock = threading.Lock()
        self._languages: dict[str, _Language] = {}
        self._joining: list[str] = []
        self._pool = ThreadPoolExecutor(max_languages, thread_name_prefix="room-language")
        self._compute_s = 0.0
        self._finished = False

    # ---- languages ----------------------------------------------------------------------------------------------

    def add_language(self, tgt_lang: str) -> None:
        """Decode ``tgt_lang`` from the next push on; a language already present is not added twice. Raises
        :class:`RoomFullError` beyond ``max_languages``."""
        with self._lock:
            if tgt_lang in self._languages or tgt_lang in self._joining:
                return
            if len(self._languages) + len(self._joining) >= self._max_languages:
                raise RoomFullError(f"This room already has its {self._max_languages} languages; pick one of those.")
            self._joining.append(tgt_lang)

    @property
    def languages(self) -> list[str]:
        with self._lock:
            return [*self._languages, *self._joining]

    def _admit(self) -> None:
        with self._lock:
            joining, self._joining = self._joining, []
        for lang in joining:
            session = self._make_session(lang, tap := self._vad.tap(), self._backend)
            self._languages[lang] = _Language(session, tap, self.source_time_s)

    # ---- the stream ---------------------------------------------------------------------------------------------

    def check(self, samples: np.ndarray, sample_rate_hz: int) -> None:
        """Raise :class:`~engine.audio.AudioError` when ``push`` would refuse this chunk."""
        self._input.check(samples, sample_rate_hz)

    def push(self, samples: np.ndarray, sample_rate_hz: int) -> list[StreamEvent]:
        """Feed the speaker's chunk; every language's events go to ``on_events``. Returns the speaker's notices."""
        if self._finished:
            raise RuntimeError("this room is finished")
        started = time.perf_counter()
        try:
            windows = self._input.push(samples, sample_rate_hz)
            self._step(windows, lambda s, audio: s.push(audio, SAMPLE_RATE_HZ))
            return [self._notice(m) for m in self._input.take_notices()]
        finally:
            self._compute_s += time.perf_counter() - started

    def finish(self) -> list[StreamEvent]:
        """The speaker is done: every language translates and commits what is left. Again: nothing."""
        if self._finished:
            return []
        self._finished = True
        started = time.perf_counter()
        try:
            windows = self._input.flush()
            self._step(windows, lambda s, audio: s.push(audio, SAMPLE_RATE_HZ) + s.finish())
        finally:
            self._compute_s += time.perf_counter() - started
            self._pool.shutdown(wait=False)
        return []

    @property
    def source_time_s(self) -> float:
        return self._vad.windows_seen * WINDOW_SAMPLES / SAMPLE_RATE_HZ

    @property
    def compute_s(self) -> float:
        return self._compute_s

    @property
    def steps(self) -> int:
        """Encoder passes run so far: one per step of the room, whatever the number of languages."""
        return self._backend.encodes

    def _step(self, windows: list[np.ndarray], run: Callable[[StreamingSession, np.ndarray], list[StreamEvent]]):
        self._admit()
        languages = dict(self._languages)
        if not languages:
            self._vad.compute(windows)  # nobody listens yet: keep the clock and the VAD's state moving
            self._vad.forget_before(self._vad.windows_seen)
            return
        audio = np.concatenate(windows) if windows else np.zeros(0, dtype=np.float32)
        self._vad.compute(windows)
        futures = {lang: self._pool.submit(run, entry.session, audio) for lang, entry in languages.items()}
        for lang, future in futures.items():  # in the order languages joined; an error is the room's error
            events = future.result()
            offset = languages[lang].offset_s
            self._on_events(lang, [_shifted(e, offset) for e in events] if offset else events)
        self._vad.forget_before(min(entry.vad.next_index for entry in languages.values()))

    def _notice(self, message: str) -> Notice:
        return Notice(segment=-1, source_time_s=self.source_time_s, emitted_at=time.time(), compute_s=self._compute_s,
                      message=message)  # fmt: skip


def _shifted(event: StreamEvent, offset_s: float) -> StreamEvent:
    """A late language's event on the room's clock."""
    if isinstance(event, SegmentEnd):
        return dataclasses.replace(
            event, source_time_s=event.source_time_s + offset_s, start_s=event.start_s + offset_s,
            end_s=event.end_s + offset_s,
        )  # fmt: skip
    return dataclasses.replace(event, source_time_s=event.source_time_s + offset_s)
