"""A live session that trails the speaker coarsens its own steps and says so, instead of growing a queue.

Plain data and a fake backend (no model): the pacing policy, the segmenter's stride, the session's notices, and the
background stream's backlog reaching the session.
"""

import time

import numpy as np

from engine.background_stream import BackgroundStream
from engine.constants import SAMPLE_RATE_HZ, WINDOW_SAMPLES
from engine.segmenter import StreamSegmenter
from engine.step_pacing import MAX_STEP_STRIDE, StepPacer
from engine.stream_events import CommittedText, StepsCoarsened
from engine.streaming import StreamingSession
from engine.transcript import Transcript
from tests.test_background_stream import RATE, SlowSession
from tests.test_session_parts import PRESET, SENTENCE, FakeBackend, FakeVad, speech


def test_pacer_coarsens_when_behind_and_comes_back_one_stride_at_a_time():
    pacer = StepPacer(step_s=0.5)
    assert not pacer.update(0.4) and pacer.stride == 1  # within one step: keeps up
    assert pacer.update(1.3) and pacer.stride == 3  # 1.3 s behind: one step per 1.5 s
    assert not pacer.update(1.4) and pacer.stride == 3  # within the coarser pace: no change
    assert pacer.update(10.0) and pacer.stride == MAX_STEP_STRIDE  # bounded
    assert not pacer.update(0.9) and pacer.stride == MAX_STEP_STRIDE  # not yet well within the finer pace
    strides = []
    for _ in range(MAX_STEP_STRIDE + 2):
        pacer.update(0.0)
        strides.append(pacer.stride)
    assert strides == [3, 2, 1, 1, 1, 1]  # caught up: one stride finer per update
    assert pacer.paced_step_s == 0.5


def steps_per_segment(stride: int) -> int:
    segmenter = StreamSegmenter(FakeVad(), PRESET)
    segmenter.step_stride = stride
    audio = speech(3.0)
    steps = [
        segmenter.push(audio[i : i + WINDOW_SAMPLES]) for i in range(0, audio.size - WINDOW_SAMPLES, WINDOW_SAMPLES)
    ]
    return sum(1 for s in steps if s is not None and not s.final)


def test_segmenter_stride_spaces_the_steps():
    fine, coarse = steps_per_segment(1), steps_per_segment(3)
    assert fine >= 9 and coarse == fine // 3


def test_a_session_that_trails_takes_fewer_steps_says_so_and_still_commits_everything():
    def run(lag_s: float | None):
        backend = FakeBackend()
        session = StreamingSession(backend, FakeVad(), "spa", preset=PRESET)
        audio, events = speech(2.5), []
        for i in range(0, audio.size, 4000):
            if lag_s is not None:
                session.pace(lag_s)
            events += session.push(audio[i : i + 4000], SAMPLE_RATE_HZ)
        if lag_s is not None:
            for _ in range(MAX_STEP_STRIDE):  # the speaker stopped and the session caught up
                session.pace(0.0)
        return backend.calls.count("encode"), events + session.finish()

    steady_encodes, steady = run(None)
    behind_encodes, behind = run(1.0)
    assert behind_encodes < steady_encodes / 2
    notices = [e for e in behind if isinstance(e, StepsCoarsened)]
    assert notices[0].step_s == 4 * PRESET.step_s and "Falling behind" in notices[0].message
    assert notices[-1].step_s == PRESET.step_s and "Caught up" in notices[-1].message
    assert not [e for e in steady if isinstance(e, StepsCoarsened)]
    # the segment's end still commits the whole sentence, and the transcript shows the notice
    assert [t for e in behind if isinstance(e, CommittedText) for t in e.token_ids] == SENTENCE
    transcript = Transcript()
    transcript.apply(behind)
    assert any("Falling behind" in n for n in transcript.notices)


def test_the_background_stream_tells_the_session_how_far_it_trails_a_real_time_speaker():
    session = SlowSession(push_s=0.25)
    stream = BackgroundStream(session, max_backlog_s=30.0)
    chunk = np.ones(RATE // 10, dtype=np.float32)
    for _ in range(12):  # 0.1 s spoken every 0.1 s, read in 0.25 s: the session trails more and more
        stream.offer(chunk, RATE)
        time.sleep(0.1)
    stream.finish(timeout_s=10)
    lags = session.lags_s
    assert len(lags) == 12 and lags[0] < 0.1 and max(lags) >= 0.6
    assert lags[-1] < 1e-9  # nothing waited behind the last chunk


def test_a_sender_faster_than_real_time_is_not_trailed():
    session = SlowSession(push_s=0.1)
    stream = BackgroundStream(session, max_backlog_s=30.0)
    for _ in range(10):  # 5 s of audio at once (a file sent as a stream): queued, but ahead of the speaker's clock
        stream.offer(np.ones(RATE // 2, dtype=np.float32), RATE)
    stream.finish(timeout_s=10)
    assert len(session.lags_s) == 10 and max(session.lags_s) < 0.05  # (the time to offer the next chunk)
