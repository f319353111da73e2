"""Streaming sessions on the tiny model with real speech: determinism, flushing, isolation, bounded state."""

import itertools
import threading

import numpy as np
import pytest

from engine.audio import SAMPLE_RATE_HZ, load_audio
from engine.resample import StreamResampler
from engine.streaming import (
    PRESETS,
    CommittedText,
    LatencyPreset,
    Notice,
    PartialText,
    SegmentEnd,
    SpeechChunk,
    StreamingSession,
    committed_word_delays,
    token_budget,
)
from engine.tasks import Task
from engine.vad import StreamingVad
from tests.conftest import espeak, recording


@pytest.fixture(scope="module")
def speech(speech_dir):
    """About 16 s: three utterances separated by clear pauses, at 16 kHz."""
    texts = [
        "Good morning and welcome to the live translation test",
        "We are speaking slowly so that every word is clear",
        "This is the last sentence of the recording",
    ]
    utts = [load_audio(espeak(t, speech_dir / f"stream{i}.wav", speed_wpm=150)) for i, t in enumerate(texts)]
    audio, _ = recording(utts, [1.2, 1.5, 0.8])
    return audio


def run(translator, vad_model, audio, rate=SAMPLE_RATE_HZ, chunk_s=0.5, **kwargs):
    session = StreamingSession(translator, StreamingVad.for_new_stream(vad_model), **kwargs)
    step = max(1, int(chunk_s * rate))
    events = []
    for i in range(0, audio.shape[0], step):
        events += session.push(audio[i : i + step], rate)
    events += session.finish()
    return session, events


def committed(events):
    return "".join(e.text for e in events if isinstance(e, CommittedText))


def spans(events):
    return [(e.start_s, e.end_s) for e in events if isinstance(e, SegmentEnd)]


def test_chunk_size_does_not_change_the_result(translator, vad_model, speech):
    results = []
    for chunk_s in (0.02, 0.1, 0.5, 2.0):
        # Chinese: every token may end a word, so the tiny model's output commits inside segments too
        _, events = run(translator, vad_model, speech, chunk_s=chunk_s, tgt_lang="cmn", preset="low")
        results.append(([e.token_ids for e in events if isinstance(e, CommittedText)], spans(events)))
    assert all(r == results[0] for r in results[1:])
    tokens, segment_spans = results[0]
    assert len(segment_spans) == 3 and sum(len(t) for t in tokens) > 0
    assert len(tokens) > 3  # the low-latency preset commits inside segments, not only at their ends


@pytest.mark.parametrize("rate", [8000, 44100, 48000])
def test_sample_rates_are_accepted(translator, vad_model, speech, rate):
    from scipy.signal import resample_poly

    up, down = rate // np.gcd(rate, SAMPLE_RATE_HZ), SAMPLE_RATE_HZ // np.gcd(rate, SAMPLE_RATE_HZ)
    at_rate = resample_poly(speech, up, down).astype(np.float32)
    pcm = (np.clip(at_rate, -1, 1) * 32767).astype(np.int16)  # browsers send int16
    _, events = run(translator, vad_model, pcm, rate=rate, tgt_lang="fra", preset="balanced")
    found = spans(events)
    assert len(found) == 3 and committed(events)
    _, reference = run(translator, vad_model, speech, tgt_lang="fra", preset="balanced")
    for (a0, a1), (b0, b1) in zip(found, spans(reference), strict=True):
        assert abs(a0 - b0) <= 0.1 and abs(a1 - b1) <= 0.15


def test_segment_preset_reproduces_offline_translation(translator, vad_model, speech):
    _, events = run(translator, vad_model, speech, tgt_lang="deu", preset="segment", task="s2st")
    ends = [e for e in events if isinstance(e, SegmentEnd)]
    assert len(ends) == 3
    commits = [e for e in events if isinstance(e, CommittedText)]
    assert len(commits) == 3  # exactly one commit per segment, at its end
    for end, commit in zip(ends, commits, strict=True):
        audio = speech[round(end.start_s * SAMPLE_RATE_HZ) : round(end.end_s * SAMPLE_RATE_HZ)]
        encoded = translator.encode_speech([audio])
        budget = token_budget(audio.shape[0] / SAMPLE_RATE_HZ)
        offline = translator.generate_text(encoded, "deu", max_new_tokens=budget, num_beams=1)[0].tolist()
        tokens = offline[2:]  # after the decoder start and language tokens
        while tokens and tokens[-1] in translator.loaded.tokenizer.all_special_ids:  # EOS and padding
            tokens.pop()
        assert list(commit.token_ids) == tokens
        assert end.text == translator.loaded.tokenizer.decode(offline, skip_special_tokens=True).strip()


