"""Desktop live mode on real audio plumbing.

A private PulseAudio daemon with two null sinks stands in for the sound card: espeak-ng speech is played into
``parley_mic`` (its monitor is the microphone) and the translation is recorded from the monitor of
``parley_speakers``. Two sinks rather than one, so that whatever is recorded from the speakers can only have been
played by Parley. PortAudio reaches the daemon through ALSA's pulse plugin, as it does on a Linux desktop.
"""

from __future__ import annotations

import fcntl
import io
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from engine.audio import SAMPLE_RATE_HZ, load_audio
from engine.tasks import Task
from engine.transcript import Transcript
from safety.marking import MarkedTimeline
from safety.watermark import create_watermarker
from tests.conftest import REPO, TEST_CACHE, espeak, parse_subtitles
from ui.audio_devices import AudioDevice, CaptureBuffer, DeviceError
from ui.desktop import DesktopOptions, StopRequest, Translating, wait_for_stop
from ui.terminal import Readout, TerminalView

MIC_SINK, SPEAKER_SINK = "parley_mic", "parley_speakers"
#: Held while a PulseAudio daemon starts: machine-wide, so the same path whatever TMPDIR says.
PULSE_START_LOCK = Path("/tmp/parley-pulse.lock")
#: Model loading and the first decode on two busy cores take seconds; a stuck process takes forever.
START_TIMEOUT_S = 120.0


@pytest.fixture(scope="module")
def pulse(tmp_path_factory) -> dict[str, str]:
    """A PulseAudio daemon of the test's own (its own HOME and runtime folder), stopped at teardown; returns the
    environment that points clients at it."""
    for tool in ("pulseaudio", "pactl", "pacmd", "paplay", "parecord"):
        if shutil.which(tool) is None:
            pytest.skip(f"PulseAudio cannot start: {tool} is not installed (scripts/setup.sh installs it)")
    home = tmp_path_factory.mktemp("pulse")
    runtime = home / "run"
    runtime.mkdir(mode=0o700)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULSE_")}
    env |= {
        "HOME": str(home),
        "XDG_RUNTIME_DIR": str(runtime),
        "XDG_CONFIG_HOME": str(home / "config"),
        "PULSE_RUNTIME_PATH": str(runtime / "pulse"),
        "PULSE_SERVER": f"unix:{runtime / 'pulse' / 'native'}",
    }
    modules = [
        "module-native-protocol-unix auth-anonymous=1",
        "module-cli-protocol-unix",  # for pacmd, which can pull a stream away as an unplugged device does
        f"module-null-sink sink_name={MIC_SINK}",
        f"module-null-sink sink_name={SPEAKER_SINK}",
        "module-always-sink",
    ]
    log = (home / "pulseaudio.log").open("w")
    # One daemon starts at a time on this machine, whoever's test run it belongs to (they must not race to start).
    starting = PULSE_START_LOCK.open("w")
    fcntl.flock(starting, fcntl.LOCK_EX)
    # Not daemonized, so the fixture owns the process; as root PulseAudio warns but runs for the calling user.
    daemon = subprocess.Popen(
        ["pulseaudio", "--daemonize=no", "-n", "--exit-idle-time=-1", "--disallow-exit", "--system=false",
         "--log-target=stderr", *(f"--load={m}" for m in modules)],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 15
        while subprocess.run(["pactl", "info"], env=env, capture_output=True).returncode != 0:
            if daemon.poll() is not None or time.monotonic() > deadline:
                reason = (home / "pulseaudio.log").read_text(errors="replace").strip().splitlines()[-3:]
                pytest.skip(f"PulseAudio cannot start here: {' / '.join(reason) or 'no answer'}")
            time.sleep(0.2)
        subprocess.run(["pactl", "set-default-source", f"{MIC_SINK}.monitor"], env=env, check=True)
        subprocess.run(["pactl", "set-default-sink", SPEAKER_SINK], env=env, check=True)
        starting.close()  # started: the next may start
        yield env
    finally:
        starting.close()
        daemon.terminate()
        try:
            daemon.wait(10)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
        log.close()


def desktop(env: dict[str, str], *args: str, stdout=subprocess.PIPE, stderr=subprocess.PIPE) -> subprocess.Popen:
    env = env | {"HF_HUB_OFFLINE": "1", "PARLEY_CACHE_DIR": str(TEST_CACHE), "PARLEY_DEVICE": "cpu"}
    cmd = [sys.executable, "app.py", "--desktop", *args]
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=stdout, stderr=stderr, text=True)


