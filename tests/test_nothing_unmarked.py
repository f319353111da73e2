"""Nothing unmarked leaves: for random inputs on every output path, the synthetic speech that comes out carries the
session's watermark.

Paths: the live page's player (pieces as handed out) and its ``translation.wav`` download, the File tab's WAV, the
Text tab's speech, the WebSocket's speech frames (a real server), and the desktop's saved ``translation.wav`` (its
worker on a capture without a sound card). The desktop speaker's recording is checked through a real PulseAudio
sink in tests/test_desktop.py. Hypothesis draws the inputs (which sentences, the pauses, the chunk size, the
browser's rate, the text); two examples each, to stay fast.

The rule (issue #14 point 10, owned by the watermark work): an output at least one watermark period long must give
the session's payload; a shorter one must at least show the mark. Outputs are checked by length against the
backend's ``period_samples``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compose.settings import WatermarkSettings, WebSettings
from engine.audio import SAMPLE_RATE_HZ, load_audio, resample, write_wav
from engine.tasks import Task
from engine.transcript import Transcript
from safety.marking import MarkedTimeline
from tests.conftest import espeak, recording
from tests.test_desktop import FakeCapture
from tests.wire import serve
from ui.app import SPEECH_AND_TEXT, ParleyApp
from ui.desktop import Translating
from ui.runtime import ModelRuntime
from ui.terminal import TerminalView

LINES = ["Good morning, this is a test of live translation", "Thank you for listening to the end",
         "The trains are late again today", "Please close the window"]  # fmt: skip
FEW = settings(max_examples=2, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)

recordings = st.tuples(
    st.lists(st.integers(0, len(LINES) - 1), min_size=1, max_size=3),
    st.lists(st.floats(0.7, 2.0), min_size=3, max_size=3),
)


class Request:
    def __init__(self, session_hash: str) -> None:
        self.session_hash = session_hash


@pytest.fixture(scope="module")
def utterances(speech_dir) -> list[np.ndarray]:
    return [load_audio(espeak(line, speech_dir / f"unmarked{i}.wav")) for i, line in enumerate(LINES)]


@pytest.fixture(scope="module")
def app(tiny_settings, tmp_path_factory) -> ParleyApp:
    runtime = ModelRuntime(dataclasses.replace(tiny_settings, watermark=WatermarkSettings(deployment_id=7)))
    runtime.start()
    assert runtime.wait(120).ready
    return ParleyApp(runtime, tmp_path_factory.mktemp("unmarked"))


def speech_of(utterances, drawn) -> np.ndarray:
    which, pauses = drawn
    audio, _ = recording([utterances[i] for i in which], pauses[: len(which)])
    return audio


def sound_samples(audio: np.ndarray, frame: int = 320, floor: float = 1e-3) -> int:
    """Samples in 20 ms frames that hold sound (RMS above about -60 dBFS): the pauses between pieces carry no mark."""
    frames = audio[: audio.size // frame * frame].reshape(-1, frame)
    return int((np.sqrt(np.mean(frames**2, axis=1)) > floor).sum() * frame)


def assert_marked(audio: np.ndarray, payload: int, watermarker, what: str) -> None:
    """The rule above, on 16 kHz synthetic speech: the mark always, the payload once a period of sound is there."""
    assert audio.size and watermarker.period_samples > 0, f"{what}: no speech came out"
    found = watermarker.detect(audio, SAMPLE_RATE_HZ)
    sound_s = sound_samples(audio) / SAMPLE_RATE_HZ
    said = f"{what}: {audio.size / SAMPLE_RATE_HZ:.2f} s, {sound_s:.2f} s of sound, score {found.score:.1f}"
    assert found.detected, f"{said}: no mark"
    if sound_samples(audio) >= watermarker.period_samples:
        assert found.payload == payload, f"{said}: payload {found.payload}"


#: Known gap on main (issue #14 point 10, the watermark work of #21): pieces of speech shorter than a period,
#: separated by pauses, do not always give the payload (and on the tiny model not always the mark).
SHORT_PIECES = pytest.mark.xfail(reason="#14 point 10 / #21: payload of short pieces, not on main yet", strict=False)


def read_wav(path) -> np.ndarray:
    audio, rate = sf.read(path, dtype="float32")
    assert rate == SAMPLE_RATE_HZ
    return audio


@SHORT_PIECES
@FEW
@given(drawn=recordings, chunk_s=st.sampled_from([0.25, 0.5, 1.0]), rate=st.sampled_from([16_000, 48_000]))
def test_live_player_and_download_carry_the_session_mark(app, utterances, drawn, chunk_s, rate):
    speech = resample(speech_of(utterances, drawn), SAMPLE_RATE_HZ, rate)
    request = Request(f"live-{len(speech)}-{chunk_s}")
    key, played = None, []
    step = int(chunk_s * rate)
    for i in range(0, speech.size, step):
        *_, audio, key = app.live_chunk((rate, speech[i : i + step]), "eng", "spa", SPEECH_AND_TEXT, "balanced",
                                        False, key, request)  # fmt: skip
        played.append(audio)
    *_, audio, files = app.live_stop(key)
    played.append(audio)
    pieces = [a[1].astype(np.float32) / 32767 for a in played if isinstance(a, tuple)]
    payload, watermarker = app.marker(request).payload, app.runtime.pipeline().watermarker
    assert_marked(np.concatenate(pieces) if pieces else np.zeros(0), payload, watermarker, "live player")
    [wav] = [f for f in files if f.endswith(".wav")]
    assert_marked(read_wav(wav), payload, watermarker, "live translation.wav")


@SHORT_PIECES
@FEW
@given(drawn=recordings, expressive=st.booleans())
def test_file_wav_carries_the_session_mark(app, utterances, drawn, expressive, tmp_path_factory):
    path = write_wav(tmp_path_factory.mktemp("in") / "talk.wav", speech_of(utterances, drawn))
    request = Request(f"file-{path.stat().st_size}")
    wav, *_ = app.translate_file(str(path), "eng", "spa", SPEECH_AND_TEXT, expressive, request,
                                 progress=lambda *a, **k: None)  # fmt: skip
    pipeline = app.runtime.pipeline()
    assert_marked(read_wav(wav), app.marker(request).payload, pipeline.watermarker, "file WAV")


@SHORT_PIECES
@FEW
@given(words=st.lists(st.sampled_from(" ".join(LINES).split()), min_size=1, max_size=12),
       tgt=st.sampled_from(["spa", "fra", "deu"]))  # fmt: skip
def test_spoken_text_carries_the_session_mark(app, words, tgt):
    request = Request(f"text-{len(words)}-{tgt}")
    _, wav, _ = app.translate_text(" ".join(words), "eng", tgt, SPEECH_AND_TEXT, request)
    pipeline = app.runtime.pipeline()
    assert_marked(read_wav(wav), app.marker(request).payload, pipeline.watermarker, "spoken text")


@SHORT_PIECES
@FEW
@given(drawn=recordings)
def test_desktop_file_carries_the_run_mark(app, utterances, drawn, tmp_path_factory):
    pipeline = app.runtime.pipeline()
    speech = speech_of(utterances, drawn)
    capture = FakeCapture(rate=SAMPLE_RATE_HZ, capacity_frames=speech.size)
    capture.buffer.offer(speech)
    capture.buffer.close()
    marker = pipeline.marker(f"desktop-{speech.size}")
    record = Transcript(MarkedTimeline(marker))
    worker = Translating(pipeline.stream("spa", Task.S2ST, src_lang="eng"), capture,
                         TerminalView(io.StringIO(), tty=False), record, None)  # fmt: skip
    worker.run()
    assert worker.error is None
    [wav] = [p for p in record.write(tmp_path_factory.mktemp("desk")) if p.suffix == ".wav"]
    assert_marked(read_wav(wav), marker.payload, pipeline.watermarker, "desktop translation.wav")


@pytest.fixture(scope="module")
def server(tiny_settings, tmp_path_factory):
    settings_ = dataclasses.replace(tiny_settings, web=WebSettings(port=7924),
                                    watermark=WatermarkSettings(deployment_id=7))  # fmt: skip
    served = serve(settings_, tmp_path_factory.mktemp("unmarked-ws"))
    yield served
    served.close()


async def ws_speech(url: str, audio: np.ndarray, chunk_s: float) -> tuple[str, np.ndarray]:
    import websockets

    heard, key = [], None
    async with websockets.connect(url, max_size=None) as ws:
        await ws.send(json.dumps({"type": "start", "target": "spa", "source": "eng", "output": "speech"}))
        step = int(chunk_s * SAMPLE_RATE_HZ)
        for i in range(0, audio.size, step):
            await ws.send((np.clip(audio[i : i + step], -1, 1) * 32767).astype("<i2").tobytes())
        await ws.send(json.dumps({"type": "stop"}))
        async for message in ws:
            if isinstance(message, bytes):
                heard.append(np.frombuffer(message, "<i2").astype(np.float32) / 32767)
            elif json.loads(message)["type"] == "ready":
                key = json.loads(message)["session"]
    return key, np.concatenate(heard) if heard else np.zeros(0, np.float32)


@SHORT_PIECES
@settings(max_examples=2, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(drawn=recordings, chunk_s=st.sampled_from([0.2, 0.5, 1.0]))
def test_websocket_speech_carries_the_session_mark(server, utterances, drawn, chunk_s):
    key, heard = asyncio.run(ws_speech(server.ws_url, speech_of(utterances, drawn), chunk_s))
    pipeline = server.app.runtime.pipeline()
    assert_marked(heard, pipeline.marker(key).payload, pipeline.watermarker, "WebSocket speech")
