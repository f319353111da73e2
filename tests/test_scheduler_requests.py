"""Uploads and text requests go through the shared scheduler: file segments at file priority, text requests at live
priority with their sentences decoded as rows of one batch, each result what the translator gives alone, and a
full queue answered in one plain sentence.

Real model code on the tiny model (fp32), the pipeline as every front end builds it (safety judge and expressive
stage on); outputs are gibberish, so results are compared with the translator's, never judged for quality.
"""

from __future__ import annotations

import gradio as gr
import numpy as np
import pytest

from engine.audio import load_audio
from engine.file_translation import translate_recording
from engine.mitigation import check_texts, speak_checked
from engine.scheduler import InferenceScheduler, SchedulerOptions
from engine.scheduler_calls import Kind, Priority, SchedulerBusyError
from engine.tasks import Task
from engine.vad import Segmenter, VadOptions
from tests.conftest import espeak, recording
from ui.app import _plain_errors

SENTENCES = ("Good morning.", "Where is the station, please?", "Thank you.", "See you tomorrow at nine.")


@pytest.fixture
def priorities(pipeline, monkeypatch) -> list[tuple[Kind, Priority, int]]:
    """Every submission to the pipeline's scheduler: (kind, priority, calls queued together)."""
    seen, submit = [], pipeline.scheduler.submit_many

    def spy(kind, payloads, key, priority):
        seen.append((kind, priority, len(payloads)))
        return submit(kind, payloads, key, priority)

    monkeypatch.setattr(pipeline.scheduler, "submit_many", spy)
    return seen


def test_a_text_request_is_one_batch_at_live_priority_and_equals_the_translator(pipeline, priorities):
    before = len(pipeline.scheduler.batch_sizes[Kind.CONTINUE])
    got = pipeline.translate_texts(list(SENTENCES), Task.T2ST, "spa", "eng")
    alone = [
        speak_checked(check_texts(pipeline.translator, pipeline.judge, [s], Task.T2ST, "spa", "eng"))[0]
        for s in SENTENCES
    ]
    for (have, have_report), (want, want_report) in zip(got, alone, strict=True):
        assert have.text == want.text and have.token_ids == want.token_ids and have.units == want.units
        assert np.array_equal(have.waveform, want.waveform)
        assert have_report.flags == want_report.flags
    assert {p for _, p, _ in priorities} == {Priority.LIVE}
    assert (Kind.CONTINUE, Priority.LIVE, len(SENTENCES)) in priorities  # queued together ...
    assert max(pipeline.scheduler.batch_sizes[Kind.CONTINUE][before:]) == len(SENTENCES)  # ... and decoded together


def test_an_upload_goes_segment_by_segment_at_file_priority_and_equals_the_translator(pipeline, priorities, speech_dir):
    utterances = [load_audio(espeak(text, speech_dir / f"upload{i}.wav")) for i, text in enumerate(SENTENCES[1::2])]
    audio, _ = recording(utterances, [0.9, 0.6])
    got = pipeline.translate_recording(audio, Task.S2ST, "spa", "eng")
    segmenter = Segmenter(pipeline.vad_model, VadOptions(max_segment_s=pipeline.settings.engine.max_segment_s))
    want = translate_recording(
        pipeline.translator, segmenter, audio, Task.S2ST, "spa", "eng",
        expressive=pipeline.expressive, judge=pipeline.judge,
    )  # fmt: skip
    assert len(got.segments) == len(want.segments) >= 2
    for have, ref in zip(got.segments, want.segments, strict=True):
        assert (have.text, have.transcript) == (ref.text, ref.transcript)
    assert np.array_equal(got.audio, want.audio)
    assert {p for _, p, _ in priorities} == {Priority.FILE}
    assert sum(1 for k, _, _ in priorities if k is Kind.ENCODE) == len(got.segments)  # one encoder pass each


def test_a_full_scheduler_answers_a_text_request_busy_in_one_plain_sentence(translator):
    with InferenceScheduler(translator, SchedulerOptions(max_queued_calls=2)) as scheduler:
        requests = scheduler.requests("text", Priority.LIVE)
        with pytest.raises(SchedulerBusyError) as caught:
            speak_checked(check_texts(requests, None, list(SENTENCES[:3]), Task.T2TT, "fra", "eng"))
        assert scheduler.batch_sizes[Kind.ENCODE] == []  # all or nothing: none of the three was queued
        [(small, _)] = speak_checked(check_texts(requests, None, ["Hello."], Task.T2TT, "fra", "eng"))
        assert small.text == translator.translate(["Hello."], Task.T2TT, "fra", src_lang="eng")[0].text

    def handler():
        raise caught.value

    with pytest.raises(gr.Error) as shown:
        _plain_errors(handler)()
    assert shown.value.message == str(caught.value) and "busy" in shown.value.message