def wait_for(path: Path, pattern: str, proc: subprocess.Popen, timeout_s: float = START_TIMEOUT_S) -> str:
    """The process's stdout (a file) once it matches ``pattern``; fails if the process ends or time runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        text = path.read_text(encoding="utf-8", errors="replace")
        if re.search(pattern, text, re.MULTILINE):
            return text
        if proc.poll() is not None:
            pytest.fail(f"desktop mode exited ({proc.returncode}) before printing {pattern!r}:\n{text}")
        time.sleep(0.2)
    proc.kill()
    pytest.fail(f"no {pattern!r} after {timeout_s:.0f} s:\n{path.read_text(errors='replace')}")


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> Path:
    """About four seconds of English at 22.05 kHz."""
    return espeak("Good morning and welcome to the live translation test.", tmp_path_factory.mktemp("d") / "s.wav")


@pytest.fixture(scope="module")
def long_speech(tmp_path_factory) -> Path:
    """About sixteen seconds of English in three sentences: enough translated speech for the watermark's payload
    (one period is 1.92 s; the tiny model says less than half of what it hears)."""
    text = (
        "Good morning and welcome to the live translation test. Today we will talk for a little while longer, so "
        "that the translation has plenty to say about the weather, the trains and the market. After that, we will "
        "read the news of the day and wish everybody a pleasant evening."
    )
    return espeak(text, tmp_path_factory.mktemp("d") / "long.wav")


def test_live_session_captions_speaks_and_saves_on_ctrl_c(pulse, long_speech, tmp_path):
    out = tmp_path / "session"
    stdout, stderr = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    recorded = tmp_path / "speakers.wav"
    recorder = subprocess.Popen(
        ["parecord", "-d", f"{SPEAKER_SINK}.monitor", "--file-format=wav", str(recorded)], env=pulse
    )
    with stdout.open("w") as out_file, stderr.open("w") as err_file:
        proc = desktop(pulse, "--model", "tiny", "--tgt", "spa", "--src", "eng", "--input-device", "pulse",
                       "--output-device", "pulse", "--out", str(out), stdout=out_file, stderr=err_file)  # fmt: skip
        try:
            wait_for(stdout, r"^Listening on 'pulse' \(\d+ Hz\), speaking on 'pulse'", proc)
            subprocess.run(["paplay", "-d", MIC_SINK, str(long_speech)], env=pulse, check=True, timeout=60)
            wait_for(stdout, r"^segment [\d.]+-[\d.]+ s: \S", proc, timeout_s=60)  # the pause after it ends it
            proc.send_signal(signal.SIGINT)
            assert proc.wait(60) == 0, stderr.read_text()
        finally:
            proc.kill()
            recorder.send_signal(signal.SIGINT)
            recorder.wait(10)
    printed, errors = stdout.read_text(), stderr.read_text()
    assert "Traceback" not in errors
    assert re.search(r"^committed: \S", printed, re.MULTILINE) and re.search(r"^status: .*behind", printed, re.M)
    assert f"Session written to {out}" in printed

    cues = parse_subtitles((out / "translation.srt").read_text(encoding="utf-8"))
    assert cues and all(text.strip() for _, _, text in cues)
    assert parse_subtitles((out / "translation.vtt").read_text(encoding="utf-8")) == cues
    assert parse_subtitles((out / "transcript.srt").read_text(encoding="utf-8"))  # --src adds the transcript
    assert (out / "translation.txt").read_text(encoding="utf-8").strip()
    saved, rate = sf.read(out / "translation.wav")
    assert rate == SAMPLE_RATE_HZ and np.abs(saved).max() > 0.01

    played, _ = sf.read(recorded, always_2d=True)  # only Parley plays into the speakers' sink
    assert np.sqrt(np.mean(played**2)) > 1e-3, "no translated speech reached the output device"
    # The speakers' recording, resampled by PulseAudio on the way, and the saved file both carry the run's mark.
    for path in (recorded, out / "translation.wav"):
        found = create_watermarker().detect(load_audio(path), SAMPLE_RATE_HZ)
        assert found.detected and found.payload is not None, f"no watermark in {path.name}"


def pull_our_stream(env: dict[str, str], pid: int) -> None:
    """Kill the PulseAudio source output of process ``pid``, as unplugging the device does; PortAudio ends it."""
    ours = [
        block.split()[0].lstrip("#")
        for block in subprocess.run(
            ["pactl", "list", "source-outputs"], env=env, capture_output=True, text=True, check=True
        ).stdout.split("Source Output ")
        if f'application.process.id = "{pid}"' in block
    ]
    assert len(ours) == 1
    subprocess.run(["pacmd", "kill-source-output", ours[0]], env=env, check=True)


def suspend_the_microphone(env: dict[str, str], pid: int) -> None:
    """Suspend the microphone's sink: the stream stays open and silently delivers nothing, neither calling back
    nor ending (what ALSA's pulse plugin can also do when a device goes away)."""
    subprocess.run(["pactl", "suspend-sink", MIC_SINK, "1"], env=env, check=True)


@pytest.mark.parametrize("lose", [pull_our_stream, suspend_the_microphone], ids=["unplugged", "stalled"])
def test_lost_microphone_is_a_plain_error_and_the_session_is_kept(pulse, speech, tmp_path, lose):
    out, stdout = tmp_path / "session", tmp_path / "stdout.txt"
    with stdout.open("w") as out_file:
        proc = desktop(pulse, "--model", "tiny", "--task", "asr", "--src", "eng", "--expressive", "--out", str(out),
                       stdout=out_file)  # fmt: skip
        try:
            wait_for(stdout, r"^Listening on 'default'", proc)
            subprocess.run(["paplay", "-d", MIC_SINK, str(speech)], env=pulse, check=True, timeout=30)
            lose(pulse, proc.pid)
            _, errors = proc.communicate(timeout=60)
        finally:
            proc.kill()
            subprocess.run(["pactl", "suspend-sink", MIC_SINK, "0"], env=pulse, check=True)
    assert proc.returncode == 1
    assert "Traceback" not in errors
    ours_lines = [line for line in errors.splitlines() if line.startswith("error:")]
    assert ours_lines == ["error: The input device 'default' stopped delivering audio (unplugged?)."]
    printed = stdout.read_text()
    assert f"Session written to {out}" in printed
    assert (out / "transcript.srt").exists() and not (out / "translation.srt").exists()  # asr: a transcript only


def test_list_devices(pulse):
    proc = desktop(pulse, "--list-devices")
    printed, errors = proc.communicate(timeout=60)
    assert proc.returncode == 0, errors
    assert "Input devices:" in printed and "Output devices:" in printed
    assert re.search(r"^ \*\s+\d+\s+default\s+\(ALSA", printed, re.MULTILINE)  # the default is marked


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--input-device", "no such microphone", "error: No input device matching 'no such microphone'."),
        ("--output-device", "99", "error: There is no audio device 99."),
    ],
)
def test_bad_device_is_one_plain_line(pulse, flag, value, message):
    proc = desktop(pulse, "--model", "tiny", "--tgt", "spa", flag, value)
    _, errors = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert errors.strip().startswith(message) and len(errors.strip().splitlines()) == 1, errors


