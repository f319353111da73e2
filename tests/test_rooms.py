"""Rooms in the engine: one speaker, many languages, on the tiny model with real speech.

A room's language must commit exactly what a solo session into that language commits for the same audio, while the
VAD and the speech encoder run once per window and step for the whole room, and a decode two languages make alike
runs once (counted on a backend that records its calls)."""

from __future__ import annotations

import threading
from collections import Counter, defaultdict

import numpy as np
import pytest

from engine.audio import SAMPLE_RATE_HZ, load_audio
from engine.room import RoomFullError, RoomSession, SharedSteps
from engine.stream_events import CommittedText, SegmentEnd, SpeechChunk, StreamEvent
from engine.streaming import StreamingSession
from engine.vad import StreamingVad
from tests.conftest import espeak, recording

CHUNK_S = 0.25


@pytest.fixture(scope="module")
def speech(speech_dir) -> np.ndarray:
    """About 7 s at 48 kHz (the browser's rate): two utterances and a pause."""
    from scipy.signal import resample_poly

    texts = ["Good morning and welcome to the meeting", "We are speaking slowly so every word is clear"]
    utts = [load_audio(espeak(t, speech_dir / f"room{i}.wav", speed_wpm=170)) for i, t in enumerate(texts)]
    audio, _ = recording(utts, [1.0, 0.6])
    return resample_poly(audio, 3, 1).astype(np.float32)


RATE_HZ = 3 * SAMPLE_RATE_HZ


def chunks(audio: np.ndarray):
    step = int(CHUNK_S * RATE_HZ)
    return [audio[i : i + step] for i in range(0, audio.shape[0], step)]


def solo(session: StreamingSession, audio: np.ndarray) -> list[StreamEvent]:
    events = []
    for chunk in chunks(audio):
        events += session.push(chunk, RATE_HZ)
    return events + session.finish()


def in_room(room: RoomSession, audio: np.ndarray, sink: dict, join_at: dict | None = None) -> None:
    for i, chunk in enumerate(chunks(audio)):
        for lang in (join_at or {}).get(i, ()):
            room.add_language(lang)
        room.push(chunk, RATE_HZ)
    room.finish()


def collector() -> tuple[dict[str, list[StreamEvent]], callable]:
    got: dict[str, list[StreamEvent]] = defaultdict(list)
    return got, lambda lang, events: got[lang].extend(events)


def commits(events) -> list[tuple[int, ...]]:
    return [e.token_ids for e in events if isinstance(e, CommittedText)]


def test_each_language_commits_what_a_solo_session_commits(pipeline, speech):
    got, sink = collector()
    room = pipeline.room(sink, src_lang="eng", preset="low")
    for lang in ("spa", "fra", "cmn"):
        room.add_language(lang)
    in_room(room, speech, got)
    assert set(got) == {"spa", "fra", "cmn"}
    texts = {}
    for lang in ("spa", "fra", "cmn"):
        alone = solo(pipeline.stream(lang, task="s2st", preset="low", src_lang="eng"), speech)
        assert commits(got[lang]) == commits(alone) and commits(alone)
        ends = [(e.start_s, e.end_s, e.text, e.transcript) for e in got[lang] if isinstance(e, SegmentEnd)]
        assert ends == [(e.start_s, e.end_s, e.text, e.transcript) for e in alone if isinstance(e, SegmentEnd)]
        assert len(ends) == 2
        speech_room = [e.audio for e in got[lang] if isinstance(e, SpeechChunk)]
        speech_alone = [e.audio for e in alone if isinstance(e, SpeechChunk)]
        assert len(speech_room) == len(speech_alone) > 0
        assert all(np.array_equal(a, b) for a, b in zip(speech_room, speech_alone, strict=True))
        texts[lang] = " ".join(e[2] for e in ends)
    assert len(set(texts.values())) == 3  # three languages, three different texts


class CountingBackend:
    """The translator, with every model call counted by kind (and decodes by target language)."""

    def __init__(self, translator) -> None:
        self._translator = translator
        self.calls: Counter = Counter()
        self._lock = threading.Lock()

    def _count(self, key) -> None:
        with self._lock:
            self.calls[key] += 1

    def encode(self, audio):
        self._count("encode")
        return self._translator.encode(audio)

    def continue_text(self, state, tgt_lang, prefix, max_new_tokens, banned_words=()):
        self._count(("decode", tgt_lang))
        return self._translator.continue_text(state, tgt_lang, prefix, max_new_tokens, banned_words)

    def speak(self, state, tgt_lang, committed, new_count, speaker_id):
        self._count("speak")
        return self._translator.speak(state, tgt_lang, committed, new_count, speaker_id)

    def starts_word(self, token_id):
        return self._translator.starts_word(token_id)

    def detokenize(self, tokens):
        return self._translator.detokenize(tokens)


