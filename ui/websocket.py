"""Live translation over a WebSocket, served beside the Gradio app (same process, same model).

The browser page reaches the live path through Gradio's own protocol; this endpoint lets any client (the CLI in
:mod:`ui.client`, a phone app, a conference bridge) stream audio and get captions and speech back, as WhisperLive
and simulstream's server do. One connection is one stream:

    client → {"type": "start", "target": "spa", "source": "eng", "output": "speech", "preset": "balanced",
              "expressive": false, "sample_rate_hz": 48000, "format": "int16"}
    client → binary frames: mono little-endian PCM in the stated format and rate
    server → {"type": "ready", ...}, then JSON events (partial, committed, masked, segment_end, notice, lag, error)
             and, for speech output, a {"type": "speech", ...} header followed by one binary frame of 16 kHz speech
    client → {"type": "stop"}
    server → the last events, {"type": "downloads", "files": {"translation.srt": "...", ...}}, then a clean close

The endpoint never builds a model: it is given ``open_stream`` (a start message → a session with ``push`` and
``finish``) and ``mark_speech`` (a session key → the watermark for that stream), so the composition root decides
what a session is and tests can use the tiny model. Model work runs on an executor, never on the event loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
import tempfile
import uuid
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from fastapi import FastAPI, WebSocket, WebSocketDisconnect

from engine.audio import SAMPLE_RATE_HZ, AudioError
from engine.stream_input import LiveInputLimits
from engine.streaming import PRESETS, CommittedText, Notice, PartialText, SegmentEnd, SpeechChunk, StreamEvent
from engine.transcript import Transcript
from ui.runtime import ModelNotReady

log = logging.getLogger(__name__)

#: Sample formats a client may send, and their numpy dtypes (little-endian).
FORMATS = {"int16": np.dtype("<i2"), "float32": np.dtype("<f4")}
OUTPUTS = ("text", "speech")
#: Close codes (RFC 6455): normal, going away (idle), policy violation (bad message), internal error.
CLOSE_NORMAL, CLOSE_IDLE, CLOSE_PROTOCOL, CLOSE_INTERNAL = 1000, 1001, 1008, 1011

Mark = Callable[[np.ndarray, int], np.ndarray]


class Stream(Protocol):
    """What ``open_stream`` returns: a :class:`engine.streaming.StreamingSession` or anything used the same way."""

    def push(self, samples: np.ndarray, sample_rate_hz: int) -> list[StreamEvent]: ...

    def finish(self) -> list[StreamEvent]: ...


class ProtocolError(ValueError):
    """A client message the endpoint cannot accept; its text is sent to the client as it stands."""


@dataclass(frozen=True)
class WebSocketOptions:
    """Limits of the endpoint: the same as the page's live tab unless stated."""

    #: Route of the endpoint on the app.
    path: str = "/ws"
    #: The page's limits on live audio (sample-rate range, longest chunk), refused with the page's messages.
    limits: LiveInputLimits = field(default_factory=LiveInputLimits)
    #: Longest JSON message accepted, in bytes.
    max_text_bytes: int = 4_096
    #: A connection that sends nothing for this long is closed.
    idle_timeout_s: float = 30.0
    #: Longest stream, in seconds of audio (the page's stream_time_limit_s); then it is stopped as if asked.
    max_stream_s: float = 30 * 60
    #: Model-bound calls that may run at once when no executor is passed (one shared model: 1 is fastest on CPU).
    workers: int = 1

    def __post_init__(self) -> None:
        if not self.path.startswith("/"):
            raise ValueError("path must start with /")
        if min(self.idle_timeout_s, self.max_stream_s) <= 0 or self.max_text_bytes < 256:
            raise ValueError("timeouts must be positive and text messages may not be capped below 256 bytes")
        if self.workers < 1:
            raise ValueError("workers must be at least 1")


