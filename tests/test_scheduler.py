"""The shared inference scheduler: batched greedy decoding equals unbatched, fairness, bounds, errors.

The real model code runs on the tiny model (fp32); its outputs are gibberish, so the tests compare batched with
unbatched results and check invariants, never quality.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from concurrent.futures import Future

import numpy as np
import pytest

from engine.audio import SAMPLE_RATE_HZ, load_audio
from engine.batched_decoding import DecodeRow, GreedyBatch
from engine.scheduler import InferenceScheduler, SchedulerOptions
from engine.scheduler_calls import Call, Kind, Priority, SchedulerBusyError, SchedulerClosedError, pick_calls
from engine.stream_events import CommittedText
from engine.streaming import StreamingSession
from engine.tasks import Task
from engine.translator import Translator
from engine.vad import StreamingVad
from tests.conftest import espeak, recording

LENGTHS_S = (1.0, 2.3, 0.7, 3.1, 1.6, 0.9, 2.0, 1.2)
TARGETS = ("spa", "fra", "deu", "eng")


@pytest.fixture(scope="module")
def audios() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [(rng.standard_normal(int(16000 * s)) * 0.1).astype(np.float32) for s in LENGTHS_S]


@pytest.fixture
def scheduler(translator):
    with InferenceScheduler(translator, SchedulerOptions(wait_window_ms=20)) as s:
        yield s


def on_threads(fn, count: int) -> list:
    """Run ``fn(i)`` for i in range(count) on one thread each, started together; results in order."""
    results: list = [None] * count
    errors: list[BaseException] = []
    barrier = threading.Barrier(count)

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = fn(i)
        except BaseException as e:  # re-raised in the test's thread
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


def test_greedy_batch_equals_generate_per_row(translator, audios):
    """Rows of different encoder lengths, prefixes, targets, budgets and banned words, decoded together."""
    rows, expected = [], []
    for i, audio in enumerate(audios[:6]):
        encoded = translator.encode(audio)
        tgt = TARGETS[i % len(TARGETS)]
        prefix = translator.continue_text(encoded, tgt, [], 2 * i)
        unbanned = translator.continue_text(encoded, tgt, prefix, 12 + i)
        banned = [min(translator.detokenize(unbanned).split(), key=len)] if i % 2 else []
        expected.append(translator.continue_text(encoded, tgt, prefix, 12 + i, banned))
        if banned:
            assert expected[-1] != unbanned  # the ban changes the output, so the test can see it applied
        bans = tuple(tuple(b) for b in translator.banned_ids(banned))
        rows.append(DecodeRow(encoded.hidden_states[0], tgt, tuple(prefix), 12 + i, bans))
    batch = GreedyBatch(translator.loaded.model, rows)
    widths = []
    while not batch.done:
        widths.append(batch.batch_size)
        batch.step()
    specials = set(translator.loaded.tokenizer.all_special_ids)
    for i, want in enumerate(expected):
        got = batch.new_tokens(i)
        assert got[-1] in specials or len(got) == 12 + i
        while got and got[-1] in specials:  # EOS and padding, as Translator.continue_text strips them
            got.pop()
        assert got == want
    assert widths[0] == 6 and widths[-1] < 6  # finished rows left the batch


def test_greedy_batch_suppresses_tokens_as_generate_does(translator, audios):
    """A generation config's suppress list (the benchmark's full-size model suppresses most of the vocabulary) is
    applied by one cached mask and gives what ``generate`` gives row by row."""
    gen = translator.loaded.model.generation_config
    encoded = [translator.encode(audio) for audio in audios[:3]]
    free = [translator.continue_text(e, "spa", [], 10) for e in encoded]
    try:
        gen.suppress_tokens = sorted({t for tokens in free for t in tokens[:3]})
        expected = [translator.continue_text(e, "spa", [], 10) for e in encoded]
        batch = GreedyBatch(translator.loaded.model, [DecodeRow(e.hidden_states[0], "spa", (), 10) for e in encoded])
        while not batch.done:
            batch.step()
    finally:
        gen.suppress_tokens = None
    specials = set(translator.loaded.tokenizer.all_special_ids)
    for i, want in enumerate(expected):
        assert want != free[i]  # the suppress list changed the output, so the test sees it applied
        assert [t for t in batch.new_tokens(i) if t not in specials] == want


def test_rows_joining_mid_decode_equal_generate(translator, audios):
    """Continuous batching: rows that join a batch in flight (other lengths, prompts, targets) decode as alone."""
    specs = [(audios[i], TARGETS[i % 4], 3 * (i % 3), 10 + i) for i in range(5)]
    rows, expected = [], []
    for audio, tgt, prefix_n, budget in specs:
        encoded = translator.encode(audio)
        prefix = tuple(translator.continue_text(encoded, tgt, [], prefix_n))
        expected.append(translator.continue_text(encoded, tgt, prefix, budget))
        rows.append(DecodeRow(encoded.hidden_states[0], tgt, prefix, budget))
    first = GreedyBatch(translator.loaded.model, rows[:2])
    for _ in range(4):
        first.step()
    late = GreedyBatch(translator.loaded.model, rows[2:])
    late.step()
    offset = first.absorb(late)
    assert first.batch_size == 5 and late.done
    while not first.done:
        first.step()
    specials = set(translator.loaded.tokenizer.all_special_ids)
    for i, want in enumerate(expected):
        got = first.new_tokens(i if i < 2 else offset + i - 2)
        while got and got[-1] in specials:
            got.pop()
        assert got == want


def test_translate_through_scheduler_equals_translator(loaded, tiny_options, audios):
    """Eight concurrent uploads (different lengths and targets) and two text requests give, bit for bit, what the
    translator gives each alone: tokens, text, units and waveform."""
    translator = Translator(loaded, dataclasses.replace(tiny_options, max_new_tokens=24))  # short: a fast test
    items = [(audios[i], Task.S2ST, TARGETS[i % 4], None) for i in range(8)]
    items += [("Hello, how are you today?", Task.T2TT, "fra", "eng"), ("Good morning", Task.T2ST, "spa", "eng")]
    expected = [translator.translate([x], task, tgt, src_lang=src)[0] for x, task, tgt, src in items]
    with InferenceScheduler(translator, SchedulerOptions(wait_window_ms=20)) as scheduler:
        got = on_threads(lambda i: scheduler.translate([items[i][0]], *items[i][1:], key=i)[0], len(items))
    for want, have in zip(expected, got, strict=True):
        assert have.token_ids == want.token_ids and have.text == want.text
        assert have.units == want.units
        assert (have.waveform is None) == (want.waveform is None)
        if want.waveform is not None:
            assert np.array_equal(have.waveform, want.waveform)
    assert max(scheduler.batch_sizes[Kind.CONTINUE]) > 1  # the decodes really shared passes


def stream_calls(backend, audio: np.ndarray, tgt: str) -> list:
    """What a streaming session asks of its backend on a growing segment: encode each 0.5 s step, continue after
    what is committed, commit the agreed part, speak it. Returns every answer."""
    committed: list[int] = []
    answers = []
    previous: list[int] = []
    for end in range(8000, audio.shape[0] + 1, 8000):
        state = backend.encode(audio[:end])
        hypothesis = backend.continue_text(state, tgt, committed, 6)
        agreed = [a for a, b in zip(hypothesis, previous, strict=False) if a == b][:3]
        previous = hypothesis
        if agreed:
            committed += agreed
            answers.append(backend.speak(state, tgt, committed, len(agreed), 0))
        answers.append((tuple(hypothesis), backend.detokenize(committed)))
    return answers


def test_stream_alone_equals_stream_among_seven(translator, scheduler, audios):
    """A stream's answers do not depend on how many others share the passes (and equal the translator's)."""
    alone_translator = stream_calls(translator, audios[3], "spa")
    alone = stream_calls(scheduler.session("alone"), audios[3], "spa")
    crowd = on_threads(lambda i: stream_calls(scheduler.session(i), audios[3 - i % 4 + 4 * (i > 3)], "spa"), 8)
    for a, b, c in zip(alone_translator, alone, crowd[0], strict=True):
        if isinstance(a, np.ndarray):
            assert np.array_equal(a, b) and np.array_equal(b, c)
        else:
            assert a == b == c
    assert max(scheduler.batch_sizes[Kind.CONTINUE]) > 1


@pytest.fixture(scope="module")
def voices(speech_dir) -> list[np.ndarray]:
    """Eight short recordings (two utterances each, with a pause), different texts and voices."""
    texts = ["Good morning and welcome", "We speak slowly today", "This is the last one", "Thank you all"]
    out = []
    for i in range(8):
        utts = [
            load_audio(espeak(texts[(i + j) % 4], speech_dir / f"sched{i}-{j}.wav", speed_wpm=150 + 10 * i))
            for j in range(2)
        ]
        out.append(recording(utts, [0.8, 0.3])[0])
    return out


def live_stream(backend, vad_model, audio: np.ndarray) -> list[tuple[str, tuple[int, ...]]]:
    """A StreamingSession fed 0.5 s chunks; its committed text pieces and tokens."""
    session = StreamingSession(backend, StreamingVad.for_new_stream(vad_model), "cmn", preset="low")
    events = []
    for i in range(0, audio.shape[0], SAMPLE_RATE_HZ // 2):
        events += session.push(audio[i : i + SAMPLE_RATE_HZ // 2], SAMPLE_RATE_HZ)
    events += session.finish()
    return [(e.text, e.token_ids) for e in events if isinstance(e, CommittedText)]


def test_session_alone_equals_session_among_seven(translator, scheduler, vad_model, voices):
    """Issue 13's exactness test: the same stream alone and among 7 others on threads commits the same text."""
    alone = live_stream(translator, vad_model, voices[0])
    assert alone and alone == live_stream(scheduler.session("alone"), vad_model, voices[0])
    crowd = on_threads(lambda i: live_stream(scheduler.session(i), vad_model, voices[i]), 8)
    assert crowd[0] == alone
    assert max(scheduler.batch_sizes[Kind.CONTINUE]) > 1