class CountingVad:
    def __init__(self, vad_model) -> None:
        self._vad = StreamingVad.for_new_stream(vad_model)
        self.calls = 0

    def probability(self, window):
        self.calls += 1
        return self._vad.probability(window)


def plain_session(lang, vad, backend) -> StreamingSession:
    return StreamingSession(backend, vad, lang, task="s2tt", preset="low", src_lang="eng")


def test_encoder_and_vad_run_once_per_step_and_shared_decodes_once(translator, vad_model, speech):
    alone: dict[str, Counter] = {}
    solo_vad = CountingVad(vad_model)
    for lang in ("spa", "fra"):
        backend, vad = CountingBackend(translator), CountingVad(vad_model)
        events = solo(plain_session(lang, vad, backend), speech)
        alone[lang] = backend.calls
        segments = sum(isinstance(e, SegmentEnd) for e in events)
        solo_vad = vad
    backend, vad = CountingBackend(translator), CountingVad(vad_model)
    got, sink = collector()
    room = RoomSession(plain_session, backend, vad, sink, max_languages=3)
    for lang in ("spa", "fra", "spa"):  # a language two listeners share is one decode
        room.add_language(lang)
    assert room.languages == ["spa", "fra"]
    in_room(room, speech, got)
    assert backend.calls["encode"] == alone["spa"]["encode"] == alone["fra"]["encode"] > 0
    assert vad.calls == solo_vad.calls  # one VAD pass per window for the whole room
    assert backend.calls[("decode", "spa")] == alone["spa"][("decode", "spa")]
    assert backend.calls[("decode", "fra")] == alone["fra"][("decode", "fra")]
    # the source transcript at each segment's end is asked by both languages and decoded once
    assert segments == 2
    assert alone["spa"][("decode", "eng")] == alone["fra"][("decode", "eng")] == segments
    assert backend.calls[("decode", "eng")] == segments


def test_a_late_language_starts_on_the_room_clock(translator, vad_model, speech):
    got, sink = collector()
    room = RoomSession(plain_session, translator, StreamingVad.for_new_stream(vad_model), sink)
    room.add_language("spa")
    join = len(chunks(speech)) // 2
    in_room(room, speech, got, join_at={join: ["fra"]})
    joined_s = join * CHUNK_S
    early = [e for e in got["spa"] if isinstance(e, SegmentEnd)]
    late = [e for e in got["fra"] if isinstance(e, SegmentEnd)]
    assert len(early) == 2 and len(late) >= 1
    assert all(e.start_s >= joined_s - 0.05 for e in late)  # nothing before it joined, on the room's clock
    assert abs(late[-1].end_s - early[-1].end_s) < 0.1  # both close the last utterance at the same room time
    assert all(e.source_time_s >= joined_s for e in got["fra"])


def test_languages_are_bounded_in_plain_words(translator, vad_model):
    room = RoomSession(plain_session, translator, StreamingVad.for_new_stream(vad_model), lambda *_: None,
                       max_languages=2)  # fmt: skip
    room.add_language("spa")
    room.add_language("fra")
    with pytest.raises(RoomFullError, match="already has its 2 languages"):
        room.add_language("deu")
    room.add_language("fra")  # one already present is still welcome
    assert room.languages == ["spa", "fra"]


def test_shared_steps_run_a_call_once_for_concurrent_askers_and_retry_after_failure(translator):
    audio = (np.random.default_rng(0).standard_normal(16000) * 0.1).astype(np.float32)
    backend = CountingBackend(translator)
    shared = SharedSteps(backend)
    barrier = threading.Barrier(4)
    states = [None] * 4

    def ask(i: int) -> None:
        barrier.wait()
        states[i] = shared.encode(audio.copy())

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert backend.calls["encode"] == 1 and all(s is states[0] for s in states)
    first = shared.continue_text(states[0], "spa", (), 6)
    assert shared.continue_text(states[0], "spa", (), 6) == first
    assert backend.calls[("decode", "spa")] == 1
    shared.continue_text(states[0], "spa", (), 5)  # another budget is another decode
    assert backend.calls[("decode", "spa")] == 2

    class Failing(CountingBackend):
        def encode(self, audio):
            super().encode(audio)
            raise RuntimeError("boom")

    failing = SharedSteps(Failing(translator))
    for _ in range(2):
        with pytest.raises(RuntimeError, match="boom"):
            failing.encode(audio)
    assert failing._backend.calls["encode"] == 2


