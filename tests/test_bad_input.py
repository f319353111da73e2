"""The bad-input suite: every kind of hostile or broken request a visitor can send, over the File, Live, Text and
Verify endpoints, the WebSocket API and the CLI.

One real server for the module (tiny model), driven from outside over Gradio's wire protocol (:mod:`tests.wire`)
and a WebSocket client. Each kind must get one plain sentence (or be served, for input that is odd but valid), no
traceback in the reply or the server's output, one log line for a refusal, and a canary request from another
visitor afterwards must still be served. ``python -m tests.bad_input_table`` prints the kinds and their messages.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import re
import struct
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import REPO
from tests.wire import GradioWire, Reply, Served, serve, wav_bytes

RATE_HZ = 16_000
GRADIO_CACHE = Path(tempfile.gettempdir()) / "gradio"  # where Gradio keeps uploads and outputs
SPEECH, TEXT_ONLY = "Speech + text", "Text only"
HOSTILE_HTML = '<script>alert("x")</script><img src=x onerror=alert(1)>'
#: What no message to a person may contain: a traceback, a server path, a raw framework complaint, live HTML.
MACHINERY = re.compile(r"Traceback|/tmp/|gradio|Exception|list of choices|None$", re.IGNORECASE)
LEAKS = re.compile(f"{MACHINERY.pattern}|<script|<img", re.IGNORECASE)


@dataclass
class Outcome:
    """What the visitor got: ``message`` is the refusal (None when served); ``served`` whether output came back."""

    served: bool
    message: str | None = None
    reply: object = None


@dataclass(frozen=True)
class Material:
    """Real speech and the server, shared by the cases."""

    speech: np.ndarray  # 16 kHz float32 speech, about 2 s
    served: Served
    bombs: dict[str, bytes]  # name → a small file that decodes to far more than the limit


@dataclass(frozen=True)
class Case:
    endpoint: str
    kind: str
    send: Callable[[GradioWire, Material], Outcome]
    #: A phrase the refusal must contain; None: the input is odd but valid and must be served.
    says: str | None


# ---- what is sent ------------------------------------------------------------------------------------------------


def patched(data: bytes, *, channels: int | None = None, rate_hz: int | None = None) -> bytes:
    """A WAV whose header lies: the fmt chunk's channel count or rate replaced, the samples unchanged."""
    out = bytearray(data)
    fmt = out.find(b"fmt ") + 8
    if channels is not None:
        struct.pack_into("<H", out, fmt + 2, channels)
    if rate_hz is not None:
        struct.pack_into("<I", out, fmt + 4, rate_hz)
    return bytes(out)


def data_size(data: bytes, claimed: int) -> bytes:
    """A WAV whose data chunk claims ``claimed`` bytes, whatever it holds."""
    out = bytearray(data)
    struct.pack_into("<I", out, out.find(b"data") + 4, claimed)
    return bytes(out)


def encoded(samples: np.ndarray, rate_hz: int, fmt: str, subtype: str | None = None) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, samples, rate_hz, format=fmt, subtype=subtype)
    return buf.getvalue()


def ffmpeg_silence(seconds: float, suffix: str, codec: list[str]) -> bytes:
    """A small file holding ``seconds`` of silence (a zip bomb in disguise), made by ffmpeg."""
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono", "-t", str(seconds),
           *codec, "-f", suffix, "pipe:1"]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, check=True).stdout


def reply_outcome(reply: Reply) -> Outcome:
    if reply.failed:
        return Outcome(False, reply.error if reply.error is not None else "None", reply)
    return Outcome(True, None, reply)


def file_call(content: bytes | None, name: str = "talk.wav", api: str = "translate_file", path: str | None = None):
    def send(wire: GradioWire, m: Material) -> Outcome:
        where = path if path is not None else (wire.upload(content, name) if content is not None else None)
        data = None if where is None else wire.file(where, name)
        args = [data] if api == "verify" else [data, "eng", "spa", TEXT_ONLY, False]
        return reply_outcome(wire.call(api, args))

    return send


def file_of(make: Callable[[Material], bytes], name: str = "talk.wav", api: str = "translate_file"):
    return lambda wire, m: file_call(make(m), name, api)(wire, m)


