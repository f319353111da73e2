"""Desktop live mode: system microphone → :class:`~engine.streaming.StreamingSession` → speakers, captions in the
terminal, no browser.

    python app.py --desktop --tgt spa                                  # default microphone and speakers
    python app.py --desktop --list-devices
    python app.py --desktop --input-device 3 --output-device "USB" --tgt fra --latency low

Threads, and why each exists:

* PortAudio's input callback (:class:`Capture`) copies each block into a bounded :class:`CaptureBuffer` and returns
  at once: it never waits for the model. When the buffer is full (the model is ``max_backlog_s`` behind) the block is
  skipped and counted; the skip is shown on screen, reported at the end, and replaced by silence of the same length,
  so caption times stay on the speaker's clock.
* One worker thread (:class:`Translating`) takes audio from the buffer and pushes it into the session at the
  device's own rate (the session resamples to 16 kHz), then hands the events to the view, the record and playback.
* PortAudio's output callback (:class:`Playback`) plays translated speech, resampled from 16 kHz to the output
  device's rate, as soon as it is committed, and silence when nothing is waiting.
* The main thread waits for Ctrl-C, SIGTERM, ``--duration``, a device that stops, or a worker error. It then stops
  the capture, lets the worker translate what was already captured, flushes the last segment with ``finish()``,
  writes the session folder (:class:`SessionRecord`) and lets the playback finish (a second Ctrl-C skips that).

Exit status: 0 on a clean stop; 1 when an audio device is missing, unusable or stops mid-session (what was
translated until then is still written); 2 for bad usage or a model that cannot be loaded.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import shutil
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, ModuleType
from typing import TYPE_CHECKING, Any, TextIO

import numpy as np

from engine.audio import SAMPLE_RATE_HZ, resample, write_wav
from engine.languages import Capability, get_language
from engine.options import EngineOptions
from engine.subtitles import Cue, to_srt, to_vtt
from engine.tasks import Task

if TYPE_CHECKING:
    from engine.streaming import SegmentEnd, StreamEvent, StreamingSession

log = logging.getLogger(__name__)

#: Marks 16 kHz speech that starts at the given sample of its output's timeline (a safety.marking.SpeechMarker).
SpeechMarking = Callable[[np.ndarray, int], np.ndarray]

DESKTOP_TASKS = (Task.S2ST, Task.S2TT, Task.ASR)
#: Seconds behind the speaker above which the readout says the model is not keeping up.
FALLING_BEHIND_S = 3.0
#: Seconds between status lines when stdout is not a terminal (a terminal gets a live line instead).
PLAIN_STATUS_EVERY_S = 5.0
#: Shortest time between two "audio skipped" warnings; the readout and the summary always show the total.
SKIP_WARNING_EVERY_S = 5.0
#: How often the main thread checks for a stop, a lost device or a worker error.
POLL_S = 0.1
#: Head start given to a piece of speech scheduled on an idle speaker: time to mark and resample it before the
#: callback reaches its start (marking a piece takes milliseconds).
SCHEDULE_AHEAD_S = 0.1
#: An input stream that delivers nothing for this long counts as stopped: some backends (ALSA's PulseAudio plugin)
#: neither call back nor end the stream when the device goes away or is suspended.
INPUT_STALL_S = 5.0
#: The first block may take longer (measured up to 1.8 s through ALSA's PulseAudio plugin on an idle machine).
INPUT_START_LIMIT_S = 20.0
#: Longest wait for PortAudio to close a stream whose device is gone; after it the process exits without it.
CLOSE_LIMIT_S = 5.0

EXIT_OK, EXIT_DEVICE, EXIT_USAGE = 0, 1, 2


class DeviceError(RuntimeError):
    """An audio device is missing, refuses the settings, or stopped; the message is meant for the person."""


@dataclass(frozen=True)
class DesktopOptions:
    """What one desktop session does, beyond the engine's own options (:class:`~engine.options.EngineOptions`)."""

    #: Language to translate into (code or name); not used by asr.
    tgt_lang: str | None
    #: Spoken language; required for asr, adds a source transcript per segment otherwise.
    src_lang: str | None = None
    #: s2st speaks the translation, s2tt writes it, asr transcribes.
    task: Task = Task.S2ST
    #: A preset name from :data:`engine.streaming.PRESETS`.
    latency: str = "balanced"
    #: PortAudio device index or name substring; None is the system default.
    input_device: str | None = None
    output_device: str | None = None
    #: Keep the speaker's pauses, pace, pitch, loudness and voice (the expressive stage).
    expressive: bool = False
    #: Folder the session's text, subtitles and audio are written to.
    out_dir: Path = field(default_factory=lambda: Path("out") / time.strftime("desktop-%Y%m%d-%H%M%S"))
    #: Stop on its own after this many seconds of listening; None listens until Ctrl-C.
    duration_s: float | None = None
    #: Captured audio allowed to wait for the model, in seconds; beyond it, audio is skipped (and reported).
    max_backlog_s: float = 30.0
    #: Longest wait, in seconds, for translated speech to finish playing after a stop.
    max_play_tail_s: float = 30.0

    def __post_init__(self) -> None:
        if self.task not in DESKTOP_TASKS:
            raise ValueError(f"the desktop mode takes speech: --task {', '.join(t.value for t in DESKTOP_TASKS)}")
        if self.task is Task.ASR and not self.src_lang:
            raise ValueError("--src is required for asr (the language spoken)")
        if self.task is not Task.ASR and not self.tgt_lang:
            raise ValueError("--tgt is required (the language to translate into)")
        if self.duration_s is not None and self.duration_s <= 0:
            raise ValueError("--duration must be positive")
        if self.max_backlog_s <= 0 or self.max_play_tail_s < 0:
            raise ValueError("max_backlog_s must be positive and max_play_tail_s non-negative")
        # Cheap checks (a table lookup) before minutes of model loading; UnknownLanguageError is a ValueError.
        if self.task is not Task.ASR:
            get_language(self.tgt_lang, Capability.SPEECH_OUTPUT if self.task.speech_output else Capability.TEXT)
        if self.src_lang:
            get_language(self.src_lang, Capability.TEXT)