# ---- the server's rooms (ui.rooms): limits, codes, privacy, per-listener watermark -------------------------------


class QuietRoomSession:
    """What a Room needs of a RoomSession, without a model (the room's languages are recorded)."""

    def __init__(self, max_languages: int = 2) -> None:
        self.languages: list[str] = []
        self.source_time_s, self._max = 0.0, max_languages

    def add_language(self, lang):
        if lang not in self.languages:
            if len(self.languages) >= self._max:
                raise RoomFullError(f"This room already has its {self._max} languages; pick one of those.")
            self.languages.append(lang)

    def check(self, samples, rate):
        pass

    def push(self, samples, rate):
        return []

    def finish(self):
        return []


def quiet_room(pipeline, tmp_path, code="ROOM", max_listeners=3):
    from ui.rooms import Room

    return Room(code, lambda sink: QuietRoomSession(), pipeline.marker, tmp_path, max_listeners, 10.0)


def test_rooms_and_listeners_are_bounded_and_codes_unguessable(pipeline, tmp_path):
    from ui.rooms import CODE_ALPHABET, CODE_LENGTH, ENDED_IDLE, RoomError, RoomRegistry, new_code, normalise_code

    assert CODE_LENGTH * np.log2(len(set(CODE_ALPHABET))) >= 64
    codes = {new_code() for _ in range(200)}
    assert len(codes) == 200 and all(len(c.replace("-", "")) == CODE_LENGTH for c in codes)
    code = next(iter(codes))
    assert normalise_code(code.lower().replace("-", " ")) == code

    registry = RoomRegistry(max_rooms=1, idle_timeout_s=60)
    room = registry.open(lambda c: quiet_room(pipeline, tmp_path, c))
    assert registry.find(room.code.lower()) is room
    with pytest.raises(RoomError, match="already hosts its 1 rooms"):
        registry.open(lambda c: quiet_room(pipeline, tmp_path, c))
    with pytest.raises(RoomError, match="No room has this code"):
        registry.find("ABCD-EFGH-JKMNP")
    keys = [room.join("spa", True), room.join("fra", False)]
    with pytest.raises(RoomError, match="languages"):
        room.join("deu", True)  # the room's language bound, in words
    room.join("spa", False)
    with pytest.raises(RoomError, match="full"):
        room.join("spa", True)
    assert "3 listening: fra 1, spa 2" in room.speaker_status()
    other = quiet_room(pipeline, tmp_path, "OTHER")
    with pytest.raises(RoomError, match="not in this room"):
        other.view(keys[0])  # a listener's key reaches their own room only
    registry.end_idle(room.last_active + 61)
    assert room.ended == ENDED_IDLE and len(registry) == 0
    assert room.view(keys[0]).ended and room.view(keys[0]).status == ENDED_IDLE
    with pytest.raises(RoomError, match="silence"):
        room.join("spa", True)
    registry.open(lambda c: quiet_room(pipeline, tmp_path, c))  # an ended room no longer counts


def test_every_listener_hears_their_own_watermark(pipeline, tmp_path):
    from engine.stream_events import SpeechChunk
    from safety.marking import session_id

    room = quiet_room(pipeline, tmp_path)
    keys = [room.join("spa", True), room.join("spa", True)]
    t = np.arange(3 * SAMPLE_RATE_HZ) / SAMPLE_RATE_HZ
    voice = (0.2 * np.sin(2 * np.pi * 220 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    voice += np.random.default_rng(0).normal(0, 0.02, voice.shape).astype(np.float32)
    room.on_events("spa", [SpeechChunk(segment=0, source_time_s=0.5, emitted_at=0.0, compute_s=0.0, audio=voice)])
    played = [room.view(k).speech for k in keys]
    assert all(p is not None and p.shape == voice.shape for p in played) and not np.array_equal(*played)
    payloads = []
    for key in keys:
        [wav] = [p for p in room.listener_downloads(key) if p.suffix == ".wav"]
        found = pipeline.watermarker.detect(load_audio(wav), SAMPLE_RATE_HZ)
        assert found.detected and found.payload & 0xFFFF == session_id(key)
        payloads.append(found.payload)
    assert payloads[0] != payloads[1]
