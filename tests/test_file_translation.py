"""Long recordings: VAD segmentation, utterance-by-utterance translation, pauses kept, valid subtitles."""

import itertools

import numpy as np
import pytest
import soundfile as sf

from engine.audio import SAMPLE_RATE_HZ, AudioError
from engine.file_translation import translate_recording, write_outputs
from engine.translator import Task
from engine.vad import Segmenter, VadOptions
from tests.conftest import parse_subtitles


def test_talk_is_about_a_minute(talk):
    _, audio, spans = talk
    assert 50 <= audio.shape[0] / SAMPLE_RATE_HZ <= 75 and len(spans) == 9


def test_vad_finds_each_utterance(talk, vad_model):
    _, audio, spans = talk
    segments = Segmenter(vad_model).segments(audio)
    assert len(segments) == len(spans)
    for seg, (start, end) in zip(segments, spans, strict=True):
        assert abs(seg.start_s - start) < 0.3 and abs(seg.end_s - end) < 0.4


def test_long_speech_is_cut_below_the_limit(talk, vad_model):
    _, audio, spans = talk
    continuous = np.concatenate([audio[int(s * SAMPLE_RATE_HZ) : int(e * SAMPLE_RATE_HZ)] for s, e in spans[:5]])
    segments = Segmenter(vad_model, VadOptions(max_segment_s=6.0)).segments(continuous)
    assert len(segments) >= 3
    assert all(seg.duration_s <= 6.0 + 0.3 for seg in segments)


@pytest.fixture(scope="module")
def translated(talk, translator, vad_model):
    _, audio, _ = talk
    calls = []
    result = translate_recording(
        translator,
        Segmenter(vad_model),
        audio,
        Task.S2ST,
        "spa",
        src_lang="eng",
        progress=lambda d, t: calls.append((d, t)),
    )
    return result, calls


def test_translation_keeps_the_pauses(translated):
    result, progress = translated
    assert progress == [(i, 9) for i in range(1, 10)]
    assert len(result.segments) == 9
    segs = result.segments
    assert segs[0].output_start_s == pytest.approx(segs[0].source.start_s, abs=1e-3)
    for prev, cur in itertools.pairwise(segs):
        source_pause = cur.source.start_s - prev.source.end_s
        output_pause = cur.output_start_s - (prev.output_start_s + prev.audio.shape[0] / SAMPLE_RATE_HZ)
        assert output_pause == pytest.approx(source_pause, abs=1e-3)
        # and the gap in the assembled audio really is silent
        a = int((prev.output_start_s * SAMPLE_RATE_HZ) + prev.audio.shape[0])
        b = int(cur.output_start_s * SAMPLE_RATE_HZ)
        assert not np.any(result.audio[a:b])
    last = segs[-1]
    assert result.audio.shape[0] == round(last.output_start_s * SAMPLE_RATE_HZ) + last.audio.shape[0]
    assert all(s.transcript for s in segs)  # source transcript from the same encoder pass


def test_outputs_are_valid_files(translated, tmp_path):
    result, _ = translated
    paths = {p.name: p for p in write_outputs(result, tmp_path, "talk")}
    assert set(paths) == {
        "talk.spa.txt", "talk.spa.srt", "talk.spa.vtt", "talk.eng.txt", "talk.eng.srt", "talk.eng.vtt",
        "talk.spa.wav", "talk.spa.dubbed.srt", "talk.spa.dubbed.vtt",
    }  # fmt: skip
    for name in ("talk.spa.srt", "talk.spa.vtt", "talk.eng.srt", "talk.eng.vtt"):
        cues = parse_subtitles(paths[name].read_text(encoding="utf-8"))
        assert len(cues) == 9
        for (start, end, _), seg in zip(cues, result.segments, strict=True):
            assert start == pytest.approx(seg.source.start_s, abs=0.002)
            assert end == pytest.approx(seg.source.end_s, abs=0.002)
    assert paths["talk.spa.vtt"].read_text(encoding="utf-8").startswith("WEBVTT\n\n")
    dubbed = parse_subtitles(paths["talk.spa.dubbed.srt"].read_text(encoding="utf-8"))
    assert [c[0] for c in dubbed] == pytest.approx([s.output_start_s for s in result.segments], abs=0.002)
    wav, rate = sf.read(paths["talk.spa.wav"])
    assert rate == SAMPLE_RATE_HZ and wav.shape[0] == result.audio.shape[0]
    assert dubbed[-1][1] == pytest.approx(wav.shape[0] / rate, abs=0.002)


def test_text_only_and_asr_tasks(talk, translator, vad_model, tmp_path):
    _, audio, _ = talk
    clip = audio[: 16 * SAMPLE_RATE_HZ]
    s2tt = translate_recording(translator, Segmenter(vad_model), clip, Task.S2TT, "fra")
    assert s2tt.audio is None and s2tt.segments and all(s.transcript is None for s in s2tt.segments)
    asr = translate_recording(translator, Segmenter(vad_model), clip, Task.ASR, "spa", src_lang="eng")
    assert asr.tgt_lang == "eng" and all(s.transcript == s.text for s in asr.segments)
    names = {p.name for p in write_outputs(asr, tmp_path, "clip")}
    assert names == {"clip.eng.txt", "clip.eng.srt", "clip.eng.vtt"}


def test_noise_without_speech_is_reported(translator, vad_model):
    noise = np.random.default_rng(0).standard_normal(5 * SAMPLE_RATE_HZ).astype(np.float32) * 0.01
    with pytest.raises(AudioError, match="No speech"):
        translate_recording(translator, Segmenter(vad_model), noise, Task.S2TT, "spa")
