"""The web app, the desktop mode and the CLI build one pipeline from the same settings, so the same recording gives
the same files and the same safety decisions in each (live: web vs desktop; whole file: web vs CLI)."""

import dataclasses
import io
import json
from pathlib import Path

import pytest
import soundfile as sf

from compose.pipeline import build_pipeline
from compose.settings import SafetySettings
from engine.audio import SAMPLE_RATE_HZ, write_wav
from engine.stream_events import CommittedText
from engine.tasks import Task
from engine.transcript import Transcript
from safety.marking import MarkedTimeline
from safety.toxicity import word_tokens
from tests.conftest import recording
from tests.test_desktop import FakeCapture
from ui.app import SPEECH_AND_TEXT, ParleyApp
from ui.desktop import Translating
from ui.runtime import ModelRuntime
from ui.terminal import TerminalView

SRC, TGT = "eng", "spa"


class Request:
    session_hash = "agree-tab"


@pytest.fixture(scope="module")
def speech(hello_audio):
    audio, _ = recording([hello_audio, hello_audio], [1.0, 1.0])
    return audio


@pytest.fixture(scope="module")
def settings(tiny_settings, pipeline, speech, tmp_path_factory):
    """The tiny model's own words listed as offensive, so the safety stages have decisions to make."""
    session = pipeline.stream(TGT, Task.S2ST, src_lang=SRC)
    events = [e for i in range(0, speech.size, SAMPLE_RATE_HZ) for e in session.push(speech[i : i + SAMPLE_RATE_HZ],
              SAMPLE_RATE_HZ)] + session.finish()  # fmt: skip
    words = [t.text for e in events if isinstance(e, CommittedText) for t in word_tokens(e.text)]
    lists = tmp_path_factory.mktemp("lists")
    (lists / f"{TGT}.txt").write_text("\n".join(sorted(set(words))[:3]) + "\n", encoding="utf-8")
    return dataclasses.replace(tiny_settings, safety=SafetySettings(toxicity_dir=lists))


@pytest.fixture(scope="module")
def web(settings, tmp_path_factory):
    runtime = ModelRuntime(settings)
    runtime.start()
    assert runtime.wait(120).ready
    return ParleyApp(runtime, tmp_path_factory.mktemp("web"))


def texts(files) -> dict[str, str]:
    return {Path(f).name: Path(f).read_text(encoding="utf-8") for f in files if not str(f).endswith(".wav")}


def wav_length(files) -> int:
    [wav] = [f for f in files if str(f).endswith(".wav")]
    return sf.info(wav).frames


def test_live_web_and_desktop_give_the_same_files_and_flags(settings, loaded, web, speech, tmp_path):
    # the web page's handlers, chunk by chunk as the browser sends them
    key = None
    for i in range(0, speech.size, SAMPLE_RATE_HZ // 2):
        chunk = (SAMPLE_RATE_HZ, speech[i : i + SAMPLE_RATE_HZ // 2])  # the same samples the desktop gets
        *_, key, _ = web.live_chunk(chunk, SRC, TGT, SPEECH_AND_TEXT, settings.streaming.preset, True, key, Request())
    *_, web_files = web.live_stop(key)
    web_files = web_files["value"]  # the downloads box's update (shown once it has files)
    web_flags = [p.flags for p in web.registry.peek(key).transcript.pieces]

    # the desktop's worker thread, on a capture that holds the same audio
    pipeline = build_pipeline(settings, loaded)
    session = pipeline.stream(TGT, Task.S2ST, src_lang=SRC)
    capture = FakeCapture(rate=SAMPLE_RATE_HZ, capacity_frames=speech.size)
    capture.buffer.offer(speech)
    capture.buffer.close()
    record = Transcript(MarkedTimeline(pipeline.marker("agree-desktop")))
    worker = Translating(session, capture, TerminalView(io.StringIO(), tty=False), record, None)
    worker.run()
    assert worker.error is None
    desktop_files = record.write(tmp_path / "desktop")

    assert texts(web_files) == texts(desktop_files) and "translation.srt" in texts(web_files)
    assert wav_length(web_files) == wav_length(desktop_files) > SAMPLE_RATE_HZ
    assert web_flags == [p.flags for p in record.pieces] and any(web_flags)  # the same decisions, and some made


def test_file_web_and_cli_give_the_same_files_and_flags(settings, web, speech, tmp_path, monkeypatch, capsys):
    from ui.cli import main

    path = write_wav(tmp_path / "talk.wav", speech)
    _, _, _, web_files, report_md = web.translate_file(
        str(path), SRC, TGT, SPEECH_AND_TEXT, True, Request(), progress=lambda *a, **k: None
    )
    web_files = web_files["value"]
    monkeypatch.setenv("PARLEY_TOXICITY_DIR", str(settings.safety.toxicity_dir))
    monkeypatch.setenv("PARLEY_CACHE_DIR", str(settings.engine.cache_dir))
    out = tmp_path / "cli"
    assert main(["translate", str(path), "--src", SRC, "--tgt", TGT, "--model", "tiny", "--device", "cpu",
                 "--out", str(out), "--quiet"]) == 0  # fmt: skip
    cli_files = sorted(out.iterdir())
    safety_json = out / f"talk.{TGT}.safety.json"
    cli_texts = texts(f for f in cli_files if f != safety_json)
    assert cli_texts == texts(web_files) and f"talk.{TGT}.srt" in cli_texts
    assert wav_length(cli_files) == wav_length(web_files)
    cli_flags = [flag for entry in json.loads(safety_json.read_text(encoding="utf-8")) for flag in entry["flags"]]
    assert cli_flags and all(flag in report_md for flag in cli_flags)
    assert report_md.count("\n- ") == sum(bool(e["flags"]) for e in json.loads(safety_json.read_text()))
    capsys.readouterr()