def live_call(chunks: Callable[[Material], list[bytes]], name: str = "chunk.wav", tgt="spa", preset="balanced"):
    """A live stream of the given chunk files, then Stop (the downloads)."""

    def send(wire: GradioWire, m: Material) -> Outcome:
        settings = ["eng", tgt, TEXT_ONLY, preset, False, None]
        paths = [wire.upload(c, name) for c in dict.fromkeys(chunks(m))]  # each distinct chunk uploaded once
        ids = {c: wire.file(p, name) for c, p in zip(dict.fromkeys(chunks(m)), paths, strict=True)}
        reply = wire.stream("live_chunk", [[ids[c], *settings] for c in chunks(m)])
        if reply.failed:
            return reply_outcome(reply)
        stop = wire.call("live_stop", [None])
        return reply_outcome(stop) if stop.failed else Outcome(True, None, reply)

    return send


def live_raw(first: list):
    """One streaming call with raw data (paths never uploaded, malformed payloads)."""
    return lambda wire, m: reply_outcome(wire.stream("live_chunk", [first]))


def text_call(text, src="eng", tgt="spa", task=TEXT_ONLY):
    def send(wire: GradioWire, m: Material) -> Outcome:
        outcome = reply_outcome(wire.call("translate_text", [text, src, tgt, task]))
        if outcome.served:  # what comes back is text for a textbox and Markdown: nothing typed runs as HTML
            assert "<script" not in json.dumps(outcome.reply.data[2])
        return outcome

    return send


def ws_call(start: dict | str | None, frames: list[bytes] = (), stop: bool = True, texts: list[str] = ()):
    """A WebSocket client: start message, binary frames, stop; the outcome is the first error message, if any."""

    def send(wire: GradioWire, m: Material) -> Outcome:
        from websockets.exceptions import ConnectionClosed
        from websockets.sync.client import connect

        errors, served = [], False
        with connect(m.served.ws_url, max_size=None, open_timeout=10) as ws:
            if start is not None:
                ws.send(start if isinstance(start, str) else json.dumps(start))
            for frame in frames:
                ws.send(frame)
            for text in texts:
                ws.send(text)
            if stop:
                ws.send(json.dumps({"type": "stop"}))
            try:
                for message in ws:
                    if isinstance(message, str):
                        event = json.loads(message)
                        if event["type"] == "error":
                            errors.append(event["message"])
                        served = served or event["type"] == "downloads"
            except ConnectionClosed:  # closed by the server after an error (policy violation)
                pass
        return Outcome(served, errors[0] if errors else None)

    return send


