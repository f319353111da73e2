"""Nothing unmarked leaves: for random inputs on every output path, the synthetic speech that comes out carries the
session's watermark.

Paths: the live page's player (pieces as handed out) and its ``translation.wav`` download, the File tab's WAV, the
Text tab's speech, the WebSocket's speech frames (a real server), and the desktop's saved ``translation.wav`` (its
worker on a capture without a sound card) and what its speakers play (a real PulseAudio null sink, recorded from its
monitor). Hypothesis draws the inputs (which sentences, the pauses, the chunk size, the browser's rate, the text).

The rule (issue #14 point 10): an output holding at least ``min_payload_s`` of sound (one watermark period; pauses
not counted) gives the session's payload; a shorter one gives the mark, or the detector's own word that it is too
short to carry a payload (``WatermarkResult.too_short``, which the Verify tab shows instead of "no watermark"), and
never another payload. Below about 1.5 s of sound the detector's pilots alone do not reach its threshold: on 11
marked tiny-model spoken texts, excerpts of 1.0 s were detected 0 times, of 1.25 s once, of 1.5 s 7 times.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import signal
import subprocess
import threading

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from compose.settings import WatermarkSettings, WebSettings
from engine.audio import SAMPLE_RATE_HZ, load_audio, resample, write_wav
from engine.tasks import Task
from engine.transcript import Transcript
from safety.marking import MarkedTimeline
from tests import test_desktop
from tests.conftest import espeak, recording
from tests.test_desktop import SPEAKER_SINK, FakeCapture
from tests.wire import serve
from ui.app import SPEECH_AND_TEXT, ParleyApp
from ui.audio_devices import AudioDevice, Playback, find_device
from ui.desktop import Translating
from ui.terminal import TerminalView

LINES = ["Good morning, this is a test of live translation", "Thank you for listening to the end",
         "The trains are late again today", "Please close the window"]  # fmt: skip
#: Two examples per path, not shrunk: a failure prints its example and the output's figures (a shrink would redo
#: minutes of translation), and every path shares one server and its model.
FEW = settings(max_examples=2, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
               database=None, phases=(Phase.explicit, Phase.generate))  # fmt: skip

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


#: tests/test_desktop.py's private PulseAudio daemon, for the speaker path.
pulse = test_desktop.pulse


@pytest.fixture(scope="module")
def speakers(pulse) -> AudioDevice:
    """The PulseAudio daemon's speaker sink, reached from this process through PortAudio and ALSA's pulse plugin as
    the desktop reaches a sound card (the plugin finds the daemon through these variables when a stream opens)."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in pulse.items():
            if name.startswith("PULSE_"):
                patch.setenv(name, value)
        yield find_device("pulse", "output")


@pytest.fixture(scope="module")
def server(tiny_settings, tmp_path_factory):
    """One real server (page, WebSocket) for every path: the in-process paths call its app's handlers."""
    settings_ = dataclasses.replace(tiny_settings, web=WebSettings(port=7924),
                                    watermark=WatermarkSettings(deployment_id=7))  # fmt: skip
    served = serve(settings_, tmp_path_factory.mktemp("unmarked"))
    yield served
    served.close()


@pytest.fixture(scope="module")
def app(server) -> ParleyApp:
    return server.app


def speech_of(utterances, drawn) -> np.ndarray:
    which, pauses = drawn
    audio, _ = recording([utterances[i] for i in which], pauses[: len(which)])
    return audio


def filled_capture(speech: np.ndarray) -> FakeCapture:
    """A capture that has heard all of ``speech`` (16 kHz) and ended: the worker translates it as fast as it can."""
    capture = FakeCapture(rate=SAMPLE_RATE_HZ, capacity_frames=speech.size)
    capture.buffer.offer(speech)
    capture.buffer.close()
    return capture


