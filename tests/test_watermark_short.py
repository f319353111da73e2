"""Short outputs: every synthetic output with one watermark period of sound carries a readable payload, and
shorter ones say they are too short (issue 14 point 10, issue 15 point 10).

Real pipeline outputs (tiny model: noise-like speech, the hardest host for the mark) and espeak-ng speech.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from engine.audio import SAMPLE_RATE_HZ, load_audio
from engine.file_translation import write_outputs
from safety.marking import SpeechMarker
from safety.watermark import create_watermarker
from tests.conftest import espeak, recording


@pytest.fixture(scope="module")
def two_utterances(speech_dir) -> np.ndarray:
    """The browser tests' 7 s microphone clip: two utterances with a pause, then silence."""
    utts = [
        load_audio(espeak("Good morning, this is a test of live translation", speech_dir / "short0.wav")),
        load_audio(espeak("Thank you for listening to the end", speech_dir / "short1.wav")),
    ]
    return recording(utts, [1.2, 3.0])[0]


@pytest.fixture(scope="module")
def expressive_translation(pipeline, two_utterances):
    """Expressive on: two pieces of speech, each shorter than the period, with a pause between them."""
    return pipeline.translate_recording(two_utterances, "s2st", "spa", expressive=True)


@pytest.mark.parametrize("session", [f"file-{i}" for i in range(8)])
def test_expressive_file_translation_of_a_short_clip_reads_from_the_wav(
    pipeline, expressive_translation, tmp_path, session
):
    marker = pipeline.marker(session)
    result = dataclasses.replace(expressive_translation, audio=marker(expressive_translation.audio))
    wav = next(p for p in write_outputs(result, tmp_path, "clip") if p.suffix == ".wav")
    found = pipeline.watermarker.detect(load_audio(wav), SAMPLE_RATE_HZ)
    assert found.payload == marker.payload and not found.too_short


@pytest.mark.parametrize(
    "text", ["Hello, how are you today? I am fine.", "Please close the door when you leave the room."]
)
def test_spoken_text_reads(pipeline, text):
    [(result, _)] = pipeline.translate_texts([text], "t2st", "spa", "eng")
    assert result.waveform.size >= pipeline.watermarker.min_payload_s * SAMPLE_RATE_HZ  # the rule applies
    marker = pipeline.marker("text-session")
    found = pipeline.watermarker.detect(marker(result.waveform), SAMPLE_RATE_HZ)
    assert found.payload == marker.payload and not found.too_short


@pytest.fixture(scope="module")
def espeak_speech(speech_dir) -> np.ndarray:
    text = "The morning train to the coast leaves at nine, and the market opens when it arrives there."
    return load_audio(espeak(text, speech_dir / "short-train.wav"))


def test_a_clip_shorter_than_the_period_says_so(espeak_speech):
    watermarker = create_watermarker()
    marker = SpeechMarker(watermarker, 0x00051234)
    assert watermarker.min_payload_s == pytest.approx(1.92)
    short = marker(espeak_speech[: round(0.8 * SAMPLE_RATE_HZ)])
    padded = np.concatenate([np.zeros(SAMPLE_RATE_HZ, np.float32), short, np.zeros(SAMPLE_RATE_HZ, np.float32)])
    found = watermarker.detect(padded, SAMPLE_RATE_HZ)  # 2.8 s long, but only 0.8 s of sound
    assert found.payload is None and found.too_short
    # One period of sound, in two pieces with a pause between them on one timeline, is enough.
    stream = marker.stream()
    first, second = espeak_speech[:16_000], espeak_speech[16_000:33_000]
    timeline = np.zeros(4 * SAMPLE_RATE_HZ, np.float32)
    timeline[4000 : 4000 + first.size] = stream.add(first, 4000)
    timeline[36_000 : 36_000 + second.size] = stream.add(second, 36_000)
    found = watermarker.detect(timeline, SAMPLE_RATE_HZ)
    assert found.payload == marker.payload and not found.too_short


def test_unmarked_long_speech_is_not_called_too_short(espeak_speech):
    found = create_watermarker().detect(espeak_speech, SAMPLE_RATE_HZ)
    assert found.payload is None and not found.too_short and not found.detected


def test_the_cli_says_a_short_clip_is_too_short(espeak_speech, tmp_path, capsys):
    from engine.audio import write_wav
    from safety.watermark.__main__ import main

    marked = SpeechMarker(create_watermarker(), 0x00051234)(espeak_speech[: round(0.8 * SAMPLE_RATE_HZ)])
    short = write_wav(tmp_path / "short.wav", np.concatenate([marked, np.zeros(SAMPLE_RATE_HZ, np.float32)]))
    long = write_wav(tmp_path / "long.wav", espeak_speech)
    assert main(["detect", str(short), str(long)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "too short" in lines[0] and "1.9 s" in lines[0]
    assert "no watermark found" in lines[1] and "too short" not in lines[1]
