"""Command-line client of Parley's WebSocket endpoint (:mod:`ui.websocket`): stream a file or the microphone,
print the captions as they come, save the downloads.

    python -m ui.client --url ws://127.0.0.1:7860/ws --src eng --tgt spa talk.wav
    python -m ui.client --url ws://127.0.0.1:7860/ws --src eng --tgt spa --mic [--input-device N]
    python -m ui.client ... --speed 0 --out DIR     # as fast as the server takes it; downloads into DIR

A file is sent in real time (``--speed 2`` twice as fast, ``0`` without waiting); the microphone until Ctrl-C, which
stops cleanly: the last words arrive, then the downloads. Exit status: 0 on a clean stop, 1 when the server
reported an error, 2 for bad usage or a server that cannot be reached.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from engine.audio import SAMPLE_RATE_HZ, AudioError, load_audio, write_wav
from ui.audio_devices import AudioDevice, Capture, DeviceError, find_device  # PortAudio loads on first use
from ui.terminal import TerminalView

#: Audio per frame sent: small enough for steady captions, well under the server's frame limit.
FRAME_S = 0.2
#: Largest message accepted from the server (speech frames of a long commit).
MAX_MESSAGE_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class Received:
    """Everything one stream got back from the server."""

    #: Every JSON message, in order.
    messages: list[dict] = field(default_factory=list)
    #: Translated speech, 16 kHz float32 pieces in the order they came.
    speech: list[np.ndarray] = field(default_factory=list)
    #: The downloads sent at the end, by file name.
    downloads: dict[str, str] = field(default_factory=dict)
    #: The error messages the server sent.
    errors: list[str] = field(default_factory=list)

    @property
    def committed(self) -> str:
        """The committed text as it must be shown: pieces appended, replaced wholesale by a ``masked`` message."""
        text = ""
        for message in self.messages:
            if message["type"] == "masked":
                text = message["text"]
            elif message["type"] == "committed":
                text += message["text"]
        return text


def show(message: dict, view: TerminalView) -> None:
    """Put one server message on the terminal."""
    kind = message["type"]
    if kind == "committed":
        view.committed(message["text"])
        for flag in message.get("flags", []):
            view.flag(flag)
    elif kind == "masked":
        view.flag("Words already shown were masked; the segment's line below shows them masked.")
    elif kind == "partial":
        view.partial(message["text"])
    elif kind == "segment_end":
        view.segment(message["start_s"], message["end_s"], message["text"], message.get("transcript"))
    elif kind == "notice":
        view.flag(message["message"])
    elif kind == "error":
        view.warn(message["message"])


async def _receive(socket: ClientConnection, view: TerminalView | None) -> Received:
    received = Received()
    expecting_speech = False
    try:
        async for data in socket:
            if isinstance(data, bytes):
                if expecting_speech:
                    received.speech.append(np.frombuffer(data, dtype="<i2").astype(np.float32) / 32767)
                expecting_speech = False
                continue
            message = json.loads(data)
            received.messages.append(message)
            expecting_speech = message["type"] == "speech"
            if message["type"] == "downloads":
                received.downloads.update(message["files"])
            elif message["type"] == "error":
                received.errors.append(message["message"])
            if view is not None:
                show(message, view)
    except ConnectionClosed:
        pass  # the server closed without a close frame: what arrived is all there is
    return received


async def _send(socket: ClientConnection, frames: AsyncIterator[bytes]) -> None:
    try:
        async for frame in frames:
            await socket.send(frame)
        await socket.send(json.dumps({"type": "stop"}))
    except ConnectionClosed:
        pass  # the server ended the stream (an error event says why)


async def stream(url: str, start: dict, frames: AsyncIterator[bytes], view: TerminalView | None = None) -> Received:
    """Send ``start``, then the frames while reading what comes back, then stop; returns once the server closes."""
    async with connect(url, max_size=MAX_MESSAGE_BYTES) as socket:
        await socket.send(json.dumps({"type": "start", **start}))
        sender = asyncio.create_task(_send(socket, frames))
        try:
            return await _receive(socket, view)
        finally:
            sender.cancel()


async def file_frames(audio: np.ndarray, speed: float, stop: asyncio.Event) -> AsyncIterator[bytes]:
    """16 kHz float audio as int16 frames of :data:`FRAME_S`, paced at ``speed`` × real time (0: no waiting)."""
    step = int(FRAME_S * SAMPLE_RATE_HZ)
    pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2")
    for i in range(0, pcm.shape[0], step):
        if stop.is_set():
            return
        yield pcm[i : i + step].tobytes()
        if speed > 0:
            await asyncio.sleep(FRAME_S / speed)


async def microphone_frames(device: AudioDevice, stop: asyncio.Event) -> AsyncIterator[bytes]:
    """float32 frames from the microphone at its own rate until ``stop``; skipped audio is sent as silence."""
    capture = Capture(device, max_backlog_s=30.0)
    capture.start()
    try:
        while not stop.is_set():
            blocks = await asyncio.to_thread(capture.buffer.take, FRAME_S)
            capture.check()
            samples = [np.zeros(b.skipped_before, np.float32) for b in blocks if b.skipped_before]
            samples += [b.samples for b in blocks]
            if samples:
                yield np.concatenate(samples).astype("<f4").tobytes()
    finally:
        capture.close()


def save(received: Received, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in received.downloads.items():
        (folder / Path(name).name).write_text(text, encoding="utf-8")
        written.append(folder / Path(name).name)
    if received.speech:
        written.append(write_wav(folder / "translation.wav", np.concatenate(received.speech)))
    return written


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m ui.client", description=__doc__.split("\n\n")[0])
    parser.add_argument("file", nargs="?", type=Path, help="audio file to stream (any format ffmpeg reads)")
    parser.add_argument("--mic", action="store_true", help="stream the microphone until Ctrl-C")
    parser.add_argument("--input-device", help="microphone: index or part of its name (default: the system's)")
    parser.add_argument("--url", default="ws://127.0.0.1:7860/ws")
    parser.add_argument("--src", help="language spoken (adds the source transcript)")
    parser.add_argument("--tgt", required=True, help="language to translate into")
    parser.add_argument("--output", choices=["text", "speech"], default="text")
    parser.add_argument("--latency", default="balanced", help="preset: low, balanced, quality or segment")
    parser.add_argument("--expressive", action="store_true")
    parser.add_argument("--speed", type=float, default=1.0, help="file pace, × real time; 0 sends without waiting")
    parser.add_argument("--out", type=Path, help="folder for the downloads (text, SRT, VTT, translated speech)")
    args = parser.parse_args(argv)
    if (args.file is None) == (not args.mic):
        parser.error("give an audio file or --mic (one of the two)")
    if args.speed < 0:
        parser.error("--speed must be 0 or more")
    return args


async def run(args: argparse.Namespace, view: TerminalView) -> Received:
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGINT, stop.set)
    start = {"source": args.src, "target": args.tgt, "output": args.output, "preset": args.latency,
             "expressive": args.expressive}  # fmt: skip
    if args.mic:
        device = find_device(args.input_device, "input")
        mic = {**start, "format": "float32", "sample_rate_hz": device.sample_rate_hz}
        return await stream(args.url, mic, microphone_frames(device, stop), view)
    audio = load_audio(args.file)
    frames = file_frames(audio, args.speed, stop)
    return await stream(args.url, {**start, "format": "int16", "sample_rate_hz": SAMPLE_RATE_HZ}, frames, view)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    view = TerminalView(sys.stdout)
    try:
        received = asyncio.run(run(args, view))
    except AudioError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except DeviceError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except (OSError, InvalidHandshake, InvalidURI) as e:
        print(f"error: cannot reach {args.url}: {e}", file=sys.stderr)
        return 2
    finally:
        view.close()
    if args.out is not None:
        for path in save(received, args.out):
            print(f"wrote {path}")
    return 1 if received.errors else 0


if __name__ == "__main__":
    sys.exit(main())