def sound_samples(audio: np.ndarray, frame: int = 320, floor: float = 1e-3) -> int:
    """Samples in 20 ms frames that hold sound (RMS above about -60 dBFS): the pauses between pieces carry no mark."""
    frames = audio[: audio.size // frame * frame].reshape(-1, frame)
    return int((np.sqrt(np.mean(frames**2, axis=1)) > floor).sum() * frame)


def assert_marked(audio: np.ndarray, payload: int, watermarker, what: str) -> None:
    """The rule above, on 16 kHz synthetic speech."""
    assert audio.size, f"{what}: no speech came out"
    found = watermarker.detect(audio, SAMPLE_RATE_HZ)
    sound_s = sound_samples(audio) / SAMPLE_RATE_HZ
    said = f"{what}: {audio.size / SAMPLE_RATE_HZ:.2f} s, {sound_s:.2f} s of sound, score {found.score:.1f}"
    assert found.payload in (None, payload), f"{said}: another payload {found.payload}"
    if sound_s >= watermarker.min_payload_s:
        assert found.detected and found.payload == payload, f"{said}: payload {found.payload}"
    else:
        assert found.detected or found.too_short, f"{said}: neither the mark nor 'too short'"


def read_wav(path) -> np.ndarray:
    audio, rate = sf.read(path, dtype="float32")
    assert rate == SAMPLE_RATE_HZ
    return audio


@FEW
@given(drawn=recordings, chunk_s=st.sampled_from([0.25, 0.5, 1.0]), rate=st.sampled_from([16_000, 48_000]))
def test_live_player_and_download_carry_the_session_mark(app, utterances, drawn, chunk_s, rate):
    speech = resample(speech_of(utterances, drawn), SAMPLE_RATE_HZ, rate)
    request = Request(f"live-{len(speech)}-{chunk_s}")
    key, played = None, []
    step = int(chunk_s * rate)
    for i in range(0, speech.size, step):
        *_, audio, key, _ = app.live_chunk((rate, speech[i : i + step]), "eng", "spa", SPEECH_AND_TEXT,
                                           "balanced", False, key, request)  # fmt: skip
        played.append(audio)
    *_, audio, wav, _ = app.live_stop(key)
    played.append(audio)
    pieces = [a[1].astype(np.float32) / 32767 for a in played if isinstance(a, tuple)]
    payload, watermarker = app.marker(request).payload, app.runtime.pipeline().watermarker
    assert_marked(np.concatenate(pieces) if pieces else np.zeros(0), payload, watermarker, "live player")
    assert_marked(read_wav(wav), payload, watermarker, "live translation.wav")


@FEW
@given(drawn=recordings, expressive=st.booleans())
def test_file_wav_carries_the_session_mark(app, utterances, drawn, expressive, tmp_path_factory):
    path = write_wav(tmp_path_factory.mktemp("in") / "talk.wav", speech_of(utterances, drawn))
    request = Request(f"file-{path.stat().st_size}")
    wav, *_ = app.translate_file(str(path), "eng", "spa", SPEECH_AND_TEXT, expressive, request,
                                 progress=lambda *a, **k: None)  # fmt: skip
    pipeline = app.runtime.pipeline()
    assert_marked(read_wav(wav), app.marker(request).payload, pipeline.watermarker, "file WAV")


#: Before marked speech was brought within full scale, this one (1.92 s, the tiny model's speech at full scale)
#: detected but read no payload: 16-bit PCM clipped the tiles the mark had raised.
@example(words=["a", "today"], tgt="deu")
@FEW
@given(words=st.lists(st.sampled_from(" ".join(LINES).split()), min_size=1, max_size=12),
       tgt=st.sampled_from(["spa", "fra", "deu"]))  # fmt: skip
def test_spoken_text_carries_the_session_mark(app, words, tgt):
    request = Request(f"text-{len(words)}-{tgt}")
    *_, (_, wav, _) = app.translate_text(" ".join(words), "eng", tgt, SPEECH_AND_TEXT, request)
    pipeline = app.runtime.pipeline()
    assert_marked(read_wav(wav), app.marker(request).payload, pipeline.watermarker, "spoken text")


@FEW
@given(drawn=recordings)
def test_desktop_file_carries_the_run_mark(app, utterances, drawn, tmp_path_factory):
    pipeline = app.runtime.pipeline()
    speech = speech_of(utterances, drawn)
    capture = filled_capture(speech)
    marker = pipeline.marker(f"desktop-{speech.size}")
    record = Transcript(MarkedTimeline(marker))
    worker = Translating(pipeline.stream("spa", Task.S2ST, src_lang="eng"), capture,
                         TerminalView(io.StringIO(), tty=False), record, None)  # fmt: skip
    worker.run()
    assert worker.error is None
    [wav] = [p for p in record.write(tmp_path_factory.mktemp("desk")) if p.suffix == ".wav"]
    assert_marked(read_wav(wav), marker.payload, pipeline.watermarker, "desktop translation.wav")


@FEW
@given(drawn=recordings)
def test_desktop_speaker_carries_the_run_mark(app, utterances, drawn, pulse, speakers, tmp_path_factory):
    """What the speakers play, recorded from the sink's monitor (resampled by PulseAudio on the way)."""
    pipeline = app.runtime.pipeline()
    speech = speech_of(utterances, drawn)
    marker = pipeline.marker(f"speaker-{speech.size}")
    recorded = tmp_path_factory.mktemp("speaker") / "speakers.wav"
    recorder = subprocess.Popen(["parecord", "-d", f"{SPEAKER_SINK}.monitor", "--file-format=wav", str(recorded)],
                                env=pulse)  # fmt: skip
    playback = Playback(speakers, marker)
    try:
        playback.start()
        session = pipeline.stream("spa", Task.S2ST, src_lang="eng")
        record = Transcript(MarkedTimeline(marker))
        worker = Translating(session, filled_capture(speech), TerminalView(io.StringIO(), tty=False), record, playback)
        worker.run()
        assert worker.error is None
        playback.wait_until_played(60.0, threading.Event())
    finally:
        playback.close()
        recorder.send_signal(signal.SIGINT)
        recorder.wait(10)
    assert_marked(load_audio(recorded), marker.payload, pipeline.watermarker, "desktop speakers")


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


@FEW
@given(drawn=recordings, chunk_s=st.sampled_from([0.2, 0.5, 1.0]))
def test_websocket_speech_carries_the_session_mark(server, utterances, drawn, chunk_s):
    key, heard = asyncio.run(ws_speech(server.ws_url, speech_of(utterances, drawn), chunk_s))
    pipeline = server.app.runtime.pipeline()
    assert_marked(heard, pipeline.marker(key).payload, pipeline.watermarker, "WebSocket speech")