# ---- the pieces, on plain data ----------------------------------------------------------------------------------


def test_capture_buffer_skips_when_full_and_reports_it():
    buffer = CaptureBuffer(capacity_frames=300)
    blocks = [np.full(100, i, dtype=np.float32) for i in range(6)]
    accepted = [buffer.offer(block) for block in blocks[:5]]
    assert accepted == [True, True, True, False, False]  # the reader fell behind: two blocks could not wait
    assert buffer.skipped_frames == 200 and buffer.offered_frames == 500
    taken = buffer.take(timeout_s=0)
    assert [b.skipped_before for b in taken] == [0, 0, 0] and buffer.queued_frames == 0
    assert buffer.offer(blocks[5])  # the next block that fits carries the gap
    buffer.offer(np.zeros(400, dtype=np.float32))  # too big to ever fit: skipped, and handed over at close
    buffer.close()
    rest = buffer.take(timeout_s=0)
    assert [(b.skipped_before, b.samples.size) for b in rest] == [(200, 100), (400, 0)]
    assert buffer.exhausted and not buffer.offer(blocks[0])


class FakeSession:
    """What :class:`Translating` needs from a streaming session: records what it was fed."""

    def __init__(self) -> None:
        self.pushed: list[tuple[int, int]] = []
        self.source_time_s = 0.0
        self.finished = False

    def push(self, samples: np.ndarray, rate: int) -> list:
        self.pushed.append((samples.size, rate))
        self.source_time_s += samples.size / rate
        return []

    def finish(self) -> list:
        self.finished = True
        return []