def test_speech_output_follows_each_commit(translator, vad_model, speech):
    _, events = run(translator, vad_model, speech, tgt_lang="jpn", preset="low", task="s2st")
    assert sum(isinstance(e, CommittedText) for e in events) > 3
    for i, event in enumerate(events):
        if isinstance(event, CommittedText):
            chunk = events[i + 1]
            assert isinstance(chunk, SpeechChunk)
            assert chunk.audio.dtype == np.float32 and chunk.audio.size > 0 and chunk.sample_rate_hz == 16000
            assert np.isfinite(chunk.audio).all()
    assert sum(isinstance(e, SpeechChunk) for e in events) == sum(isinstance(e, CommittedText) for e in events)


def test_a_retarget_applies_from_the_next_segment(translator, vad_model, speech):
    """The listener changes the target and turns speech off while the first segment is open: it finishes as it
    started, every later one is what a stream started with the new target gives (segments do not depend on it)."""
    session = StreamingSession(translator, StreamingVad.for_new_stream(vad_model), "spa", "s2st")
    step = SAMPLE_RATE_HZ // 2
    events = []
    for i in range(0, speech.shape[0], step):
        if session.open_segment_s and not any(isinstance(e, CommittedText) for e in events[1:]):
            session.retarget("fra", "s2tt")  # while the first segment is open
        events += session.push(speech[i : i + step], SAMPLE_RATE_HZ)
    events += session.finish()
    ends = [e for e in events if isinstance(e, SegmentEnd)]
    assert len(ends) == 3
    assert [(e.tgt_lang, e.spoken) for e in ends] == [("spa", True), ("fra", False), ("fra", False)]
    assert {e.segment for e in events if isinstance(e, SpeechChunk)} == {0}  # no speech once text only
    _, before = run(translator, vad_model, speech, tgt_lang="spa", task="s2tt")  # speaking leaves the text as it is
    _, after = run(translator, vad_model, speech, tgt_lang="fra", task="s2tt")
    unchanged = [e for e in before if isinstance(e, SegmentEnd)][:1]
    retargeted = [e for e in after if isinstance(e, SegmentEnd)][1:]
    assert [e.text for e in ends] == [e.text for e in unchanged + retargeted]
    with pytest.raises(ValueError, match="not supported"):
        session.retarget("ell", "s2st")  # Greek cannot be spoken
    asr = StreamingSession(translator, StreamingVad.for_new_stream(vad_model), "eng", "asr", src_lang="eng")
    with pytest.raises(ValueError, match="only a translation"):
        asr.retarget("fra", "s2tt")


def test_committed_text_is_never_retracted(translator, vad_model, speech):
    session, events = run(translator, vad_model, speech, tgt_lang="spa", preset="low", src_lang="eng")
    assert committed(events).strip() == " ".join(e.text for e in session.segments)
    assert all(e.transcript for e in session.segments)  # source transcript beside the translation
    partials = [e for e in events if isinstance(e, PartialText)]
    assert partials and partials[-1].text == ""  # the partial is cleared when the last segment ends


def test_stamps_are_ordered_and_metrics_computable(translator, vad_model, speech):
    from engine.metrics import latency

    _, events = run(translator, vad_model, speech, tgt_lang="spa", preset="low")
    for a, b in itertools.pairwise(events):
        assert a.source_time_s <= b.source_time_s and a.emitted_at <= b.emitted_at and a.compute_s <= b.compute_s
    source_s = speech.shape[0] / SAMPLE_RATE_HZ
    plain = latency(committed_word_delays(events), source_s)
    assert plain is not None and plain.al_s > 0 and plain.ending_offset_s >= -source_s


def test_silence_produces_no_text(translator, vad_model):
    silence = np.zeros(5 * SAMPLE_RATE_HZ, dtype=np.float32)
    noise_floor = np.random.default_rng(0).standard_normal(5 * SAMPLE_RATE_HZ).astype(np.float32) * 1e-4
    for audio in (silence, noise_floor):
        session, events = run(translator, vad_model, audio, tgt_lang="spa", preset="low")
        assert events == [] and session.segments == []


def test_stream_cut_mid_word_is_flushed(translator, vad_model, speech):
    cut = speech[: int(2.2 * SAMPLE_RATE_HZ)]  # in the middle of the first utterance
    session, events = run(translator, vad_model, cut, tgt_lang="spa", preset="quality")
    assert len(session.segments) == 1 and committed(events)
    assert session.segments[0].end_s == pytest.approx(cut.shape[0] / SAMPLE_RATE_HZ, abs=0.04)


def test_finish_twice_is_harmless_and_push_after_finish_is_refused(translator, vad_model, speech):
    session, _ = run(translator, vad_model, speech[: 3 * SAMPLE_RATE_HZ], tgt_lang="spa")
    assert session.finish() == []
    with pytest.raises(RuntimeError, match="finished"):
        session.push(speech[:100], SAMPLE_RATE_HZ)