def test_scheduler_is_a_streaming_backend_keyed_by_thread(translator, scheduler, audios):
    state = scheduler.encode(audios[0])
    assert scheduler.continue_text(state, "spa", [], 5) == translator.continue_text(state, "spa", [], 5)
    assert scheduler.detokenize([5, 6]) == translator.detokenize([5, 6])
    assert scheduler.starts_word(5) == translator.starts_word(5)


def test_queue_wait_is_reported_per_session(scheduler, audios):
    session = scheduler.session("s")
    assert session.last_timing is None and session.recent_queue_wait_s == 0.0
    session.encode(audios[0])
    timing = session.last_timing
    assert timing is not None and timing.queue_wait_s >= 0 and timing.run_s > 0 and timing.batch_rows == 1
    assert session.recent_queue_wait_s == timing.queue_wait_s


def test_batching_off_runs_every_call_alone(translator, audios):
    with InferenceScheduler(translator, SchedulerOptions(batching=False)) as s:
        on_threads(lambda i: s.translate([audios[i]], Task.S2TT, "spa", key=i), 4)
        assert set(s.batch_sizes[Kind.CONTINUE]) == {1} and set(s.batch_sizes[Kind.ENCODE]) == {1}


def test_full_queue_answers_busy_in_plain_words(translator, audios):
    options = SchedulerOptions(wait_window_ms=300, max_queued_calls=2)
    with InferenceScheduler(translator, options) as s:

        def call(i: int) -> str:
            try:
                s.session(i).encode(audios[0])
                return "done"
            except SchedulerBusyError as e:
                return str(e)

        answers = on_threads(call, 6)
    busy = [a for a in answers if a != "done"]
    assert busy and "done" in answers
    assert all(a.endswith(".") and "busy" in a for a in busy)