@dataclass(frozen=True)
class StartMessage:
    """The client's first message: what to translate and how the audio comes."""

    #: Language to translate into (code such as "spa").
    target: str
    #: Language spoken (code such as "eng"); None when not given (then no source transcript).
    source: str | None = None
    #: "text" (captions only) or "speech" (captions and translated speech).
    output: str = "text"
    #: Latency preset name (engine.streaming.PRESETS).
    preset: str = "balanced"
    #: Translated speech follows the speaker's pauses, pace, pitch and loudness.
    expressive: bool = False
    #: Rate of the client's PCM frames.
    sample_rate_hz: int = SAMPLE_RATE_HZ
    #: Sample format of the frames: "int16" or "float32".
    format: str = "int16"

    def __post_init__(self) -> None:
        if not isinstance(self.target, str) or not self.target:
            raise ProtocolError("The start message needs a target language.")
        if self.source is not None and (not isinstance(self.source, str) or not self.source):
            raise ProtocolError("The source language must be a language code, or left out.")
        if self.output not in OUTPUTS:
            raise ProtocolError(f"The output must be one of: {', '.join(OUTPUTS)}.")
        if self.preset not in PRESETS:
            raise ProtocolError(f"The preset must be one of: {', '.join(PRESETS)}.")
        if not isinstance(self.expressive, bool):
            raise ProtocolError("expressive must be true or false.")
        if self.format not in FORMATS:
            raise ProtocolError(f"The format must be one of: {', '.join(FORMATS)}.")
        if not isinstance(self.sample_rate_hz, int) or isinstance(self.sample_rate_hz, bool):
            raise ProtocolError("sample_rate_hz must be a whole number of samples per second.")

    @classmethod
    def parse(cls, text: str, options: WebSocketOptions) -> StartMessage:
        """Read and check a start message; raises :class:`ProtocolError` with a sentence for the client."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ProtocolError("The start message is not valid JSON.") from e
        if not isinstance(data, dict) or data.get("type") != "start":
            raise ProtocolError('The first message must be a JSON object with "type": "start".')
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known - {"type"})
        if unknown:
            raise ProtocolError(f"Unknown field in the start message: {', '.join(unknown)}.")
        if "target" not in data:
            raise ProtocolError("The start message needs a target language.")
        start = cls(**{k: v for k, v in data.items() if k in known})
        try:
            options.limits.check(np.zeros(0, FORMATS[start.format]), start.sample_rate_hz)
        except AudioError as e:
            raise ProtocolError(str(e)) from e
        return start


def event_message(event: StreamEvent) -> dict[str, Any] | None:
    """The JSON form of an engine event (None for speech, which travels as a header and a binary frame).

    A committed piece is sent as the engine emitted it (masked as shown); :class:`_Connection` sends the piece as
    the stream's :class:`Transcript` shows it, which also covers masks added later."""
    common = {"segment": event.segment, "source_time_s": round(event.source_time_s, 3)}
    if isinstance(event, PartialText):
        return {"type": "partial", "text": event.text, **common}
    if isinstance(event, CommittedText):
        flags = list(event.safety.flags) if event.safety is not None else []
        return {"type": "committed", "text": event.text, "flags": flags, **common}
    if isinstance(event, SegmentEnd):
        return {"type": "segment_end", "start_s": round(event.start_s, 3), "end_s": round(event.end_s, 3),
                "text": event.text, "transcript": event.transcript, **common}  # fmt: skip
    if isinstance(event, Notice):
        return {"type": "notice", "message": event.message, **common}
    return None


def text_downloads(transcript: Transcript) -> dict[str, str]:
    """The session's text files (translation and transcript as text, SRT and VTT), keyed by file name: the same
    files the page offers, written by the one writer and read back."""
    with tempfile.TemporaryDirectory(prefix="parley-ws-") as folder:
        return {p.name: p.read_text(encoding="utf-8") for p in transcript.write(Path(folder))}