# ---- devices ----------------------------------------------------------------------------------------------------


def portaudio() -> ModuleType:
    """``sounddevice``, imported on first use: importing it starts PortAudio, which probes every sound card."""
    try:
        import sounddevice
    except OSError as e:  # the wheel is there but the PortAudio library is not
        raise DeviceError(f"PortAudio is not available ({e}); install libportaudio2.") from e
    return sounddevice


@dataclass(frozen=True)
class AudioDevice:
    index: int
    name: str
    #: The device's native rate: capture and playback run at it, the engine resamples.
    sample_rate_hz: int


def find_device(spec: str | None, kind: str) -> AudioDevice:
    """The ``kind`` ("input" or "output") device named by ``spec`` (an index or part of a name), or the default."""
    sd = portaudio()
    query: int | str | None = int(spec) if spec is not None and spec.strip().isdigit() else spec
    try:
        info = sd.query_devices(query, kind)
    except sd.PortAudioError as e:
        if query is None:
            raise DeviceError(f"No {kind} device found. Connect one, or see --list-devices.") from e
        raise DeviceError(f"There is no audio device {spec}. See --list-devices.") from e
    except ValueError as e:  # no match, several matches, or a device without this direction
        raise DeviceError(f"{e}. See --list-devices.") from e
    device = AudioDevice(int(info["index"]), str(info["name"]), int(info["default_samplerate"]))
    check = sd.check_input_settings if kind == "input" else sd.check_output_settings
    try:
        check(device=device.index, samplerate=device.sample_rate_hz, channels=1, dtype="float32")
    except sd.PortAudioError as e:
        raise DeviceError(
            f"The {kind} device {device.name!r} refuses mono audio at its own rate ({device.sample_rate_hz} Hz): {e}"
        ) from e
    return device


def describe_devices() -> str:
    """Every device PortAudio sees, with its index (for --input-device/--output-device); * marks the defaults."""
    sd = portaudio()
    devices = sd.query_devices()
    if len(devices) == 0:
        return "No audio devices found."
    defaults = set()
    for kind in ("input", "output"):
        try:
            defaults.add((kind, int(sd.query_devices(kind=kind)["index"])))
        except sd.PortAudioError:
            continue  # no default of this kind
    hostapis = [api["name"] for api in sd.query_hostapis()]
    lines = []
    for kind in ("input", "output"):
        lines.append(f"{kind.capitalize()} devices:")
        for info in devices:
            channels = info[f"max_{kind}_channels"]
            if channels < 1:
                continue
            mark = "*" if (kind, info["index"]) in defaults else " "
            lines.append(
                f" {mark} {info['index']:3d}  {info['name']}  ({hostapis[info['hostapi']]}, {channels} ch, "
                f"{info['default_samplerate']:.0f} Hz)"
            )
    return "\n".join(lines)


# ---- capture ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CapturedBlock:
    #: Mono float32 samples at the capture rate.
    samples: np.ndarray
    #: Frames skipped just before this block because the buffer was full; the reader puts silence in their place.
    skipped_before: int = 0