def test_errors_reach_their_caller_and_the_worker_carries_on(translator, scheduler, audios):
    state = scheduler.encode(audios[0])
    with pytest.raises(KeyError):
        scheduler.continue_text(state, "not-a-language", [], 4)
    assert scheduler.continue_text(state, "spa", [], 4) == translator.continue_text(state, "spa", [], 4)


def test_closed_scheduler_refuses_calls(translator, audios):
    s = InferenceScheduler(translator)
    s.close()
    with pytest.raises(SchedulerClosedError):
        s.encode(audios[0])


def _call(kind: Kind, key: str, priority: Priority, at: float) -> Call:
    return Call(kind, (), key, priority, at, Future())


def test_pick_calls_live_first_round_robin_and_one_decode_per_priority():
    a1 = _call(Kind.CONTINUE, "a", Priority.LIVE, 1.0)
    a2 = _call(Kind.CONTINUE, "a", Priority.LIVE, 2.0)
    b1 = _call(Kind.CONTINUE, "b", Priority.LIVE, 3.0)
    f1 = _call(Kind.ENCODE, "f", Priority.FILE, 0.0)
    pending = [f1, a1, a2, b1]
    assert pick_calls(pending, set(), {}, 2) == [a1, b1]  # live before the older file call; one per session first
    assert pick_calls(pending, set(), {}, 8) == [a1, b1, a2]
    assert pick_calls(pending, set(), {"a": 5, "b": 1}, 1) == [b1]  # b was served longer ago
    assert pick_calls(pending, {Priority.LIVE}, {}, 8) == [f1]  # live decodes wait for the one in flight
    assert pick_calls([], set(), {}, 8) == []


def test_live_call_overtakes_a_long_file_decode(translator, scheduler, audios):
    """A live row submitted while a file segment decodes is answered long before the file segment."""
    state = translator.encode(audios[3])
    finished: dict[str, float] = {}

    def file_decode() -> None:
        scheduler.session("file", Priority.FILE).continue_text(state, "spa", [], 400)
        finished["file"] = time.perf_counter()

    worker = threading.Thread(target=file_decode)
    worker.start()
    time.sleep(0.05)
    scheduler.session("live").continue_text(state, "fra", [], 3)
    finished["live"] = time.perf_counter()
    worker.join()
    assert finished["live"] < finished["file"]
