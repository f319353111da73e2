"""Audio handed to a live stream is never lost without a word: it is translated, or counted as skipped and
announced, while the sender never waits for the model."""

import time

import numpy as np
import pytest

from engine.audio import AudioError
from engine.background_stream import BackgroundStream
from engine.stream_events import Notice
from engine.stream_input import LiveInputLimits

RATE = 16_000


class SlowSession:
    """A session whose every push takes ``push_s`` (a loaded model); it counts what it was given."""

    def __init__(self, push_s: float) -> None:
        self.push_s = push_s
        self.samples = 0
        self.nonzero = 0
        self.finished = False
        self.lags_s: list[float] = []  # what the stream told the session before each push
        self._limits = LiveInputLimits()

    def pace(self, lag_s: float) -> None:
        self.lags_s.append(lag_s)

    def check(self, samples, rate) -> None:
        self._limits.check(np.asarray(samples), rate)

    def push(self, samples, rate):
        time.sleep(self.push_s)
        self.samples += samples.shape[0]
        self.nonzero += int(np.count_nonzero(samples))
        return []

    def finish(self):
        self.finished = True
        return []

    @property
    def source_time_s(self) -> float:
        return self.samples / RATE


def test_offer_never_waits_and_skipped_audio_is_counted_and_announced():
    session = SlowSession(push_s=0.2)
    stream = BackgroundStream(session, max_backlog_s=2.0)
    chunk = np.ones(RATE // 2, dtype=np.float32)  # 0.5 s, ten times faster than real time
    started = time.perf_counter()
    for _ in range(40):
        stream.offer(chunk, RATE)
        time.sleep(0.05)
    assert time.perf_counter() - started < 40 * 0.05 + 1.0  # the sender never waited for the model
    events = stream.take_events() + stream.finish(timeout_s=30)
    assert session.finished and stream.received_s == pytest.approx(20.0)
    assert session.samples == 40 * RATE // 2  # every sample reached the session: translated, or silence for it
    translated_s = session.nonzero / RATE
    assert stream.skipped_s > 0 and translated_s + stream.skipped_s == pytest.approx(20.0)
    notices = [e.message for e in events if isinstance(e, Notice)]
    assert notices and "could not be translated in time" in notices[0]


def test_nothing_is_skipped_when_the_model_keeps_up():
    session = SlowSession(push_s=0.0)
    stream = BackgroundStream(session, max_backlog_s=2.0)
    for _ in range(10):
        stream.offer(np.ones(RATE // 2, dtype=np.float32), RATE)
        time.sleep(0.01)
    events = stream.finish(timeout_s=10)
    assert stream.skipped_s == 0 and session.nonzero == 10 * RATE // 2
    assert not [e for e in events if isinstance(e, Notice)]


def test_a_refused_chunk_is_reported_to_the_sender_and_the_stream_goes_on():
    session = SlowSession(push_s=0.0)
    stream = BackgroundStream(session)
    with pytest.raises(AudioError, match="sample rate"):
        stream.offer(np.ones(100, dtype=np.float32), 1)
    stream.offer(np.ones(RATE, dtype=np.float32), RATE)
    stream.finish(timeout_s=10)
    assert session.samples == RATE and stream.received_s == 1.0
    with pytest.raises(RuntimeError, match="finished"):
        stream.offer(np.ones(RATE, dtype=np.float32), RATE)
