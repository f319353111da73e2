"""Audio devices for the desktop mode: finding them, capturing the microphone without ever waiting for the model,
and playing translated speech, watermarked, on the speaker's own clock. Built on PortAudio through ``sounddevice``;
nothing here imports the model, so device listings and device errors are fast.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from engine.audio import SAMPLE_RATE_HZ, resample
from safety.marking import SpeechMarker

log = logging.getLogger(__name__)

#: How often the main thread checks for a stop, a lost device or a worker error.
POLL_S = 0.1
#: Least head start given to a piece of speech scheduled on an idle speaker: time to mark and resample it before the
#: callback reaches its start. The head start grows to twice the longest recent preparation, so a busy machine does
#: not play a piece late (off its watermark's phase).
SCHEDULE_AHEAD_S = 0.1
#: How fast the remembered preparation time decays towards shorter ones (per piece).
PREPARE_DECAY = 0.8
#: An input stream that delivers nothing for this long counts as stopped: some backends (ALSA's PulseAudio plugin)
#: neither call back nor end the stream when the device goes away or is suspended.
INPUT_STALL_S = 5.0
#: The first block may take longer (measured up to 1.8 s through ALSA's PulseAudio plugin on an idle machine).
INPUT_START_LIMIT_S = 20.0
#: Longest wait for PortAudio to close a stream whose device is gone; after it the process exits without it.
CLOSE_LIMIT_S = 5.0


class DeviceError(RuntimeError):
    """An audio device is missing, refuses the settings, or stopped; the message is meant for the person."""


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

    def __init__(self, device: AudioDevice, mark: SpeechMarker) -> None:
        self.device = device
        self._marking = mark.stream()  # one marking stream for everything this speaker plays
        self._prepare_s = 0.0  # how long marking and resampling a piece took lately (seconds)
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
        ahead_s = max(SCHEDULE_AHEAD_S, 2.0 * self._prepare_s)
        with self._lock:
            start = max(self._end, self._clock + round(ahead_s * rate))
        start = -(-start // self._grid) * self._grid
        began = time.perf_counter()
        marked = self._marking.add(np.asarray(audio, dtype=np.float32), start * SAMPLE_RATE_HZ // rate)
        piece = np.clip(resample(marked, SAMPLE_RATE_HZ, rate), -1.0, 1.0)
        self._prepare_s = max(time.perf_counter() - began, PREPARE_DECAY * self._prepare_s)
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
