"""Desktop live mode: system microphone → :class:`~engine.streaming.StreamingSession` → speakers, captions in the
terminal, no browser.

    python app.py --desktop --tgt spa                                  # default microphone and speakers
    python app.py --desktop --list-devices
    python app.py --desktop --input-device 3 --output-device "USB" --tgt fra --latency low

Devices are in :mod:`ui.audio_devices`, the terminal in :mod:`ui.terminal`; this module runs a session. Threads, and
why each exists:

* PortAudio's input callback (``Capture``) copies each block into a bounded ``CaptureBuffer`` and returns at once:
  it never waits for the model. When the buffer is full (the model is ``max_backlog_s`` behind) the block is
  skipped and counted; the skip is shown on screen, reported at the end, and replaced by silence of the same length,
  so caption times stay on the speaker's clock.
* One worker thread (:class:`Translating`) takes audio from the buffer and pushes it into the session at the
  device's own rate (the session resamples to 16 kHz), then hands the events to the view, the record and playback.
* PortAudio's output callback (``Playback``) plays translated speech, watermarked and resampled from 16 kHz to the
  output device's rate, as soon as it is committed, and silence when nothing is waiting.
* The main thread waits for Ctrl-C, SIGTERM, ``--duration``, a device that stops, or a worker error. It then stops
  the capture, lets the worker translate what was already captured, flushes the last segment with ``finish()``,
  writes the session folder (the stream's :class:`~engine.transcript.Transcript`) and lets the playback finish
  (a second Ctrl-C skips that).

Exit status: 0 on a clean stop; 1 when an audio device is missing, unusable or stops mid-session (what was
translated until then is still written); 2 for bad usage or a model that cannot be loaded.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import numpy as np

from compose.settings import DESKTOP, Settings, add_arguments, load_settings
from compose.stopping import STOP_SIGNALS
from engine.audio import resample
from engine.languages import Capability, get_language
from engine.tasks import Task
from safety.marking import SpeechMarker
from ui.audio_devices import (
    POLL_S,
    Capture,
    CapturedBlock,
    DeviceError,
    Playback,
    describe_devices,
    find_device,
)
from ui.interpreter_lock import hand_over_often
from ui.terminal import Readout, TerminalView

if TYPE_CHECKING:
    from engine.streaming import StreamEvent, StreamingSession
    from engine.transcript import Transcript

log = logging.getLogger(__name__)


DESKTOP_TASKS = (Task.S2ST, Task.S2TT, Task.ASR)
#: Longest piece of captured audio pushed into the session at once, in seconds (within the live chunk limit).
PUSH_S = 1.0
#: Shortest time between two "audio skipped" warnings; the readout and the summary always show the total.
SKIP_WARNING_EVERY_S = 5.0

EXIT_OK, EXIT_DEVICE, EXIT_USAGE = 0, 1, 2


@dataclass(frozen=True)
class DesktopOptions:
    """What one desktop session does, beyond the shared settings (:class:`~compose.settings.Settings`)."""

    #: Language to translate into (code or name); not used by asr.
    tgt_lang: str | None
    #: Spoken language; required for asr, adds a source transcript per segment otherwise.
    src_lang: str | None = None
    #: s2st speaks the translation, s2tt writes it, asr transcribes.
    task: Task = Task.S2ST
    #: PortAudio device index or name substring; None is the system default.
    input_device: str | None = None
    output_device: str | None = None
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
        record: Transcript,
        playback: Playback | None,
    ) -> None:
        """``record`` (its speech timeline) and ``playback`` watermark every piece of translated speech they get."""
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
        """Push captured audio in pieces of at most ``PUSH_S`` (a backlog can be long; a live chunk may not be)."""
        if pieces:
            audio = np.concatenate(pieces)
            step = int(PUSH_S * self._capture.device.sample_rate_hz)
            for start in range(0, audio.size, step):
                self._route(self._session.push(audio[start : start + step], self._capture.device.sample_rate_hz))

    def _route(self, events: list[StreamEvent]) -> None:
        # The engine's event types import torch; this module does not, so --list-devices and device errors are fast.
        from engine.streaming import CommittedText, Notice, PartialText, SegmentEnd, SpeechChunk

        self._record.apply(events)
        for event in events:
            if isinstance(event, CommittedText):
                self._view.committed(event.text)
                for flag in event.safety.flags if event.safety is not None else ():
                    self._view.flag(f"“{event.text.strip()}”: {flag}")
            elif isinstance(event, PartialText):
                self._view.partial(event.text)
            elif isinstance(event, SpeechChunk):
                if self._playback is not None:
                    self._playback.play(resample(event.audio, event.sample_rate_hz))
            elif isinstance(event, SegmentEnd):
                self._view.segment(event.start_s, event.end_s, event.text, event.transcript)
            elif isinstance(event, Notice):
                self._view.flag(event.message)


# ---- running a session ------------------------------------------------------------------------------------------


class SetupError(RuntimeError):
    """The session cannot start: the model cannot be loaded, or it cannot handle the languages asked for."""


class StopRequest:
    """SIGINT (Ctrl-C), SIGTERM and SIGHUP become flags that the main thread polls, so a stop never lands in the
    middle of the model or of a file write. The first asks for a clean stop; the second also skips waiting for
    playback."""

    SIGNALS = (signal.SIGINT, *STOP_SIGNALS)

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


def start_session(options: DesktopOptions, settings: Settings) -> tuple[StreamingSession, SpeechMarker]:
    """Build the pipeline (the slow part: seconds to minutes) and open the streaming session; returns it with the
    watermark marker that every piece of its speech goes through."""
    import transformers

    from cluster.head import PoolUnavailableError
    from compose.pipeline import build_pipeline
    from engine.languages import UnknownLanguageError
    from engine.models import ModelUnavailableError

    transformers.logging.set_verbosity_error()  # library chatter is not for the person at the terminal
    transformers.logging.disable_progress_bar()
    try:
        pipeline = build_pipeline(settings)
        session = pipeline.stream(options.tgt_lang or options.src_lang, options.task, src_lang=options.src_lang)
        return session, pipeline.marker(f"desktop-{os.getpid()}-{os.urandom(4).hex()}")  # one session id per run
    except (ModelUnavailableError, UnknownLanguageError, PoolUnavailableError) as e:
        raise SetupError(str(e)) from e


def run(options: DesktopOptions, settings: Settings, view: TerminalView) -> int:
    """One desktop session, from device checks to the written folder; returns the exit status.

    Raises :class:`DeviceError` (after saving what was translated, when a device stops mid-session) and
    :class:`SetupError`; anything else is a bug.
    """
    hand_over_often()
    mic = find_device(options.input_device, "input")
    speakers = find_device(options.output_device, "output") if options.task.speech_output else None
    with StopRequest() as stop:
        view.say(f"Loading the model {settings.engine.model}…")
        session, mark = start_session(options, settings)
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
    mark: SpeechMarker,
    capture: Capture,
    playback: Playback | None,
    view: TerminalView,
    stop: StopRequest,
) -> None:
    """Capture, translate and play until a stop; then translate what was captured, save, and let playback end."""
    from engine.transcript import Transcript
    from safety.marking import MarkedTimeline

    record = Transcript(MarkedTimeline(mark), transcription=options.task is Task.ASR)
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
    written = record.write(options.out_dir)
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
        "  python app.py --desktop --tgt fra --src eng --input-device 2 --output-device headset --preset low\n"
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
    parser.add_argument("--out", type=Path, help="folder for the session's files (default: out/desktop-DATE-TIME)")
    parser.add_argument("--duration", type=float, metavar="SECONDS", help="stop after this long (default: Ctrl-C)")
    add_arguments(parser, DESKTOP)
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
                input_device=args.input_device,
                output_device=args.output_device,
                duration_s=args.duration,
                **({"out_dir": args.out} if args.out else {}),
            )
            settings = load_settings(args)
        except ValueError as e:
            parser.error(str(e))
        return run(options, settings, view)
    except DeviceError as e:
        view.close()
        print(f"error: {e}", file=sys.stderr)
        return EXIT_DEVICE
    except SetupError as e:
        view.close()
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
