"""The Gradio app: live microphone, file and text translation, watermark check.

One shared model (:class:`ModelRuntime`, loaded in the background after the page is served); per-tab live state in
a :class:`LiveRegistry` keyed by Gradio's session hash and dropped when the tab closes. Every model-bound event
shares one concurrency group, so a busy CPU queues requests instead of thrashing; one person's error is turned into a
message for that person (``gr.Error``) and never reaches anyone else.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import numpy as np
import pandas as pd

from compose.settings import Settings
from engine.audio import SAMPLE_RATE_HZ, load_audio, write_wav
from engine.file_translation import write_outputs
from engine.languages import Capability, all_languages, languages_with
from engine.presets import PRESETS
from engine.stream_input import LiveInputLimits, read_chunk
from engine.streaming import StreamingSession
from engine.tasks import Task
from safety.marking import SpeechMarker
from ui.conversation import ConversationPage
from ui.errors import PlainBlocks
from ui.errors import plain_errors as _plain_errors
from ui.live import LiveRegistry, LiveTranslation
from ui.rooms_page import RoomsPage
from ui.runtime import ModelNotReady, ModelRuntime
from ui.websocket import StartMessage, WebSocketOptions, attach_websocket

log = logging.getLogger(__name__)

SPEECH_AND_TEXT = "Speech + text"
TEXT_ONLY = "Text only"
NO_SOURCE = ""
AUDIO_TYPES = ".wav .flac .mp3 .ogg .opus .m4a .webm"
MODEL_GROUP = "model"
LIVE_GROUP = "live"

CSS = """
.captions { font-size: 1.35em; line-height: 1.5; min-height: 4em; }
.captions .partial { color: #8a8a8a; font-style: italic; }
.captions .placeholder { color: #aaaaaa; }
.notice { color: #a15c00; font-size: 0.9em; }
.captions .flagged { text-decoration: underline wavy #d97706; }
.turn { margin: 0.4em 0; padding: 0.4em 0.6em; border-left: 4px solid #6366f1; }
.turn-b { border-left-color: #10b981; }
.turn .heard { color: #555555; }
.turn .how { color: #8a8a8a; font-size: 0.85em; }
#conv-a, #conv-b { min-height: 5em; font-size: 1.3em; }
"""


def _gpu(fn: Callable) -> Callable:
    """On a Hugging Face ZeroGPU Space, ``spaces.GPU`` lends a GPU for the call; elsewhere it is not installed."""
    try:
        import spaces
    except ImportError:
        return fn
    return spaces.GPU(fn)


def _safety_markdown(lines: list[str], title: str, checked: bool = True) -> str:
    if not checked:
        return "**Safety:** checks are off on this server."
    return "**Safety:** nothing flagged." if not lines else f"**{title}**\n" + "\n".join(lines)


def _language_choices(capability: Capability) -> list[tuple[str, str]]:
    return [(lang.label, lang.code) for lang in languages_with(capability)]


def target_choices(task_label: str) -> list[tuple[str, str]]:
    """Targets valid for the chosen output: the 36 speech-output languages, or every text language."""
    return _language_choices(Capability.SPEECH_OUTPUT if task_label == SPEECH_AND_TEXT else Capability.TEXT)


def keep_valid_target(task_label: str, tgt: str, last_spoken: str):
    """The output switched: offer the targets valid for it, keeping the chosen one when it still is; otherwise the
    last target that could be spoken, said in one line (the box never goes blank)."""
    choices = target_choices(task_label)
    codes = {code for _, code in choices}
    if tgt in codes:
        spoken = tgt if task_label == SPEECH_AND_TEXT else last_spoken
        return gr.update(choices=choices, value=tgt), spoken, ""
    names = dict((code, label) for label, code in target_choices(TEXT_ONLY))
    value = last_spoken if last_spoken in codes else "spa"
    note = f"{names.get(tgt, tgt)} cannot be spoken; the target is {names[value]} again."
    return gr.update(choices=choices, value=value), value, note


def _speech_task(task_label: str) -> Task:
    return Task.S2ST if task_label == SPEECH_AND_TEXT else Task.S2TT


def _as_output_audio(audio: np.ndarray | None) -> tuple[int, np.ndarray] | None:
    if audio is None or audio.size == 0:
        return None
    return SAMPLE_RATE_HZ, (np.clip(audio, -1.0, 1.0) * 32767).astype(np.int16)


@dataclass(frozen=True)
class _Shared:
    """The settings row's components, read by every tab's events."""

    src: gr.Dropdown
    tgt: gr.Dropdown
    task: gr.Radio
    preset: gr.Dropdown
    expressive: gr.Checkbox


class ParleyApp:
    """Event handlers, bound to one runtime and one registry (no globals)."""

    def __init__(self, runtime: ModelRuntime, work_dir: Path) -> None:
        self.runtime = runtime
        self.web = runtime.settings.web
        self.registry = LiveRegistry()
        self.work_dir = work_dir
        #: Streams closed for being idle: their downloads, for the Stop that comes later (small: paths only).
        self._closed: dict[str, list[str]] = {}
        self.rooms = RoomsPage(runtime, work_dir)
        self.conversations = ConversationPage(runtime, work_dir, self.web.max_rooms, self.web.room_idle_timeout_s)

    def marker(self, request: gr.Request | None) -> SpeechMarker:
        """Every synthetic sample handed to this browser session carries this payload."""
        key = request.session_hash if request is not None and request.session_hash else "no-session"
        return self.runtime.pipeline().marker(key)

    # ---- status ---------------------------------------------------------------------------------------------

    def poll_status(self):
        status = self.runtime.status
        failed = status.state.value == "failed"
        text = f"**Model:** {status.message}"
        offer = failed and self.web.model_switch_allowed
        if offer:
            text += "\n\nYou can try the interface with the offline test model (its translations are meaningless)."
        return text, gr.update(visible=offer), gr.Timer(active=not status.ready and not failed)

    def poll_pool(self) -> str:
        """The model pool panel (``--backend ray``)."""
        from ui.pool_panel import pool_markdown

        try:
            return pool_markdown(self.runtime.pipeline().pool)
        except ModelNotReady:
            return "**Model pool:** connecting…"

    def use_tiny(self):
        """Only reachable when the operator allows it (``--allow-model-switch``; by default only on 127.0.0.1):
        the model is shared, so switching it changes it for every visitor."""
        if not self.web.model_switch_allowed:
            raise gr.Error("Only the operator of this server can change the model.")
        self.runtime.use_tiny()
        return self.poll_status()

    # ---- live -----------------------------------------------------------------------------------------------

    def _new_live(
        self, src: str, tgt: str, task_label: str, preset: str, expressive: bool, mark: SpeechMarker
    ) -> LiveTranslation:
        pipeline = self.runtime.pipeline()
        session = pipeline.stream(tgt, _speech_task(task_label), preset, src or None, expressive)
        return LiveTranslation(session, max_backlog_s=self.web.max_backlog_s, marker=mark)

    @property
    def live_limits(self) -> LiveInputLimits:
        streaming = self.runtime.settings.streaming
        return LiveInputLimits(streaming.min_rate_hz, streaming.max_rate_hz, streaming.max_chunk_s)

    def live_chunk(self, chunk, src, tgt, task_label, preset, expressive, key, request: gr.Request):
        """``chunk`` is the file the browser uploaded (read here, header first, so a bad one is refused in words)
        or, from Python, (rate, samples). ``key`` is this tab's live-state secret (its ``gr.State``); the first
        chunk gets one issued."""
        if chunk is None:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip(), key
        rate, samples = chunk if isinstance(chunk, tuple) else read_chunk(chunk, self.live_limits)
        key = key or self.registry.new_key()
        live = self.registry.get(
            key,
            lambda: self._new_live(src, tgt, task_label, preset, expressive, self.marker(request)),
            owner=request.session_hash,
        )
        audio = live.push(samples, rate, time.monotonic())
        playback = gr.skip() if audio is None else _as_output_audio(audio)
        return live.captions_html(), live.transcript_text(), live.status_text(), playback, key

    def live_stop(self, key):
        live = self.registry.peek(key)
        if live is None:
            closed = self._closed.pop(key, None) if key else None
            if closed is not None:
                note = "The stream was closed after a silence; here is what was translated until then."
                return gr.skip(), gr.skip(), note, gr.skip(), closed or None
            return gr.skip(), gr.skip(), gr.skip(), gr.skip(), None
        audio = live.finish(time.monotonic())
        folder = self._output_folder("live-")
        files = [str(p) for p in live.write_downloads(folder)]
        playback = gr.skip() if audio is None else _as_output_audio(audio)
        return live.captions_html(), live.transcript_text(), live.status_text(), playback, files or None

    def live_clear(self, key):
        self.registry.drop(key)
        return LiveTranslation.empty_captions_html(), "", "", None, None

    def housekeeping(self, now: float | None = None) -> None:
        """Close live streams idle for ``idle_timeout_s`` (their state freed, their downloads kept for the Stop that
        may still come) and delete outputs older than ``retention_s``. Runs every few seconds on its own thread."""
        now = time.monotonic() if now is None else now
        self.rooms.registry.end_idle(now)
        for key, live in self.registry.idle(now - self.web.idle_timeout_s):
            log.info("closing a live stream idle for %.0f s", now - live.last_active)
            live.finish(now)
            self._closed[key] = [str(p) for p in live.write_downloads(self._output_folder("live-"))]
            self.registry.drop(key)
        cutoff = time.time() - self.web.retention_s
        for folder in self.work_dir.iterdir():
            if folder.is_dir() and folder.stat().st_mtime < cutoff:
                shutil.rmtree(folder, ignore_errors=True)
        for key, files in list(self._closed.items()):  # downloads past retention are no longer offered
            if not all(Path(f).exists() for f in files):
                self._closed.pop(key, None)

    def start_housekeeping(self, every_s: float = 5.0) -> None:
        def loop() -> None:
            while True:
                time.sleep(every_s)
                try:
                    self.housekeeping()
                except Exception:  # a fault here must not stop the next round
                    log.exception("housekeeping failed")

        threading.Thread(target=loop, name="housekeeping", daemon=True).start()

    def _output_folder(self, prefix: str) -> Path:
        return Path(tempfile.mkdtemp(prefix=prefix, dir=self.work_dir))

    def unload(self, request: gr.Request) -> None:
        self.registry.drop_owner(request.session_hash)

    # ---- file -----------------------------------------------------------------------------------------------

    def translate_file(self, path, src, tgt, task_label, expressive, request: gr.Request, progress=gr.Progress()):  # noqa: B008
        if not path:
            raise gr.Error("Upload or record some audio first.")
        pipeline = self.runtime.pipeline()
        options = pipeline.settings.engine
        audio = load_audio(path, max_duration_s=options.max_audio_s, max_file_bytes=options.max_file_bytes)
        progress(0.0, desc="Finding utterances")

        def report(done: int, total: int) -> None:
            progress(done / total, desc=f"Translated {done} of {total} utterances")

        result = pipeline.translate_recording(audio, _speech_task(task_label), tgt, src or None, report, expressive)
        if result.audio is not None:
            result = dataclasses.replace(result, audio=self.marker(request)(result.audio))
        folder = self._output_folder("file-")
        written = write_outputs(result, folder, Path(path).stem or "recording")
        wav = next((str(p) for p in written if p.suffix == ".wav"), None)
        transcript = "\n".join(s.transcript for s in result.segments if s.transcript)
        translation = "\n".join(s.text for s in result.segments)
        flagged = [
            f"- {s.source.start_s:.1f}–{s.source.end_s:.1f} s: {'; '.join(s.safety.flags)}"
            for s in result.segments
            if s.safety is not None and s.safety.flags
        ]
        return wav, transcript, translation, [str(p) for p in written], _safety_markdown(flagged, "Safety flags")

    # ---- text -----------------------------------------------------------------------------------------------

    def translate_text(self, text, src, tgt, task_label, request: gr.Request):
        if not text or not text.strip():
            raise gr.Error("Type some text to translate.")
        if not src:
            raise gr.Error("Choose the language of the text (source language).")
        limit = self.web.max_text_chars
        if len(text) > limit:
            raise gr.Error(f"The text has {len(text):,} characters; at most {limit:,} are translated at once.")
        task = Task.T2ST if task_label == SPEECH_AND_TEXT else Task.T2TT
        [(result, safety)] = self.runtime.pipeline().translate_texts([text.strip()], task, tgt, src)
        audio = None
        if result.waveform is not None:
            folder = self._output_folder("text-")
            marked = self.marker(request)(result.waveform)
            audio = str(write_wav(folder / f"translation.{result.tgt_lang}.wav", marked))
        notes = [] if safety is None else [f"- {flag}" for flag in safety.flags]
        if safety is not None and safety.gender is not None and safety.gender.alternative:
            notes.append(f"- Other gender: {safety.gender.alternative}")
        return result.text, audio, _safety_markdown(notes, "Safety", checked=safety is not None)

    # ---- watermark check ------------------------------------------------------------------------------------

    def verify(self, path):
        if not path:
            raise gr.Error("Upload a recording to check.")
        pipeline = self.runtime.pipeline()
        audio = load_audio(path, max_duration_s=pipeline.settings.engine.max_audio_s)
        result = pipeline.watermarker.detect(audio, SAMPLE_RATE_HZ)
        if result.detected:
            payload = result.payload
            who = (
                f"deployment {payload >> 16}, session {payload & 0xFFFF:04x}"
                if payload is not None
                else "present, but the payload could not be read"
            )
            ranges = ", ".join(f"{a:.1f}–{b:.1f} s" for a, b in result.marked_s) or "—"
            text = (
                f"### Watermark found\n**Payload:** {who}  \n**Where:** {ranges}  \n"
                f"**Confidence:** chance of this in unmarked audio p = {result.p_value:.1e} (score {result.score:.1f})"
            )
        else:
            text = (
                "### No Parley watermark found\n"
                f"(score {result.score:.1f}, p = {result.p_value:.2f}). Audio from another source, a different "
                "server key, or altered beyond recognition."
            )
        points = pd.DataFrame(
            {
                "time (s)": [(w.start_s + w.end_s) / 2 for w in result.windows],
                "score": [w.score for w in result.windows],
            }
        )
        return text, points

    # ---- the WebSocket API ------------------------------------------------------------------------------------

    def attach_websocket(self, demo: gr.Blocks) -> None:
        """The same streams as the page (same pipeline, limits and watermark), for clients beyond the browser."""
        web = self.runtime.settings.web

        def open_stream(start: StartMessage) -> StreamingSession:
            task = Task.S2ST if start.output == "speech" else Task.S2TT
            return self.runtime.pipeline().stream(start.target, task, start.preset, start.source, start.expressive)

        options = WebSocketOptions(
            limits=self.live_limits,
            max_stream_s=web.stream_time_limit_s,
            idle_timeout_s=web.idle_timeout_s,
            workers=web.max_live_streams,
        )
        attach_websocket(demo.app, open_stream, lambda key: self.runtime.pipeline().marker(key).stream().add, options)

    # ---- layout ---------------------------------------------------------------------------------------------

    def build(self) -> gr.Blocks:
        # Gradio's own copies of uploads and outputs follow the same retention as Parley's outputs.
        retention = (int(min(600, self.web.retention_s)), int(self.web.retention_s))
        with PlainBlocks(title="Parley — live speech translation", delete_cache=retention) as demo:
            gr.Markdown("# Parley\nSpeak, upload or type: Parley translates with SeamlessM4T v2 while you speak.")
            self._status_row(demo)
            if self.runtime.settings.cluster.backend == "ray":
                self._pool_panel(demo)
            self.rooms.listener_panel(demo)
            shared = self._settings_row()
            with gr.Tabs() as tabs:
                with gr.Tab("Live", id="live"):
                    self._live_tab(shared)
                with gr.Tab("File", id="file"):
                    self._file_tab(shared)
                with gr.Tab("Text", id="text"):
                    self._text_tab(shared)
                with gr.Tab("Conversation", id="conversation"):
                    self.conversations.tab(demo, tabs)
                with gr.Tab("Verify watermark", id="verify"):
                    self._verify_tab()
            demo.unload(self.unload)
        demo.queue(max_size=self.web.queue_max_size)
        return demo

    @property
    def _model_event(self) -> dict:
        """Model-bound requests (file, text) share one concurrency group."""
        return {"concurrency_limit": self.web.concurrency_limit, "concurrency_id": MODEL_GROUP}

    def _status_row(self, demo: gr.Blocks) -> None:
        with gr.Row():
            status = gr.Markdown(elem_id="model-status")
            tiny = gr.Button("Use the offline test model", visible=False, elem_id="use-tiny", scale=0)
        timer = gr.Timer(1.0)
        timer.tick(self.poll_status, outputs=[status, tiny, timer])
        demo.load(self.poll_status, outputs=[status, tiny, timer])
        if self.web.model_switch_allowed:  # otherwise no endpoint exists for it at all
            tiny.click(_plain_errors(self.use_tiny), outputs=[status, tiny, timer], api_name="use_tiny")

    def _pool_panel(self, demo: gr.Blocks) -> None:
        with gr.Accordion("Model pool (Ray Serve)", open=False):
            panel = gr.Markdown(elem_id="pool-status")
        gr.Timer(2.0).tick(self.poll_pool, outputs=panel)
        demo.load(self.poll_pool, outputs=panel)

    def _settings_row(self) -> _Shared:
        """The settings the tabs share, with the server's defaults (the same as the desktop's and the CLI's)."""
        settings = self.runtime.settings
        with gr.Row():
            src = gr.Dropdown(
                [("Not specified", NO_SOURCE), *[(lang.label, lang.code) for lang in all_languages()]],
                value="eng", label="Source language (needed for text and for a transcript)", filterable=True,
                elem_id="src-lang", allow_custom_value=True,
            )  # fmt: skip
            # allow_custom_value: a code the list does not hold reaches the handler, which answers in plain words
            # (instead of Gradio's "Value: … is not in the list of choices").
            tgt = gr.Dropdown(
                target_choices(SPEECH_AND_TEXT), value="spa", label="Target language", filterable=True,
                elem_id="tgt-lang", allow_custom_value=True,
            )  # fmt: skip
            task = gr.Radio([SPEECH_AND_TEXT, TEXT_ONLY], value=SPEECH_AND_TEXT, label="Output", elem_id="task")
            preset = gr.Dropdown(
                list(PRESETS), value=settings.streaming.preset, label="Latency (live)", elem_id="preset"
            )
            expressive = gr.Checkbox(
                value=settings.expressive.expressive,
                label="Keep my voice's character (pauses, pace, pitch, loudness, voice)", elem_id="expressive",
            )  # fmt: skip
        note = gr.Markdown(elem_id="settings-note")
        last_spoken = gr.State("spa")  # the last target that can be spoken, to go back to
        task.change(keep_valid_target, inputs=[task, tgt, last_spoken], outputs=[tgt, last_spoken, note])
        return _Shared(src, tgt, task, preset, expressive)

    def _live_tab(self, shared: _Shared) -> None:
        mic = gr.Audio(sources=["microphone"], streaming=True, type="filepath", label="Microphone", elem_id="mic")
        captions = gr.HTML(LiveTranslation.empty_captions_html(), elem_id="captions")
        transcript = gr.Textbox(label="What was said (source transcript)", elem_id="live-transcript")
        live_status = gr.Markdown(elem_id="live-status")
        speaker = gr.Audio(label="Translated speech", autoplay=True, interactive=False, elem_id="live-audio")
        with gr.Row():
            clear = gr.Button("Clear", elem_id="live-clear")
        live_files = gr.File(label="Downloads (after you stop)", file_count="multiple", elem_id="live-files")
        # A live event only hands audio to its stream's own thread and returns, but Gradio holds its slot for the
        # whole stream: its own group, sized for the streams this server takes at once, never the model's slot.
        live_event = {"concurrency_limit": self.web.max_live_streams, "concurrency_id": LIVE_GROUP}
        key = gr.State(None, delete_callback=self.registry.drop)  # this tab's live-state secret (server side only)
        outputs = [captions, transcript, live_status, speaker]
        mic.stream(
            _plain_errors(_gpu(self.live_chunk)),
            inputs=[mic, shared.src, shared.tgt, shared.task, shared.preset, shared.expressive, key],
            outputs=[*outputs, key],
            stream_every=0.5,
            time_limit=self.web.stream_time_limit_s,
            **live_event,
        )
        mic.stop_recording(_plain_errors(_gpu(self.live_stop)), inputs=[key], outputs=[*outputs, live_files],
                           **live_event)  # fmt: skip
        clear.click(self.live_clear, inputs=[key], outputs=[*outputs, key])
        self.rooms.speaker_panel(shared)

    def _file_tab(self, shared: _Shared) -> None:
        gr.Markdown(f"Accepted: {AUDIO_TYPES}; up to {self.web.max_file_mb} MB.")
        upload = gr.Audio(sources=["upload", "microphone"], type="filepath", label="Recording", elem_id="file-in")
        go = gr.Button("Translate", variant="primary", elem_id="file-go")
        audio = gr.Audio(label="Translated speech", interactive=False, elem_id="file-audio")
        with gr.Row():
            transcript = gr.Textbox(label="Transcript", lines=6, elem_id="file-transcript")
            translation = gr.Textbox(label="Translation", lines=6, elem_id="file-translation")
        safety = gr.Markdown(elem_id="file-safety")
        files = gr.File(label="Downloads", file_count="multiple", elem_id="file-files")
        go.click(
            _plain_errors(_gpu(self.translate_file)),
            inputs=[upload, shared.src, shared.tgt, shared.task, shared.expressive],
            outputs=[audio, transcript, translation, files, safety],
            **self._model_event,
        )

    def _text_tab(self, shared: _Shared) -> None:
        text_in = gr.Textbox(label="Text", lines=4, elem_id="text-in")
        go = gr.Button("Translate", variant="primary", elem_id="text-go")
        text_out = gr.Textbox(label="Translation", lines=4, elem_id="text-out")
        audio = gr.Audio(label="Spoken translation", interactive=False, elem_id="text-audio")
        safety = gr.Markdown(elem_id="text-safety")
        go.click(
            _plain_errors(_gpu(self.translate_text)),
            inputs=[text_in, shared.src, shared.tgt, shared.task],
            outputs=[text_out, audio, safety],
            **self._model_event,
        )

    def _verify_tab(self) -> None:
        gr.Markdown("Check whether a recording is speech that Parley made, and where in it.")
        check_in = gr.Audio(sources=["upload"], type="filepath", label="Recording", elem_id="verify-in")
        go = gr.Button("Check", variant="primary", elem_id="verify-go")
        result = gr.Markdown(elem_id="verify-result")
        plot = gr.LinePlot(x="time (s)", y="score", label="Watermark evidence over time", elem_id="verify-plot")
        go.click(_plain_errors(self.verify), inputs=[check_in], outputs=[result, plot], concurrency_limit=2)


def build_app(settings: Settings, work_dir: Path | None = None) -> tuple[ParleyApp, gr.Blocks]:
    """The whole app; starts loading the model in the background right away."""
    runtime = ModelRuntime(settings)
    runtime.start()
    app = ParleyApp(runtime, work_dir or Path(tempfile.mkdtemp(prefix="parley-")))
    return app, app.build()


def launch(app: ParleyApp, demo: gr.Blocks, block: bool = True) -> None:
    """Serve the page and, beside it on the same server, the WebSocket API (``/ws``); ``block=False`` returns once
    the server is up (tests)."""
    settings = app.runtime.settings
    web = settings.web
    demo.launch(
        prevent_thread_lock=True,
        server_name=web.host,
        server_port=web.port,
        share=web.share,
        max_file_size=f"{web.max_file_mb}mb",
        state_session_capacity=web.max_sessions,
        css=CSS,
        # System fonts only: the default theme would fetch web fonts, and an offline launch makes no outside requests.
        theme=gr.themes.Default(
            font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"]
        ),
    )
    app.attach_websocket(demo)
    app.start_housekeeping()
    if block:
        demo.block_thread()