class CaptureBuffer:
    """Bounded hand-over from the audio callback to the model thread.

    :meth:`offer` is called from PortAudio's callback and never waits for the reader (the lock is held only for a
    few list operations). When ``capacity_frames`` are already waiting, the new block is skipped: its length is added
    to :attr:`skipped_frames` and travels with the next block that fits, so nothing is lost without a trace.
    """

    def __init__(self, capacity_frames: int) -> None:
        if capacity_frames < 1:
            raise ValueError("capacity_frames must be at least 1")
        self.capacity_frames = capacity_frames
        self._ready = threading.Condition(threading.Lock())
        self._blocks: deque[CapturedBlock] = deque()
        self._queued = 0
        self._gap = 0  # skipped frames not yet attached to a block
        self._closed = False
        self.offered_frames = 0
        self.skipped_frames = 0

    def offer(self, samples: np.ndarray) -> bool:
        """Queue a block (the caller's copy); False when it was skipped because the reader is too far behind."""
        frames = samples.shape[0]
        with self._ready:
            if self._closed:
                return False
            self.offered_frames += frames
            if self._queued + frames > self.capacity_frames:
                self._gap += frames
                self.skipped_frames += frames
                return False
            self._blocks.append(CapturedBlock(samples, self._gap))
            self._queued += frames
            self._gap = 0
            self._ready.notify()
            return True

    def take(self, timeout_s: float) -> list[CapturedBlock]:
        """Everything waiting, oldest first; waits up to ``timeout_s`` when nothing is. Empty once closed and
        drained."""
        with self._ready:
            if not self._blocks and not self._closed:
                self._ready.wait(timeout_s)
            blocks = list(self._blocks)
            self._blocks.clear()
            self._queued = 0
            return blocks

    def close(self) -> None:
        """No more blocks; a skip at the very end is handed over as an empty block so its length is not lost."""
        with self._ready:
            if self._closed:
                return
            self._closed = True
            if self._gap:
                self._blocks.append(CapturedBlock(np.zeros(0, dtype=np.float32), self._gap))
                self._gap = 0
            self._ready.notify_all()

    @property
    def exhausted(self) -> bool:
        with self._ready:
            return self._closed and not self._blocks

    @property
    def queued_frames(self) -> int:
        with self._ready:
            return self._queued


def close_stream(stream: Any, device: AudioDevice) -> None:
    """Close a PortAudio stream, waiting at most :data:`CLOSE_LIMIT_S`: closing a stream whose device vanished can
    block inside the backend, and a stuck close must not keep the session from being saved."""
    closing = threading.Thread(target=stream.close, name=f"close {device.name}", daemon=True)
    closing.start()
    closing.join(CLOSE_LIMIT_S)
    if closing.is_alive():
        log.warning("the audio system did not close %r within %.0f s; leaving it", device.name, CLOSE_LIMIT_S)