class _Connection:
    """One client's stream: decodes its frames, runs the session on the executor, sends what comes out."""

    def __init__(self, socket: WebSocket, stream: Stream, start: StartMessage, mark: Mark, options: WebSocketOptions):
        self.socket, self.stream, self.start, self.mark, self.options = socket, stream, start, mark, options
        self.dtype = FORMATS[start.format]
        self.samples_in = 0
        self.speech_out = 0  # samples of speech sent: the client's playback timeline, for the watermark
        self.transcript = Transcript()  # what the client has been shown, masks included; the downloads
        self.shown: list[str] = []  # committed pieces as last sent

    @property
    def heard_s(self) -> float:
        return self.samples_in / self.start.sample_rate_hz

    def decode(self, data: bytes) -> np.ndarray:
        """The frame's samples; raises :class:`AudioError` (the page's words) for a frame over the limits, which
        is refused while the stream goes on, and :class:`ProtocolError` for a frame that is not whole samples."""
        if len(data) % self.dtype.itemsize:
            raise ProtocolError(f"Each {self.start.format} frame must hold a whole number of samples.")
        samples = np.frombuffer(data, dtype=self.dtype)
        self.options.limits.check(samples, self.start.sample_rate_hz)
        return samples

    async def send_events(self, events: list[StreamEvent]) -> None:
        for event in events:
            if isinstance(event, SpeechChunk):
                await self._send_speech(event)
                continue
            self.transcript.apply([event])
            message = event_message(event)
            if isinstance(event, CommittedText):
                message = await self._committed(message)
            if message is not None:
                await self.socket.send_json(message)

    async def _committed(self, message: dict[str, Any]) -> dict[str, Any]:
        """The new piece as shown; first a ``masked`` message when a mask reached back into pieces already sent."""
        pieces = self.transcript.pieces
        earlier = [p.text for p in pieces[:-1]]
        if earlier != self.shown:
            await self.socket.send_json({"type": "masked", "text": "".join(earlier)})
        self.shown = [p.text for p in pieces]
        return {**message, "text": pieces[-1].text, "flags": list(pieces[-1].flags)}

    async def send_lag(self) -> None:
        pending = bool(self.transcript.partial)
        lag_s = max(0.0, self.heard_s - self.transcript.last_commit_s) if pending else 0.0
        await self.socket.send_json({"type": "lag", "lag_s": round(lag_s, 3), "heard_s": round(self.heard_s, 3)})

    async def _send_speech(self, chunk: SpeechChunk) -> None:
        audio = self.mark(chunk.audio, self.speech_out)
        self.speech_out += audio.shape[0]
        pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2")
        await self.socket.send_json({"type": "speech", "sample_rate_hz": chunk.sample_rate_hz, "format": "int16",
                                     "samples": int(pcm.shape[0]), "segment": chunk.segment,
                                     "source_time_s": round(chunk.source_time_s, 3)})  # fmt: skip
        await self.socket.send_bytes(pcm.tobytes())


