"""An outside client for Parley's Gradio server: the browser's own HTTP protocol, nothing from the server's process.

The bad-input suite, the soak test and its bench drive the app as a person's browser (or a hostile script) does:
upload files, join the queue, read the event stream, and for the live tab send microphone chunks into an open
streaming event. Written against Gradio's ``sse_v3`` protocol (``/gradio_api/queue/join``, ``/queue/data``,
``/stream/{event_id}``, ``/upload``), so every check sees exactly what a client sees: the error message, or null.
"""

from __future__ import annotations

import io
import json
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import soundfile as sf

API = "/gradio_api"


@dataclass
class Reply:
    """What one event gave the client: the last output data, or the error message (None when the server sent an
    error without words), and every message seen."""

    data: list[Any] | None = None
    error: str | None = None
    failed: bool = False
    messages: list[dict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed and self.data is not None


def wav_bytes(samples: np.ndarray, rate_hz: int, subtype: str = "PCM_16") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, samples, rate_hz, format="WAV", subtype=subtype)
    return buf.getvalue()


class GradioWire:
    """One visitor (one session hash) of a Parley server, speaking Gradio's wire protocol."""

    def __init__(self, base_url: str, timeout_s: float = 60.0) -> None:
        self.base = base_url.rstrip("/")
        self.http = httpx.Client(base_url=self.base, timeout=timeout_s)
        self.session_hash = secrets.token_hex(6)
        config = self.http.get("/config").json()
        self.fn_index = {d["api_name"]: d["id"] for d in config["dependencies"] if d.get("api_name")}

    def close(self) -> None:
        self.http.close()

    def upload(self, content: bytes, name: str = "audio.wav") -> str:
        """Store a file on the server (as the browser's upload does) and return the server path it got."""
        response = self.http.post(f"{API}/upload", files={"files": (name, content)})
        response.raise_for_status()
        return response.json()[0]

    @staticmethod
    def file(path: str, name: str = "audio.wav") -> dict:
        """The FileData a component sends for an uploaded (or claimed) path."""
        return {"path": path, "orig_name": name, "meta": {"_type": "gradio.FileData"}}

    def call(self, api_name: str, data: list[Any], timeout_s: float = 120.0) -> Reply:
        """Join the queue with ``data`` and read the event stream until the event completes."""
        event_id = self._join(api_name, data)
        if isinstance(event_id, Reply):
            return event_id
        return self._read(event_id, timeout_s)

    def _join(self, api_name: str, data: list[Any]) -> str | Reply:
        body = {"data": data, "fn_index": self.fn_index[api_name], "session_hash": self.session_hash,
                "event_data": None, "trigger_id": None}  # fmt: skip
        response = self.http.post(f"{API}/queue/join", json=body)
        if response.status_code != 200:
            detail = _detail(response)
            return Reply(error=detail, failed=True, messages=[{"status": response.status_code, "detail": detail}])
        return response.json()["event_id"]

    def _events(self, timeout_s: float) -> Iterator[dict]:
        url = f"{API}/queue/data"
        with self.http.stream("GET", url, params={"session_hash": self.session_hash}, timeout=timeout_s) as stream:
            for line in stream.iter_lines():
                if line.startswith("data:"):
                    yield json.loads(line[5:])

    def _read(self, event_id: str, timeout_s: float) -> Reply:
        reply = Reply()
        deadline = time.monotonic() + timeout_s
        for message in self._events(timeout_s):
            if message.get("event_id") not in (event_id, None):
                continue
            reply.messages.append(message)
            kind = message.get("msg")
            if kind in ("process_generating", "process_completed"):
                output = message.get("output") or {}
                if output.get("data") is not None:
                    reply.data = output["data"]
                if kind == "process_completed":
                    if not message.get("success", False):
                        reply.failed, reply.error = True, output.get("error")
                    return reply
            if kind in ("unexpected_error", "close_stream") or time.monotonic() > deadline:
                reply.failed, reply.error = True, message.get("message")
                return reply
        reply.failed = True
        return reply

    def stream(self, api_name: str, chunks: list[list[Any]], pause_s: float = 0.0, timeout_s: float = 120.0) -> Reply:
        """A streaming event (the live tab's microphone): the first chunk joins the queue, the others are posted
        into the open event, then the stream is closed; the reply holds the last output or the error."""
        event_id = self._join(api_name, chunks[0])
        if isinstance(event_id, Reply):
            return event_id
        for data in chunks[1:]:
            time.sleep(pause_s)
            body = {"data": data, "fn_index": self.fn_index[api_name], "session_hash": self.session_hash,
                    "event_data": None}  # fmt: skip
            if self.http.post(f"{API}/stream/{event_id}", json=body).status_code != 200:
                break  # the event has ended (an error); the reply says why
        self.http.post(f"{API}/stream/{event_id}/close")
        return self._read(event_id, timeout_s)


def _detail(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return response.text or None
    if isinstance(body, dict):
        detail = body.get("detail") or body.get("error")
        return detail if isinstance(detail, str) else json.dumps(detail)
    return None


@dataclass
class Served:
    """A Parley server running in this process on 127.0.0.1 (tests, benches): its app, Gradio's Blocks, its URL."""

    app: Any
    demo: Any
    url: str

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/ws"

    def close(self) -> None:
        self.demo.close()


def serve(settings: Any, work_dir: Path) -> Served:
    """Load the model, build the app and serve it as ``python app.py`` does (page, WebSocket, housekeeping)."""
    from ui.app import ParleyApp, launch
    from ui.runtime import ModelRuntime

    runtime = ModelRuntime(settings)
    runtime.start()
    if not runtime.wait(300).ready:
        raise RuntimeError(runtime.status.message)
    app = ParleyApp(runtime, work_dir)
    demo = app.build()
    launch(app, demo, block=False)
    return Served(app, demo, f"http://127.0.0.1:{settings.web.port}")