class Capture:
    """The microphone: a PortAudio input stream at the device's native rate, mono, feeding a :class:`CaptureBuffer`."""

    def __init__(self, device: AudioDevice, max_backlog_s: float) -> None:
        self.device = device
        self.buffer = CaptureBuffer(max(1, round(max_backlog_s * device.sample_rate_hz)))
        self.overflows = 0  # times PortAudio itself lost input (the system was too slow to call us)
        self._stopping = False
        self._ended = threading.Event()
        self._started = self._last_block = 0.0  # monotonic times; _last_block stays 0 until the first block
        sd = portaudio()
        try:
            self._stream = sd.InputStream(
                device=device.index,
                samplerate=device.sample_rate_hz,
                channels=1,
                dtype="float32",
                blocksize=0,  # PortAudio's choice: fixed block sizes stall some ALSA/PulseAudio devices
                callback=self._callback,
                finished_callback=self._ended.set,
            )
        except sd.PortAudioError as e:
            raise DeviceError(f"Could not open the input device {device.name!r}: {e}") from e
        log.info("input %r at %d Hz, latency %.3f s", device.name, device.sample_rate_hz, self._stream.latency)

    def _callback(self, indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        self._last_block = time.monotonic()
        if status.input_overflow:
            self.overflows += 1
        self.buffer.offer(indata[:, 0].copy())

    def start(self) -> None:
        self._started = time.monotonic()
        try:
            self._stream.start()
        except portaudio().PortAudioError as e:
            raise DeviceError(f"Could not start the input device {self.device.name!r}: {e}") from e

    def check(self) -> None:
        """Raise :class:`DeviceError` when the stream ended without being asked to, or delivered nothing for
        :data:`INPUT_STALL_S` (device unplugged or suspended, server gone)."""
        if self._stopping:
            return
        now = time.monotonic()
        if self._last_block:
            stalled = now - self._last_block > INPUT_STALL_S
        else:
            stalled = now - self._started > INPUT_START_LIMIT_S
        if self._ended.is_set() or stalled:
            raise DeviceError(f"The input device {self.device.name!r} stopped delivering audio (unplugged?).")

    @property
    def captured_s(self) -> float:
        """Audio captured so far, skipped blocks included: the speaker's clock."""
        return self.buffer.offered_frames / self.device.sample_rate_hz

    @property
    def skipped_s(self) -> float:
        return self.buffer.skipped_frames / self.device.sample_rate_hz

    def close(self) -> None:
        """Stop capturing (errors of a device already gone are ignored) and close the buffer, so the reader knows
        that what is left is all there is."""
        self._stopping = True
        close_stream(self._stream, self.device)
        self.buffer.close()


# ---- playback ---------------------------------------------------------------------------------------------------


class Playback:
    """Translated speech to an output device as it arrives: 16 kHz pieces, marked, resampled to the device's
    native rate and played back to back by PortAudio's callback; silence when there is nothing to play.

    The callback counts every frame it writes, silence included: that count is the speaker's timeline. Each piece
    is scheduled at a frame of that timeline before it is marked, and marked at that position (see
    :mod:`safety.marking`), so everything the speaker plays carries one continuous watermark.
    """

    def __init__(self, device: AudioDevice, mark: SpeechMarking) -> None:
        self.device = device
        self._mark = mark
        self._lock = threading.Lock()
        self._pieces: deque[tuple[int, np.ndarray]] = deque()  # (start frame, samples at the device rate)
        self._clock = 0  # frames written to the device so far
        self._end = 0  # frame at which the last scheduled piece ends
        # Piece starts are whole multiples of this many frames, which is a whole number of 16 kHz samples.
        self._grid = device.sample_rate_hz // math.gcd(device.sample_rate_hz, SAMPLE_RATE_HZ)
        self._stopping = False
        self._ended = threading.Event()
        sd = portaudio()
        try:
            self._stream = sd.OutputStream(
                device=device.index,
                samplerate=device.sample_rate_hz,
                channels=1,
                dtype="float32",
                callback=self._callback,
                finished_callback=self._ended.set,
            )
        except sd.PortAudioError as e:
            raise DeviceError(f"Could not open the output device {device.name!r}: {e}") from e
        log.info("output %r at %d Hz, latency %.3f s", device.name, device.sample_rate_hz, self._stream.latency)

    def start(self) -> None:
        try:
            self._stream.start()
        except portaudio().PortAudioError as e:
            raise DeviceError(f"Could not start the output device {self.device.name!r}: {e}") from e

    def play(self, audio: np.ndarray) -> None:
        """Mark and queue 16 kHz speech; it starts when everything queued before it has played, or right away
        (:data:`SCHEDULE_AHEAD_S` from now) when the speaker is idle."""
        rate = self.device.sample_rate_hz
        with self._lock:
            start = max(self._end, self._clock + round(SCHEDULE_AHEAD_S * rate))
        start = -(-start // self._grid) * self._grid
        marked = self._mark(np.asarray(audio, dtype=np.float32), start * SAMPLE_RATE_HZ // rate)
        piece = np.clip(resample(marked, SAMPLE_RATE_HZ, rate), -1.0, 1.0)
        with self._lock:
            if start < self._clock:  # marking took longer than the head start: play now, off the mark's phase
                log.warning("playback was %.3f s late for a piece", (self._clock - start) / rate)
                start = self._clock
            self._pieces.append((start, piece))
            self._end = start + piece.shape[0]

    def _callback(self, outdata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        outdata.fill(0.0)
        with self._lock:
            begin, end = self._clock, self._clock + frames
            while self._pieces and self._pieces[0][0] < end:
                start, piece = self._pieces[0]
                lo, hi = max(start, begin), min(start + piece.shape[0], end)
                outdata[lo - begin : hi - begin, 0] = piece[lo - start : hi - start]
                if start + piece.shape[0] > end:
                    break
                self._pieces.popleft()
            self._clock = end

    @property
    def pending_s(self) -> float:
        """Speech queued and not yet played, in seconds."""
        with self._lock:
            return max(0, self._end - self._clock) / self.device.sample_rate_hz

    def check(self) -> None:
        if self._ended.is_set() and not self._stopping:
            raise DeviceError(f"The output device {self.device.name!r} stopped playing (unplugged?).")

    def wait_until_played(self, limit_s: float, cancel: threading.Event) -> None:
        """Let queued speech finish (plus the device's own output latency), for at most ``limit_s`` seconds."""
        deadline = time.monotonic() + limit_s
        while self.pending_s > 0 and time.monotonic() < deadline and not cancel.is_set():
            self.check()
            time.sleep(POLL_S)
        if not cancel.is_set():
            time.sleep(min(float(self._stream.latency), max(0.0, deadline - time.monotonic())))

    def close(self) -> None:
        """Stop playing; errors of a device already gone are ignored."""
        self._stopping = True
        close_stream(self._stream, self.device)


# ---- terminal view ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Readout:
    """The numbers under the captions."""

    #: Audio captured but not read by the engine yet, in seconds (speaker's clock minus the engine's source time).
    behind_s: float
    #: Audio captured since the start, in seconds.
    heard_s: float
    #: Audio skipped because the model fell ``max_backlog_s`` behind, in seconds.
    skipped_s: float
    #: Translated speech waiting to be played, in seconds.
    speech_queued_s: float = 0.0

    @property
    def falling_behind(self) -> bool:
        return self.behind_s > FALLING_BEHIND_S or self.skipped_s > 0

    def __str__(self) -> str:
        text = f"{self.behind_s:4.1f} s behind · heard {self.heard_s:.0f} s"
        if self.speech_queued_s >= 0.05:
            text += f" · speaking {self.speech_queued_s:.1f} s"
        if self.skipped_s > 0:
            text += f" · skipped {self.skipped_s:.1f} s"
        if self.behind_s > FALLING_BEHIND_S:
            text += " · the model is not keeping up"
        return text


class TerminalView:
    """Captions, readout and safety flags in the terminal.

    On a terminal: finished segments and flags scroll as permanent lines; one live line is redrawn in place with
    the readout, the segment's committed text (normal) and the unstable tail (dim), cut to the terminal width.
    Elsewhere (a pipe, a log file): one plain line per change, prefixed ``committed:``, ``partial:``, ``segment``,
    ``flag:``, ``warning:`` or ``status:``. Thread-safe: the worker and the main thread both write.
    """

    DIM, YELLOW, RESET, CLEAR_LINE = "\033[2m", "\033[33m", "\033[0m", "\r\033[K"

    def __init__(self, stream: TextIO, tty: bool | None = None) -> None:
        self._out = stream
        self._tty = stream.isatty() if tty is None else tty
        self._lock = threading.Lock()
        self._committed = ""  # this segment's committed text
        self._partial = ""
        self._readout: Readout | None = None
        self._drawn = ""  # the live line as last written
        self._last_plain_status = 0.0
        self._was_behind = False

    def say(self, text: str) -> None:
        with self._lock:
            self._line(text)

    def warn(self, text: str) -> None:
        with self._lock:
            self._warn_line(text)

    def flag(self, message: str) -> None:
        """A safety flag or engine notice: kept on screen, never overwritten."""
        with self._lock:
            self._line(f"{self.YELLOW}⚑ {message}{self.RESET}" if self._tty else f"flag: {message}")

    def committed(self, text: str) -> None:
        with self._lock:
            self._committed += text
            if not self._tty:
                self._line(f"committed: {text.strip()}")
            self._redraw()

    def partial(self, text: str) -> None:
        with self._lock:
            self._partial = text
            if not self._tty and text:
                self._line(f"partial: {text}")
            self._redraw()

    def segment(self, start_s: float, end_s: float, text: str, transcript: str | None) -> None:
        """A finished segment: its final text replaces the live line (and its transcript, when there is one)."""
        with self._lock:
            self._committed = self._partial = ""
            label = f"[{start_s:6.1f}–{end_s:6.1f} s]" if self._tty else f"segment {start_s:.2f}-{end_s:.2f} s:"
            self._line(f"{label} {text or '…'}")
            if transcript and transcript != text:
                self._line(f"  source: {transcript}")

    def status(self, readout: Readout) -> None:
        with self._lock:
            self._readout = readout
            if readout.falling_behind != self._was_behind:
                self._was_behind = readout.falling_behind
                if readout.falling_behind:
                    self._warn_line(f"the model is falling behind: {readout}")
            if self._tty:
                self._redraw()
            elif time.monotonic() - self._last_plain_status >= PLAIN_STATUS_EVERY_S:
                self._last_plain_status = time.monotonic()
                self._line(f"status: {readout}")

    def close(self) -> None:
        """End the live line, so what follows starts on a clean line."""
        with self._lock:
            if self._tty:
                self._out.write(self.CLEAR_LINE)
                self._out.flush()
            self._readout = None
            self._drawn = ""

    def _warn_line(self, text: str) -> None:
        self._line(f"{self.YELLOW}{text}{self.RESET}" if self._tty else f"warning: {text}")

    def _line(self, text: str) -> None:
        self._out.write((self.CLEAR_LINE if self._tty else "") + text + "\n")
        self._out.flush()
        self._drawn = ""  # the live line was replaced: draw it again below
        self._redraw()

    def _redraw(self) -> None:
        if not self._tty or self._readout is None:
            return
        prefix = f"{self._readout} │ "
        room = max(10, shutil.get_terminal_size().columns - 1 - len(prefix))
        committed, partial = self._committed.strip(), self._partial.strip()
        if committed and partial:
            partial = " " + partial
        ellipsis = ""
        overflow = len(committed) + len(partial) - room
        if overflow > 0:  # keep the newest words: cut from the left, committed text first
            drop = overflow + 1
            ellipsis = "…"
            cut = min(drop, len(committed))
            committed, partial = committed[cut:], partial[drop - cut :]
        line = f"{prefix}{ellipsis}{committed}{self.DIM}{partial}{self.RESET}"
        if line != self._drawn:  # the worker reports after every audio block (milliseconds apart)
            self._drawn = line
            self._out.write(self.CLEAR_LINE + line)
            self._out.flush()


# ---- session record ---------------------------------------------------------------------------------------------


class SessionRecord:
    """What a session leaves behind, written when it stops.

    Text as ``.txt``, ``.srt`` and ``.vtt`` (one cue per segment, at the segment's source time): ``translation.*``
    (``transcript.*`` for asr, and also when the spoken language is given). Translated speech as
    ``translation.wav`` (16 kHz), laid out and marked by :class:`safety.marking.MarkedTimeline` so that the audio
    lines up with the subtitles.
    """

    def __init__(self, task: Task, src_lang: str | None, mark: SpeechMarking) -> None:
        from safety.marking import MarkedTimeline

        self._stems = ("transcript",) if task is Task.ASR else ("translation",) + (("transcript",) if src_lang else ())
        self._speech = MarkedTimeline(mark)

    def add_speech(self, source_time_s: float, audio: np.ndarray) -> None:
        """Place a 16 kHz piece of (unmarked) speech at its source time; it is marked there."""
        self._speech.add(source_time_s, audio)

    def write(self, folder: Path, segments: list[SegmentEnd]) -> list[Path]:
        folder.mkdir(parents=True, exist_ok=True)
        written = []
        for stem in self._stems:
            texts = [(s, s.transcript if stem == "transcript" else s.text) for s in segments]
            cues = [Cue(s.start_s, s.end_s, text) for s, text in texts if text]
            for suffix, content in (
                ("txt", "".join(f"{cue.text}\n" for cue in cues)),
                ("srt", to_srt(cues)),
                ("vtt", to_vtt(cues)),
            ):
                path = folder / f"{stem}.{suffix}"
                path.write_text(content, encoding="utf-8")
                written.append(path)
        if self._speech:
            written.append(write_wav(folder / "translation.wav", self._speech.audio()))
        return written


# ---- the model's thread -----------------------------------------------------------------------------------------


class Translating(threading.Thread):
    """Captured audio → the streaming session → view, record and playback, until the capture is closed and its
    buffer drained; then ``finish()`` flushes the last segment. An error is kept in :attr:`error` for the main
    thread, which saves what was translated before reporting it."""

    def __init__(
        self,
        session: StreamingSession,
        capture: Capture,
        view: TerminalView,
        record: SessionRecord,
        playback: Playback | None,
    ) -> None:
        """``record`` and ``playback`` watermark every piece of translated speech they are given."""
        super().__init__(name="translating", daemon=True)
        self._session = session
        self._capture = capture
        self._view = view
        self._record = record
        self._playback = playback
        self._skipped_unwarned = 0  # frames skipped since the last warning
        self._last_skip_warning = -SKIP_WARNING_EVERY_S
        self.error: Exception | None = None

    def run(self) -> None:
        try:
            buffer = self._capture.buffer
            while not buffer.exhausted:
                self._feed(buffer.take(POLL_S))
                self._view.status(self.readout())
            self._route(self._session.finish())
        except Exception as e:  # reported by the main thread, after the session is saved
            self.error = e

    def readout(self) -> Readout:
        """Only for the worker thread (the session is not thread-safe)."""
        heard_s = self._capture.captured_s
        return Readout(
            behind_s=max(0.0, heard_s - self._session.source_time_s),
            heard_s=heard_s,
            skipped_s=self._capture.skipped_s,
            speech_queued_s=self._playback.pending_s if self._playback else 0.0,
        )

    def _feed(self, blocks: list[CapturedBlock]) -> None:
        rate = self._capture.device.sample_rate_hz
        run: list[np.ndarray] = []
        for block in blocks:
            if block.skipped_before:
                log.info("skipped %d frames at %d Hz (capture buffer full)", block.skipped_before, rate)
                self._push(run)
                run = []
                self._warn_skipped(block.skipped_before, rate)
                self._push([np.zeros(block.skipped_before, dtype=np.float32)])
            run.append(block.samples)
        self._push(run)

    def _warn_skipped(self, frames: int, rate: int) -> None:
        self._skipped_unwarned += frames
        if time.monotonic() - self._last_skip_warning >= SKIP_WARNING_EVERY_S:
            self._last_skip_warning = time.monotonic()
            self._view.warn(
                f"skipped {self._skipped_unwarned / rate:.1f} s of audio: the model fell "
                f"{self._capture.buffer.capacity_frames / rate:.1f} s behind (silence stands in for it)"
            )
            self._skipped_unwarned = 0

    def _push(self, pieces: list[np.ndarray]) -> None:
        if pieces:
            audio = np.concatenate(pieces)
            if audio.size:
                self._route(self._session.push(audio, self._capture.device.sample_rate_hz))

    def _route(self, events: list[StreamEvent]) -> None:
        # The engine's event types import torch; this module does not, so --list-devices and device errors are fast.
        from engine.streaming import CommittedText, Notice, PartialText, SegmentEnd, SpeechChunk

        for event in events:
            if isinstance(event, CommittedText):
                self._view.committed(event.text)
                for flag in event.safety.flags if event.safety is not None else ():
                    self._view.flag(f"“{event.text.strip()}”: {flag}")
            elif isinstance(event, PartialText):
                self._view.partial(event.text)
            elif isinstance(event, SpeechChunk):
                audio = resample(event.audio, event.sample_rate_hz)
                self._record.add_speech(event.source_time_s, audio)
                if self._playback is not None:
                    self._playback.play(audio)
            elif isinstance(event, SegmentEnd):
                self._view.segment(event.start_s, event.end_s, event.text, event.transcript)
            elif isinstance(event, Notice):
                self._view.flag(event.message)


# ---- running a session ------------------------------------------------------------------------------------------


class SetupError(RuntimeError):
    """The session cannot start: the model cannot be loaded, or it cannot handle the languages asked for."""


class StopRequest:
    """SIGINT (Ctrl-C) and SIGTERM become flags that the main thread polls, so a stop never lands in the middle of
    the model or of a file write. The first asks for a clean stop; the second also skips waiting for playback."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.requested = threading.Event()
        self.hurry = threading.Event()
        self._previous: dict[int, object] = {}

    def __enter__(self) -> StopRequest:
        self._previous = {sig: signal.signal(sig, self._handle) for sig in self.SIGNALS}
        return self

    def __exit__(self, *exc_info: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        (self.hurry if self.requested.is_set() else self.requested).set()


def start_session(options: DesktopOptions, engine_options: EngineOptions) -> tuple[StreamingSession, SpeechMarking]:
    """Load the model and the VAD, and open the streaming session (the slow part: seconds to minutes) with the
    safety check on every commit and, when asked, the expressive stage; returns it with the watermark marker that
    every piece of its speech goes through."""
    import transformers

    from engine.expressive import ExpressiveOptions, ExpressiveStage, VoiceMatcher
    from engine.languages import UnknownLanguageError
    from engine.models import ModelUnavailableError, load_model
    from engine.streaming import PRESETS, StreamingSession
    from engine.translator import Translator
    from engine.vad import StreamingVad, load_vad_model
    from safety.marking import SpeechMarker
    from safety.pipeline import SafetyChecker
    from safety.watermark import create_watermarker

    if options.latency not in PRESETS:
        raise SetupError(f"Unknown --latency {options.latency!r}; choose one of {', '.join(PRESETS)}.")
    transformers.logging.set_verbosity_error()  # library chatter is not for the person at the terminal
    transformers.logging.disable_progress_bar()
    try:
        translator = Translator(load_model(engine_options), engine_options)
        expressive = None
        if options.expressive:
            expressive_options = ExpressiveOptions(cache_dir=engine_options.cache_dir)
            expressive = ExpressiveStage(expressive_options, VoiceMatcher(translator, expressive_options))
        session = StreamingSession(
            translator,
            StreamingVad.for_new_stream(load_vad_model()),
            tgt_lang=options.tgt_lang or options.src_lang,
            task=options.task,
            preset=options.latency,
            src_lang=options.src_lang,
            speaker_id=engine_options.speaker_id,
            expressive=expressive,
            commit_check=SafetyChecker(translator),
        )
        deployment = int(os.environ.get("PARLEY_DEPLOYMENT_ID", "0"))
        run_key = f"desktop-{os.getpid()}-{os.urandom(4).hex()}"  # one session id per run
        return session, SpeechMarker.for_session(create_watermarker(), deployment, run_key)
    except (ModelUnavailableError, UnknownLanguageError) as e:
        raise SetupError(str(e)) from e


def run(options: DesktopOptions, engine_options: EngineOptions, view: TerminalView) -> int:
    """One desktop session, from device checks to the written folder; returns the exit status.

    Raises :class:`DeviceError` (after saving what was translated, when a device stops mid-session) and
    :class:`SetupError`; anything else is a bug.
    """
    mic = find_device(options.input_device, "input")
    speakers = find_device(options.output_device, "output") if options.task.speech_output else None
    with StopRequest() as stop:
        view.say(f"Loading the model {engine_options.model}…")
        session, mark = start_session(options, engine_options)
        if stop.requested.is_set():
            view.say("Stopped before listening; nothing was recorded.")
            return EXIT_OK
        playback = Playback(speakers, mark) if speakers else None
        try:
            _listen(options, session, mark, Capture(mic, options.max_backlog_s), playback, view, stop)
        finally:
            if playback is not None:
                playback.close()
    return EXIT_OK


def _listen(
    options: DesktopOptions,
    session: StreamingSession,
    mark: SpeechMarking,
    capture: Capture,
    playback: Playback | None,
    view: TerminalView,
    stop: StopRequest,
) -> None:
    """Capture, translate and play until a stop; then translate what was captured, save, and let playback end."""
    record = SessionRecord(options.task, options.src_lang, mark)
    worker = Translating(session, capture, view, record, playback)
    try:
        if playback is not None:
            playback.start()
        capture.start()
        worker.start()
        spoken = f", speaking on {playback.device.name!r} ({playback.device.sample_rate_hz} Hz)" if playback else ""
        view.say(f"Listening on {capture.device.name!r} ({capture.device.sample_rate_hz} Hz){spoken}. Ctrl-C stops.")
        failure = wait_for_stop(options, stop, capture, playback, worker)
    finally:
        capture.close()
    if worker.is_alive():
        backlog_s = capture.buffer.queued_frames / capture.device.sample_rate_hz
        waiting = f" ({backlog_s:.0f} s of captured audio still to translate)" if backlog_s >= 1 else ""
        view.say(f"Stopping: finishing the last segment{waiting}…")
        worker.join()
    view.close()
    written = record.write(options.out_dir, session.segments)
    _summarise(view, capture, session, options.out_dir, written)
    if worker.error is not None:
        raise worker.error
    if failure is not None:
        raise failure
    if playback is not None:
        playback.wait_until_played(options.max_play_tail_s, stop.hurry)


def wait_for_stop(
    options: DesktopOptions, stop: StopRequest, capture: Capture, playback: Playback | None, worker: Translating
) -> DeviceError | None:
    """Until Ctrl-C, ``--duration``, a worker error, or a device that stops (returned, to be raised after saving)."""
    started = time.monotonic()
    while not stop.requested.wait(POLL_S):
        if options.duration_s is not None and time.monotonic() - started >= options.duration_s:
            return None
        if not worker.is_alive():
            return None
        try:
            capture.check()
            if playback is not None:
                playback.check()
        except DeviceError as e:
            return e
    return None


def _summarise(
    view: TerminalView, capture: Capture, session: StreamingSession, folder: Path, written: list[Path]
) -> None:
    count = len(session.segments)
    line = f"Heard {capture.captured_s:.1f} s of audio in {count} segment{'' if count == 1 else 's'}"
    if capture.skipped_s:
        line += f"; skipped {capture.skipped_s:.1f} s (the model could not keep up; silence stands in for it)"
    if capture.overflows:
        line += f"; the audio system lost input {capture.overflows} times (overflow)"
    view.say(line + ".")
    view.say(f"Session written to {folder}: {', '.join(p.name for p in written)}")


# ---- command line -----------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python app.py --desktop",
        description="Live translation from a microphone to speakers or headphones, with captions in this terminal. "
        "Ctrl-C stops and writes the session's text, subtitles and audio to a folder.",
        epilog="Examples:\n  python app.py --desktop --list-devices\n"
        "  python app.py --desktop --tgt spa\n"
        "  python app.py --desktop --tgt fra --src eng --input-device 2 --output-device headset --latency low\n"
        "Use headphones: a microphone that hears the translation translates it again.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--list-devices", action="store_true", help="list audio devices and exit")
    parser.add_argument("--input-device", metavar="DEVICE", help="microphone: index or part of the name "
                        "(default: the system's)")  # fmt: skip
    parser.add_argument("--output-device", metavar="DEVICE", help="speakers or headphones: index or part of the name "
                        "(default: the system's)")  # fmt: skip
    parser.add_argument("--tgt", help="language to translate into, e.g. spa or Spanish (not used by asr)")
    parser.add_argument("--src", help="language spoken (required for asr; otherwise adds a source transcript)")
    parser.add_argument("--task", choices=[t.value for t in DESKTOP_TASKS], default=Task.S2ST.value,
                        help="s2st speaks the translation (default), s2tt writes it, asr transcribes")  # fmt: skip
    parser.add_argument("--latency", default="balanced", help="streaming preset: low, balanced (default), quality "
                        "or segment (commit only at pauses)")  # fmt: skip
    parser.add_argument("--expressive", action="store_true", help="keep the speaker's pauses, pace, pitch, loudness "
                        "and voice in the translated speech")  # fmt: skip
    parser.add_argument("--out", type=Path, help="folder for the session's files (default: out/desktop-DATE-TIME)")
    parser.add_argument("--duration", type=float, metavar="SECONDS", help="stop after this long (default: Ctrl-C)")
    EngineOptions.add_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    """``python app.py --desktop [flags]``; returns the exit status. Errors people can fix are one plain line."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    view = TerminalView(sys.stdout)
    try:
        if args.list_devices:
            view.say(describe_devices())
            return EXIT_OK
        try:
            options = DesktopOptions(
                tgt_lang=args.tgt,
                src_lang=args.src,
                task=Task(args.task),
                latency=args.latency,
                input_device=args.input_device,
                output_device=args.output_device,
                expressive=args.expressive,
                duration_s=args.duration,
                **({"out_dir": args.out} if args.out else {}),
            )
            engine_options = EngineOptions.from_args(args)
        except ValueError as e:
            parser.error(str(e))
        return run(options, engine_options, view)
    except DeviceError as e:
        view.close()
        print(f"error: {e}", file=sys.stderr)
        return EXIT_DEVICE
    except SetupError as e:
        view.close()
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