def test_invalid_samples_are_reported_and_replaced(translator, vad_model, speech):
    session = StreamingSession(translator, StreamingVad.for_new_stream(vad_model), "spa")
    bad = speech[:8000].copy()
    bad[10:20] = np.nan
    events = session.push(bad, SAMPLE_RATE_HZ)
    assert any(isinstance(e, Notice) and "invalid" in e.message for e in events)
    events = session.push(speech[8000:], SAMPLE_RATE_HZ) + session.finish()
    assert committed(events)


def test_long_speech_without_pauses_is_cut(translator, vad_model, speech):
    preset = LatencyPreset("short", step_s=None, agreement_n=1, pause_s=5.0, max_segment_s=4.0)
    session, _ = run(translator, vad_model, speech, tgt_lang="spa", preset=preset)
    assert len(session.segments) >= 4
    assert all(e.end_s - e.start_s <= 4.0 + 1e-6 for e in session.segments)
    # cut pieces are contiguous: nothing between them is lost
    touching = sum(
        abs(b.start_s - a.end_s) < 1e-6 for a, b in zip(session.segments, session.segments[1:], strict=False)
    )
    assert touching >= 1


def test_state_stays_bounded(translator, vad_model, speech):
    session, _ = run(translator, vad_model, np.tile(speech, 3), tgt_lang="spa", preset="low")
    assert len(session.segments) == 9
    assert session.open_segment_s == 0.0  # nothing held once the stream is flushed
    assert max(e.end_s - e.start_s for e in session.segments) <= PRESETS["low"].max_segment_s


def test_parallel_sessions_do_not_mix(translator, vad_model, speech):
    jobs = {"spa": speech, "fra": speech[::-1].copy() * 0.8}
    expected = {lang: committed(run(translator, vad_model, audio, tgt_lang=lang)[1]) for lang, audio in jobs.items()}
    got, errors = {}, []

    def worker(lang, audio):
        try:
            got[lang] = committed(run(translator, vad_model, audio, chunk_s=0.1, tgt_lang=lang)[1])
        except Exception as e:  # surfaced below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=item) for item in jobs.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and got == expected and got["spa"] != got["fra"]


def test_bad_session_arguments(translator, vad_model):
    vad = StreamingVad.for_new_stream(vad_model)
    with pytest.raises(ValueError, match="speech"):
        StreamingSession(translator, vad, "spa", task=Task.T2TT)
    with pytest.raises(ValueError, match="spoken language"):
        StreamingSession(translator, vad, "spa", task=Task.ASR)
    with pytest.raises(ValueError, match="speech output"):
        StreamingSession(translator, vad, "ell", task=Task.S2ST)
    with pytest.raises(ValueError):
        LatencyPreset("x", step_s=0.001, agreement_n=2, pause_s=0.5)


def test_resampler_is_chunking_independent_and_matches_scipy():
    from scipy.signal import resample_poly

    x = np.random.default_rng(1).standard_normal(44100 * 2).astype(np.float32)
    outputs = []
    for chunk in (441, 5000, 22050, 88200):
        r = StreamResampler(44100, 16000)
        outputs.append(np.concatenate([r.push(x[i : i + chunk]) for i in range(0, x.size, chunk)] + [r.flush()]))
    assert all(np.array_equal(outputs[0], o) for o in outputs[1:])
    np.testing.assert_allclose(outputs[0], resample_poly(x.astype(np.float64), 160, 441), atol=1e-5)


@pytest.mark.parametrize(
    ("chunk", "rate", "message"),
    [
        (np.zeros(8000, np.float32), 1, "sample rate"),  # once made the resampler ask for ~60 GiB
        (np.zeros(8000, np.float32), 100, "sample rate"),
        (np.zeros(60 * 16000, np.float32), 16000, "at most 5 s"),
        (np.zeros((8000, 255), np.int16), 16000, "channels"),
        (np.zeros(8000, np.complex64), 16000, "plain PCM"),
        (np.zeros((2, 2, 2), np.float32), 16000, "plain PCM"),
    ],
)
def test_chunks_outside_the_limits_are_refused_in_plain_words_and_the_stream_goes_on(
    translator, vad_model, speech, chunk, rate, message
):
    from engine.audio import AudioError
    from engine.stream_input import LiveInputLimits

    session = StreamingSession(translator, StreamingVad.for_new_stream(vad_model), "spa", limits=LiveInputLimits())
    first = session.push(speech[: 3 * SAMPLE_RATE_HZ], SAMPLE_RATE_HZ)
    with pytest.raises(AudioError, match=message):
        session.push(chunk, rate)
    assert session.source_time_s == pytest.approx(3.0, abs=0.04)  # the refused chunk changed nothing
    rest = [
        session.push(speech[i : i + SAMPLE_RATE_HZ], SAMPLE_RATE_HZ)
        for i in range(3 * SAMPLE_RATE_HZ, speech.size, SAMPLE_RATE_HZ)
    ]
    events = first + [e for chunk in rest for e in chunk] + session.finish()
    assert committed(events)