def pcm16(samples: np.ndarray) -> bytes:
    return (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()


def chunks_of(audio: np.ndarray, seconds: float = 0.5) -> list[np.ndarray]:
    step = int(seconds * RATE_HZ)
    return [audio[i : i + step] for i in range(0, audio.size, step)]


def speech_wav(subtype: str = "PCM_16", fmt: str = "WAV"):
    return lambda m: encoded(m.speech, RATE_HZ, fmt, subtype)


def speech_chunks(subtype: str = "PCM_16", fmt: str = "WAV"):
    return lambda m: [encoded(c, RATE_HZ, fmt, subtype) for c in chunks_of(m.speech)]


START = {"type": "start", "target": "spa", "source": "eng"}
HALF_S = np.zeros(RATE_HZ // 2, np.float32)

CASES: list[Case] = [
    # ---- File ----
    Case("File", "no file", file_call(None), "Upload or record some audio first"),
    Case("File", "empty file", file_call(b""), "empty"),
    Case("File", "text named .wav", file_call(b"just words, not sound\n" * 40), "could not be read"),
    Case("File", "PNG named .mp3", file_call(b"\x89PNG\r\n\x1a\n" + bytes(500), "photo.mp3"), "could not be read"),
    Case("File", "header lies: rate 1 Hz", file_of(lambda m: patched(speech_wav()(m), rate_hz=1)), "sample rate"),
    Case("File", "header lies: 255 channels", file_of(lambda m: patched(speech_wav()(m), channels=255)), "channels"),
    Case("File", "header lies: 0 channels", file_of(lambda m: patched(speech_wav()(m), channels=0)), "read"),
    Case(
        "File",
        "255 channels for real",
        file_of(lambda m: encoded(np.zeros((800, 255)), RATE_HZ, "WAV")),
        "255 channels",
    ),
    Case("File", "truncated WAV", file_of(lambda m: speech_wav()(m)[:600]), "too short"),
    Case("File", "truncated FLAC", file_of(lambda m: speech_wav("PCM_16", "FLAC")(m)[:300], "t.flac"), "read"),
    Case("File", "zip bomb: FLAC, 10 min of silence, stated", file_of(lambda m: m.bombs["flac"], "b.flac"), "10.0 min"),
    Case(
        "File",
        "zip bomb: FLAC, 10 min of silence, unstated",
        file_of(lambda m: m.bombs["flac-stream"], "b.flac"),
        "longer than that",
    ),
    Case(
        "File",
        "header lies: length (2 GB of data claimed)",
        file_of(lambda m: data_size(speech_wav()(m), 2**31 - 16)),
        None,
    ),
    Case("File", "zip bomb: WebM/Opus, 10 min of silence", file_of(lambda m: m.bombs["webm"], "bomb.webm"), "limit is"),
    Case(
        "File",
        "NaN samples",
        file_of(lambda m: encoded(np.full(RATE_HZ, np.nan), RATE_HZ, "WAV", "FLOAT")),
        "invalid samples",
    ),
    Case("File", "silence", file_of(lambda m: encoded(np.zeros(RATE_HZ), RATE_HZ, "WAV")), "silent"),
    Case("File", "complex payload (.npy)", file_call(np.arange(800, dtype=np.complex64).tobytes(), "c.wav"), "read"),
    Case("File", "int8 payload (AIFF)", file_of(speech_wav("PCM_S8", "AIFF"), "s8.aiff"), None),
    Case("File", "int32 payload", file_of(speech_wav("PCM_32")), None),
    Case("File", "float64 payload", file_of(speech_wav("DOUBLE")), None),
    Case("File", "1 channel of speech", file_of(speech_wav()), None),
    Case("File", "path-like file name", file_of(speech_wav(), "../../../etc/cron.d/x.wav"), None),
    Case("File", "path never uploaded", file_call(None, path="/etc/passwd"), "never uploaded"),
    Case("File", "relative path never uploaded", file_call(None, path="../../etc/hosts"), "never uploaded"),
    # ---- Verify ----
    Case("Verify", "no file", file_call(None, api="verify"), "Upload a recording"),
    Case("Verify", "corrupt file", file_call(b"\x00\xff" * 300, api="verify"), "could not be read"),
    Case("Verify", "zip bomb: FLAC", file_of(lambda m: m.bombs["flac"], "bomb.flac", "verify"), "limit is"),
    Case("Verify", "path never uploaded", file_call(None, api="verify", path="/etc/shadow"), "never uploaded"),
    Case("Verify", "float64 recording", file_of(speech_wav("DOUBLE"), api="verify"), None),
    # ---- Live ----
    Case(
        "Live",
        "header lies: rate 1 Hz",
        live_call(lambda m: [patched(wav_bytes(HALF_S, RATE_HZ), rate_hz=1)]),
        "sample rate (1 Hz)",
    ),
    Case(
        "Live",
        "header lies: rate 100 Hz",
        live_call(lambda m: [patched(wav_bytes(HALF_S, RATE_HZ), rate_hz=100)]),
        "sample rate (100 Hz)",
    ),
    Case("Live", "one 60 s chunk", live_call(lambda m: [wav_bytes(np.zeros(60 * RATE_HZ), RATE_HZ)]), "at most 5 s"),
    Case("Live", "a 10 MB chunk", live_call(lambda m: [wav_bytes(np.zeros(5 * 2**20), RATE_HZ)]), "at most 5 s"),
    Case(
        "Live",
        "header lies: 0 channels",
        live_call(lambda m: [patched(wav_bytes(HALF_S, RATE_HZ), channels=0)]),
        "could not be read",
    ),
    Case("Live", "255 channels", live_call(lambda m: [wav_bytes(np.zeros((800, 255)), RATE_HZ)]), "255 channels"),
    Case("Live", "corrupt chunk", live_call(lambda m: [b"RIFF\x00\x00garbage" * 10]), "could not be read"),
    Case("Live", "complex payload (.npy)", live_call(lambda m: [np.zeros(800, np.complex64).tobytes()]), "read"),
    Case("Live", "float64 chunks", live_call(speech_chunks("DOUBLE")), None),
    Case("Live", "int32 chunks", live_call(speech_chunks("PCM_32")), None),
    Case("Live", "int8 chunks (AIFF)", live_call(speech_chunks("PCM_S8", "AIFF"), "c.aiff"), None),
    Case("Live", "truncated chunk", live_call(lambda m: [wav_bytes(HALF_S, RATE_HZ)[:-3001]]), None),
    Case("Live", "1,000 tiny chunks (1 ms)", live_call(lambda m: [wav_bytes(np.zeros(16), RATE_HZ)] * 1000), None),
    Case(
        "Live",
        "path never uploaded",
        live_raw([GradioWire.file("/etc/passwd"), "eng", "spa", TEXT_ONLY, "balanced", False, None]),
        "never uploaded",
    ),
    Case("Live", "malformed payload: fields missing", live_raw([None]), "does not carry"),
    Case(
        "Live",
        "malformed payload: a number for the file",
        live_raw([42, "eng", "spa", TEXT_ONLY, "low", 0, None]),
        "does not carry",
    ),
    Case("Live", "HTML as the target language", live_call(speech_chunks(), tgt=HOSTILE_HTML), "Unknown language"),
    Case("Live", "HTML as the preset", live_call(speech_chunks(), preset=HOSTILE_HTML), "does not offer"),
    # ---- Text ----
    Case("Text", "empty text", text_call(""), "Type some text"),
    Case("Text", "only spaces and newlines", text_call(" \n\t "), "Type some text"),
    Case("Text", "null text", text_call(None), "Type some text"),
    Case("Text", "5,001 characters", text_call("a" * 5001), "at most 5,000"),
    Case("Text", "100,000 characters", text_call("word " * 20_000), "at most 5,000"),
    Case("Text", "control characters", text_call("Hello\x00\x07\x1b[31m\u200b\ufeff world\x7f"), None),
    Case("Text", "right-to-left override", text_call("Good \u202emorning\u202c, \u2067friends\u2069"), None),
    Case("Text", "injected HTML in the text", text_call(HOSTILE_HTML), None),
    Case("Text", "injected HTML as the source", text_call("Hello", src=HOSTILE_HTML), "Unknown language"),
    Case("Text", "injected HTML as the target", text_call("Hello", tgt=HOSTILE_HTML), "Unknown language"),
    Case("Text", "injected HTML as the output", text_call("Hello", task=HOSTILE_HTML), "does not offer"),
    Case("Text", "unknown target code", text_call("Hello", tgt="xyz"), "Unknown language 'xyz'"),
    Case("Text", "target that cannot be spoken", text_call("Hello", tgt="ell", task=SPEECH), "speech output"),
    Case("Text", "a list for the text", text_call(["Hello", {"a": 1}]), None),
    Case(
        "Text",
        "malformed payload: fields missing",
        lambda wire, m: reply_outcome(wire.call("translate_text", ["Hello"])),
        "does not carry",
    ),
    # ---- WebSocket ----
    Case("WebSocket", "first message not JSON", ws_call("{not json", stop=False), "not valid JSON"),
    Case(
        "WebSocket",
        "audio before the start message",
        ws_call(None, frames=[b"\x00\x00"], stop=False),
        "start message before any audio",
    ),
    Case("WebSocket", "unknown field", ws_call({**START, "evil": 1}, stop=False), "Unknown field"),
    Case("WebSocket", "rate 1 Hz", ws_call({**START, "sample_rate_hz": 1}, stop=False), "sample rate (1 Hz)"),
    Case("WebSocket", "complex64 format", ws_call({**START, "format": "complex64"}, stop=False), "format must"),
    Case("WebSocket", "HTML as the target", ws_call({**START, "target": HOSTILE_HTML}, stop=False), "Unknown language"),
    Case("WebSocket", "odd-length int16 frame", ws_call(START, frames=[b"\x00\x00\x01"], stop=False), "whole number"),
    Case("WebSocket", "a 10 MB frame", ws_call(START, frames=[bytes(10 * 2**20)]), "at most 5 s"),
    Case("WebSocket", "an 8 KB text message", ws_call(START, texts=["x" * 8192], stop=False), "at most 4096 bytes"),
    Case("WebSocket", "10,000 tiny frames (1 ms)", ws_call(START, frames=[bytes(32)] * 10_000), None),
    Case(
        "WebSocket",
        "NaN float32 frames",
        ws_call({**START, "format": "float32"}, frames=[np.full(8000, np.nan, "<f4").tobytes()]),
        None,
    ),
]


def assert_plain(message: str | None, rendered: bool = True) -> None:
    """One sentence a person can read: words, short, ending like a sentence, nothing of the machinery; in what
    the page shows (``rendered``), nothing the visitor typed that could run as HTML (the WebSocket's JSON is for
    programs and carries text as it was sent)."""
    assert message and message.strip(), "refused without words"
    assert len(message) <= 240 and message.count("\n") == 0, message
    assert not (LEAKS if rendered else MACHINERY).search(message), message
    assert message.rstrip().endswith((".", "?")), message


# ---- the server -----------------------------------------------------------------------------------------------


def bad_input_settings(tiny_settings, port: int):
    """Limits small enough for the suite to be quick: a 2-minute file limit, 20 MB uploads."""
    from compose.settings import WebSettings

    engine = dataclasses.replace(tiny_settings.engine, max_audio_s=120.0)
    return dataclasses.replace(tiny_settings, engine=engine, web=WebSettings(port=port, max_file_mb=20))


def make_material(served: Served, speech: np.ndarray) -> Material:
    bombs = {
        "flac": encoded(np.zeros(600 * 8000, np.int16), 8000, "FLAC"),  # its header states the length
        "flac-stream": ffmpeg_silence(600, "flac", ["-c:a", "flac"]),  # written to a pipe: no length stated
        "webm": ffmpeg_silence(600, "webm", ["-c:a", "libopus", "-b:a", "6k"]),
    }
    return Material(speech, served, bombs)


@pytest.fixture(scope="module")
def material(tiny_settings, hello_audio, tmp_path_factory):
    served = serve(bad_input_settings(tiny_settings, 7922), tmp_path_factory.mktemp("bad-input-work"))
    yield make_material(served, hello_audio)
    served.close()


def canary(material: Material) -> None:
    """Another visitor is still served: a text request gets its translation."""
    wire = GradioWire(material.served.url)
    try:
        reply = wire.call("translate_text", ["Good morning.", "eng", "spa", TEXT_ONLY], timeout_s=60)
    finally:
        wire.close()
    assert reply.ok and reply.data[0], reply.error


def run_case(case: Case, material: Material) -> Outcome:
    wire = GradioWire(material.served.url)
    try:
        return case.send(wire, material)
    finally:
        wire.close()


@pytest.mark.parametrize("case", CASES, ids=[f"{c.endpoint}: {c.kind}" for c in CASES])
def test_bad_input_gets_a_plain_sentence_and_the_server_serves_on(case, material, capfd, caplog):
    caplog.set_level(logging.INFO, logger="ui")
    capfd.readouterr()
    outcome = run_case(case, material)
    if case.says is None:
        assert outcome.served and outcome.message is None, outcome.message
    else:
        assert not outcome.served or case.endpoint == "WebSocket", "a refusal was expected"
        assert_plain(outcome.message, rendered=case.endpoint != "WebSocket")
        assert case.says.lower() in outcome.message.lower(), outcome.message
        refusals = [r for r in caplog.records if r.getMessage().startswith("refused")]
        assert len(refusals) == 1 and refusals[0].exc_info is None  # one line in the log, no traceback
    canary(material)
    assert "Traceback" not in capfd.readouterr().err  # nothing in the server's output but one-line notes


def test_path_like_names_stay_in_the_server_folders(material):
    wire = GradioWire(material.served.url)
    try:
        reply = wire.call("translate_file", [wire.file(wire.upload(speech_wav()(material), "../../x.wav"), "x.wav"),
                                             "eng", "spa", TEXT_ONLY, False])  # fmt: skip
    finally:
        wire.close()
    assert reply.ok
    folders = [material.served.app.work_dir.resolve(), Path(GRADIO_CACHE).resolve()]
    paths = [Path(f["path"]) for f in reply.data[3]["value"]]  # the downloads box's update (shown with files)
    assert paths and all(p.resolve() == p and any(p.is_relative_to(f) for f in folders) for p in paths), paths
    assert all(p.name.startswith("x.") for p in paths)  # the name's path part is dropped


# ---- the CLI ----------------------------------------------------------------------------------------------------

CLI_FILES: dict[str, tuple[Callable[[np.ndarray], bytes] | None, str]] = {
    # name → (content, or None for a path that does not exist; phrase of the refusal)
    "missing.wav": (None, "not found"),
    "empty.wav": (lambda s: b"", "empty"),
    "notes.wav": (lambda s: b"words, not sound\n" * 40, "could not be read"),
    "liar.wav": (lambda s: patched(encoded(s, RATE_HZ, "WAV"), rate_hz=1), "sample rate"),
    "nan.wav": (lambda s: encoded(np.full(RATE_HZ, np.nan), RATE_HZ, "WAV", "FLOAT"), "invalid samples"),
    "quiet.wav": (lambda s: encoded(np.zeros(RATE_HZ), RATE_HZ, "WAV"), "silent"),
}


def run_cli_on_bad_files(folder: Path, speech: np.ndarray, cache_dir: Path) -> subprocess.CompletedProcess:
    """One run of the CLI over every bad file and, last, a good one (the canary: the run goes on after errors)."""
    for name, (make, _) in CLI_FILES.items():
        if make is not None:
            (folder / name).write_bytes(make(speech))
    (folder / "good.wav").write_bytes(encoded(speech, RATE_HZ, "WAV"))
    inputs = [str(folder / name) for name in [*CLI_FILES, "good.wav"]]
    options = ["--model", "tiny", "--cache-dir", str(cache_dir), "--device", "cpu", "--quiet"]
    options += ["--task", "s2tt", "--tgt", "spa", "--out", str(folder / "out")]
    cmd = [sys.executable, "app.py", "translate", *inputs, *options]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)


def cli_message(proc: subprocess.CompletedProcess, path: Path) -> str:
    [line] = [line for line in proc.stderr.splitlines() if line.startswith(str(path))]
    return line.split(": error: ", 1)[1]


@pytest.fixture(scope="module")
def cli_run(hello_audio, tmp_path_factory, tiny_options):
    folder = tmp_path_factory.mktemp("cli-bad")
    return run_cli_on_bad_files(folder, hello_audio, tiny_options.cache_dir), folder


@pytest.mark.parametrize("name", list(CLI_FILES))
def test_cli_bad_file_gets_one_line_and_the_run_goes_on(name, cli_run):
    proc, folder = cli_run
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    message = cli_message(proc, folder / name)
    assert CLI_FILES[name][1] in message.lower() and len(message) <= 240, message
    assert (folder / "out" / "good.spa.txt").read_text().strip()  # the good file after it was translated


@pytest.mark.parametrize(
    ("args", "says"),
    [(["--tgt", HOSTILE_HTML], "unknown language"), (["--tgt", "ell", "--task", "s2st"], "speech output"),
     (["--task", "t2tt", "--tgt", "spa"], "--src is required")],
)  # fmt: skip
def test_cli_bad_usage_gets_one_line_and_status_2(args, says, tmp_path):
    (tmp_path / "a.wav").write_bytes(b"")
    cmd = [sys.executable, "app.py", "translate", str(tmp_path / "a.wav"), *args, "--model", "tiny"]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    [line] = proc.stderr.strip().splitlines()
    assert says in line.lower(), line