class WebSocketEndpoint:
    """Serves :class:`_Connection` s on one route; ``attach_websocket`` builds it."""

    def __init__(
        self,
        open_stream: Callable[[StartMessage], Stream],
        mark_speech: Callable[[str], Mark],
        options: WebSocketOptions,
        executor: Executor,
    ) -> None:
        self.open_stream, self.mark_speech, self.options, self.executor = open_stream, mark_speech, options, executor

    async def _run(self, fn: Callable, *args):
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    async def _receive(self, socket: WebSocket) -> dict[str, Any]:
        try:
            message = await asyncio.wait_for(socket.receive(), self.options.idle_timeout_s)
        except asyncio.TimeoutError as e:
            raise TimeoutError from e
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", CLOSE_NORMAL))
        text = message.get("text")
        if text is not None and len(text.encode()) > self.options.max_text_bytes:
            raise ProtocolError(f"Text messages may be at most {self.options.max_text_bytes} bytes.")
        return message

    async def serve(self, socket: WebSocket) -> None:
        await socket.accept()
        try:
            await self._session(socket)
        except WebSocketDisconnect:
            log.info("WebSocket client left mid-stream")
        except ProtocolError as e:  # the client's mistake: one line in the log, the sentence to the client
            log.info("refused WebSocket stream: %s", e)
            await _close_with_error(socket, str(e), CLOSE_PROTOCOL)
        except TimeoutError:
            message = f"Nothing arrived for {self.options.idle_timeout_s:g} s; the stream was closed."
            log.info("closed an idle WebSocket stream")
            await _close_with_error(socket, message, CLOSE_IDLE)
        except Exception:
            log.exception("WebSocket stream failed")
            await _close_with_error(socket, "Something went wrong with this stream; please try again.", CLOSE_INTERNAL)

    async def _session(self, socket: WebSocket) -> None:
        first = await self._receive(socket)
        if first.get("text") is None:
            raise ProtocolError("Send a start message before any audio.")
        start = StartMessage.parse(first["text"], self.options)
        try:
            stream = await self._run(self.open_stream, start)
        except (ValueError, ModelNotReady) as e:  # a language the model lacks, a model still loading
            raise ProtocolError(str(e)) from e
        key = uuid.uuid4().hex
        connection = _Connection(socket, stream, start, self.mark_speech(key), self.options)
        await socket.send_json({"type": "ready", "session": key, "sample_rate_hz": start.sample_rate_hz,
                                "format": start.format, "output": start.output})  # fmt: skip
        while connection.heard_s < self.options.max_stream_s:
            message = await self._receive(socket)
            if message.get("bytes") is not None:
                try:
                    samples = connection.decode(message["bytes"])
                except AudioError as e:  # as on the page: this frame is refused, the stream goes on
                    log.info("refused a WebSocket frame: %s", e)
                    await socket.send_json({"type": "error", "message": str(e)})
                    continue
                if samples.size == 0:
                    continue
                connection.samples_in += samples.size
                await connection.send_events(await self._run(stream.push, samples, start.sample_rate_hz))
                await connection.send_lag()
            elif _is_stop(message["text"]):
                break
            else:
                raise ProtocolError('After the start message, send audio frames or {"type": "stop"}.')
        else:
            limit = f"The stream reached its {self.options.max_stream_s / 60:g}-minute limit and was stopped."
            await socket.send_json({"type": "notice", "message": limit})
        await connection.send_events(await self._run(stream.finish))
        await socket.send_json({"type": "downloads", "files": text_downloads(connection.transcript)})
        await socket.close(CLOSE_NORMAL)


def _is_stop(text: str) -> bool:
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return False
    return isinstance(data, dict) and data.get("type") == "stop"


async def _close_with_error(socket: WebSocket, message: str, code: int) -> None:
    try:
        await socket.send_json({"type": "error", "message": message})
        await socket.close(code)
    except (WebSocketDisconnect, RuntimeError):  # the client is already gone
        pass


def attach_websocket(
    app: FastAPI,
    open_stream: Callable[[StartMessage], Stream],
    mark_speech: Callable[[str], Mark],
    options: WebSocketOptions | None = None,
    executor: Executor | None = None,
) -> WebSocketEndpoint:
    """Serve live translation on ``options.path`` of ``app`` (Gradio's own FastAPI app: ``demo.app`` once launched,
    or the app given to ``gr.mount_gradio_app``).

    ``open_stream`` turns a checked start message into a session; it may raise ``ValueError`` (or
    ``ModelNotReady``) with a sentence for the client. ``mark_speech`` gets a fresh session key per stream and
    returns the watermark for it, called as ``mark(audio, at_sample)`` on the client's playback timeline (pieces
    back to back from sample 0): ``lambda key: pipeline.marker(key).stream().add`` marks it continuously. Model
    work (``open_stream``, ``push``, ``finish``) runs on ``executor``: pass the one the page's model work uses so
    both queue together; by default the endpoint has its own with ``options.workers`` threads.
    """
    options = options or WebSocketOptions()
    pool = executor or ThreadPoolExecutor(max_workers=options.workers, thread_name_prefix="parley-ws")
    endpoint = WebSocketEndpoint(open_stream, mark_speech, options, pool)
    app.add_api_websocket_route(options.path, endpoint.serve)
    return endpoint