class FakeCapture:
    """What :class:`Translating` and :func:`wait_for_stop` need from a capture, without a sound card."""

    def __init__(self, rate: int, capacity_frames: int) -> None:
        self.device = AudioDevice(0, "fake", rate)
        self.buffer = CaptureBuffer(capacity_frames)
        self.lost = False

    def check(self) -> None:
        if self.lost:
            raise DeviceError("The input device 'fake' stopped delivering audio (unplugged?).")

    @property
    def captured_s(self) -> float:
        return self.buffer.offered_frames / self.device.sample_rate_hz

    @property
    def skipped_s(self) -> float:
        return self.buffer.skipped_frames / self.device.sample_rate_hz


def test_duration_and_a_lost_device_end_the_wait():
    class Worker:
        def is_alive(self) -> bool:
            return True

    capture = FakeCapture(rate=1000, capacity_frames=1000)
    options = DesktopOptions(tgt_lang="spa", task=Task.S2TT, duration_s=0.3)
    started = time.monotonic()
    assert wait_for_stop(options, StopRequest(), capture, None, Worker()) is None
    assert 0.3 <= time.monotonic() - started < 2.0
    capture.lost = True
    failure = wait_for_stop(replace(options, duration_s=None), StopRequest(), capture, None, Worker())
    assert isinstance(failure, DeviceError)


def test_skipped_audio_is_shown_and_replaced_by_silence_of_the_same_length():
    capture, session, screen = FakeCapture(rate=1000, capacity_frames=2000), FakeSession(), io.StringIO()
    for _ in range(5):  # 5 s offered while the model is busy: 2 s fit, 3 s are skipped
        capture.buffer.offer(np.ones(1000, dtype=np.float32))
    capture.buffer.offer(np.ones(0, dtype=np.float32))
    capture.buffer.close()
    view, record = TerminalView(screen, tty=False), Transcript(MarkedTimeline(lambda audio, at: audio))
    worker = Translating(session, capture, view, record, None)
    worker.run()
    assert worker.error is None and session.finished
    assert sum(n for n, _ in session.pushed) == 5000  # the session's clock still matches the speaker's
    printed = screen.getvalue()
    assert "warning: skipped 3.0 s of audio: the model fell 2.0 s behind (silence stands in for it)" in printed
    assert "warning: the model is falling behind" in printed and "skipped 3.0 s" in printed


def test_terminal_shows_partial_text_dimmed_and_committed_text_plain():
    screen = io.StringIO()
    view = TerminalView(screen, tty=True)
    view.status(Readout(behind_s=0.4, heard_s=3.0, skipped_s=0.0))
    view.committed("Hola")
    view.partial("a todos")
    live = screen.getvalue().split(TerminalView.CLEAR_LINE)[-1]  # the line as it stands after the last redraw
    assert live == f" 0.4 s behind · heard 3 s │ Hola{TerminalView.DIM} a todos{TerminalView.RESET}"
    view.flag("Possible toxicity was masked.")
    view.segment(0.5, 2.0, "Hola a todos.", None)
    assert (
        "⚑ Possible toxicity was masked." in screen.getvalue()
        and "[   0.5–   2.0 s] Hola a todos.\n" in screen.getvalue()
    )

    plain = io.StringIO()
    view = TerminalView(plain, tty=False)
    view.committed(" Hola")
    view.partial("a todos")
    view.flag("Possible toxicity was masked.")
    assert plain.getvalue().splitlines() == [
        "committed: Hola",
        "partial: a todos",
        "flag: Possible toxicity was masked.",
    ]
    assert "\033" not in plain.getvalue()
