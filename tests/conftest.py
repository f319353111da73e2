"""Shared fixtures: the tiny model (real transformers code, random weights), real speech from espeak-ng."""

from __future__ import annotations

import itertools
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from engine.audio import SAMPLE_RATE_HZ, load_audio, write_wav
from engine.options import EngineOptions

REPO = Path(__file__).resolve().parent.parent
#: The tiny model is built once and kept here between test runs (git-ignored).
TEST_CACHE = REPO / ".cache" / "test"


def espeak(text: str, path: Path, voice: str = "en", speed_wpm: int = 160, pitch: int = 50) -> Path:
    """Real synthetic speech (22.05 kHz WAV) from espeak-ng."""
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is missing: run scripts/setup.sh (the README's test command does)")
    subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(speed_wpm), "-p", str(pitch), "-w", str(path), text],
        check=True,
        capture_output=True,
    )
    return path


def recording(utterances: list[np.ndarray], pauses_s: list[float], lead_s: float = 0.5) -> tuple[np.ndarray, list]:
    """Join 16 kHz utterances with the given pauses; returns the audio and each utterance's (start_s, end_s)."""
    pieces, spans, cursor = [np.zeros(int(lead_s * SAMPLE_RATE_HZ), np.float32)], [], lead_s
    for utt, pause in zip(utterances, pauses_s, strict=True):
        spans.append((cursor, cursor + utt.shape[0] / SAMPLE_RATE_HZ))
        pieces += [utt, np.zeros(int(pause * SAMPLE_RATE_HZ), np.float32)]
        cursor = spans[-1][1] + int(pause * SAMPLE_RATE_HZ) / SAMPLE_RATE_HZ
    return np.concatenate(pieces), spans


@pytest.fixture(scope="session")
def tiny_options() -> EngineOptions:
    return EngineOptions(model="tiny", cache_dir=TEST_CACHE, device="cpu")


@pytest.fixture(scope="session")
def loaded(tiny_options):
    from engine.models import load_model

    return load_model(tiny_options)


@pytest.fixture(scope="session")
def translator(loaded, tiny_options):
    from engine.translator import Translator

    return Translator(loaded, tiny_options)


@pytest.fixture(scope="session")
def tiny_settings(tiny_options):
    from compose.settings import Settings

    return Settings(engine=tiny_options)


@pytest.fixture(scope="session")
def pipeline(tiny_settings, loaded):
    """The whole pipeline as every front end builds it, on the tiny model."""
    from compose.pipeline import build_pipeline

    return build_pipeline(tiny_settings, loaded)


@pytest.fixture(scope="session")
def vad_model():
    from engine.vad import load_vad_model

    return load_vad_model()


@pytest.fixture(scope="session")
def speech_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("speech")


@pytest.fixture(scope="session")
def hello_wav(speech_dir) -> Path:
    """About two seconds of English speech at 22.05 kHz."""
    return espeak("Hello, this is a short test of the translation engine.", speech_dir / "hello.wav")


@pytest.fixture(scope="session")
def hello_audio(hello_wav) -> np.ndarray:
    return load_audio(hello_wav)


SENTENCES = [
    ("en", "Welcome to the weekly meeting of the translation team"),
    ("en-us", "Today we will talk about the new streaming engine"),
    ("en", "The first topic is the latency of the live captions"),
    ("en-gb-x-rp", "Our users want to hear the translation while they speak"),
    ("en-us", "The second topic is the quality of the synthetic voice"),
    ("en", "We measured every stage on a small computer without a graphics card"),
    ("en-gb-x-rp", "The results are written in the closing note of the issue"),
    ("en", "Please read them before the next meeting on Thursday"),
    ("en-us", "Thank you all for listening and see you next week"),
]
PAUSES_S = [2.0, 1.5, 2.5, 1.2, 2.0, 1.8, 2.2, 1.5, 1.0]

TIMESTAMP = r"(\d\d):(\d\d):(\d\d)[,.](\d\d\d)"


def parse_subtitles(text: str) -> list[tuple[float, float, str]]:
    """A strict reader for the SRT/VTT we write: every cue has a timing line and non-empty text."""
    cues = []
    blocks = [b for b in re.split(r"\n\s*\n", text.strip()) if b.strip() and b.strip() != "WEBVTT"]
    for block in blocks:
        lines = block.splitlines()
        if re.fullmatch(r"\d+", lines[0]):
            lines = lines[1:]
        m = re.fullmatch(f"{TIMESTAMP} --> {TIMESTAMP}", lines[0])
        assert m, f"bad timing line: {lines[0]!r}"
        g = [int(x) for x in m.groups()]
        start = g[0] * 3600 + g[1] * 60 + g[2] + g[3] / 1000
        end = g[4] * 3600 + g[5] * 60 + g[6] + g[7] / 1000
        assert 0 <= start < end and lines[1:] and all(line.strip() for line in lines[1:])
        cues.append((start, end, "\n".join(lines[1:])))
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(cues)), "cues overlap or are out of order"
    return cues


@pytest.fixture(scope="session")
def talk(speech_dir):
    """About a minute of speech: nine utterances by three voices with known pauses between them."""
    utterances = [
        load_audio(espeak(text, speech_dir / f"talk{i}.wav", voice=voice, speed_wpm=135))
        for i, (voice, text) in enumerate(SENTENCES)
    ]
    audio, spans = recording(utterances, PAUSES_S)
    path = write_wav(speech_dir / "talk.wav", audio)
    return path, audio, spans


@pytest.fixture(scope="session")
def talk_wav(talk):
    return talk[0]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Expose each phase's report on the test item, so fixtures can react to failures (screenshots)."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
