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
from engine.audio import SAMPLE_RATE_HZ, SILENCE_PEAK, decode, load_audio, prepare, write_wav
from engine.file_translation import write_outputs
from engine.hooks import Report
from engine.languages import Capability, all_languages, languages_with
from engine.presets import PRESETS
from engine.stream_input import LiveInputLimits, read_chunk
from engine.streaming import StreamingSession
from engine.tasks import Task
from engine.translator import TranslationResult
from safety.marking import SpeechMarker
from safety.watermark.interface import WindowScore, describe_payload
from ui.conversation import ConversationPage
from ui.errors import PlainBlocks
from ui.errors import plain_errors as _plain_errors
from ui.heap import release_free_heap
from ui.interpreter_lock import hand_over_often
from ui.live import LiveRegistry, LiveTranslation, as_player_audio
from ui.rooms_page import RoomsPage
from ui.runtime import ModelNotReady, ModelRuntime
from ui.sentences import batches, join_paragraphs, split_sentences
from ui.websocket import StartMessage, WebSocketOptions, attach_websocket

log = logging.getLogger(__name__)

SPEECH_AND_TEXT = "Speech + text"
TEXT_ONLY = "Text only"
NO_SOURCE = ""
AUDIO_TYPES = ".wav .flac .mp3 .ogg .opus .m4a .webm"
MODEL_GROUP = "model"
LIVE_GROUP = "live"

PAGE_DIR = Path(__file__).resolve().parent
#: The Verify plot's line: built-in window scores are about N(0, 1) without a mark; above 3 is rare by chance.
CHANCE_SCORE = 3.0
SETTINGS_LOCKED = (
    "While recording, the source language, latency and voice stay as the stream started (stop to change them); "
    "a new target language or output applies from the next sentence."
)
CLEARED = "Cleared: captions, transcript, translated speech and downloads."


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


def _text_safety(results: list[tuple[TranslationResult, Report | None]]) -> str:
    """The Text tab's safety notes: each flag, and the other-gender alternative when there is one."""
    notes = []
    for _, safety in results:
        notes += [] if safety is None else [f"- {flag}" for flag in safety.flags]
        if safety is not None and safety.gender is not None and safety.gender.alternative:
            notes.append(f"- Other gender: {safety.gender.alternative}")
    return _safety_markdown(notes, "Safety", checked=all(safety is not None for _, safety in results))


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
    value = last_spoken if last_spoken in codes else "spa"
    note = f"{_target_name(tgt)} cannot be spoken; the target is {_target_name(value)} again."
    return gr.update(choices=choices, value=value), value, note


def _target_name(code: str) -> str:
    """A target's name as the list shows it (the code itself when it is none the list holds)."""
    return dict((c, label) for label, c in target_choices(TEXT_ONLY)).get(code, code)


def _speech_task(task_label: str) -> Task:
    return Task.S2ST if task_label == SPEECH_AND_TEXT else Task.S2TT


def _downloads(files: list[str]):
    """The downloads box shows only when it has something to download (empty, it was a large blank box)."""
    return gr.update(value=files or None, visible=bool(files))


def _wav_of(files: list[str]) -> str | None:
    return next((f for f in files if f.endswith(".wav")), None)


def preset_label(name: str) -> str:
    """A latency preset in seconds: how often the live translation updates and what pause ends a sentence."""
    preset = PRESETS[name]
    pause = f"{preset.pause_s:.1f} s pause ends a sentence"
    if preset.step_s is None:
        return f"{name}: whole sentences; {pause}"
    return f"{name}: every {preset.step_s:.1f} s; {pause}"


@dataclass(frozen=True)
class _Shared:
    """The settings row's components, read by every tab's events."""

    src: gr.Dropdown
    tgt: gr.Dropdown
    task: gr.Radio
    preset: gr.Dropdown
    expressive: gr.Checkbox
    row: gr.Row
    note: gr.Markdown
    task_switched: gr.events.Dependency  # the output switch, after the target was kept valid for it

    @property
    def controls(self) -> list[gr.components.Component]:
        """What a live stream reads when it starts."""
        return [self.src, self.tgt, self.task, self.preset, self.expressive]

    @property
    def locked(self) -> list[gr.components.Component]:
        """What a running stream cannot change (its segmenter, voice and transcript were built for them): locked
        while it runs. The target and the output can change: from the next sentence."""
        return [self.src, self.preset, self.expressive]


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
        text = status.message
        offer = failed and self.web.model_switch_allowed
        if offer:
            text += " You can try the page with the offline test model (its translations are meaningless)."
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
        chunk gets one issued. Returns the captions, transcript, status, the new piece of speech for the page's
        player, the key, and a halt signal (set once, when the model is not there: the page stops recording
        instead of failing every chunk)."""
        if chunk is None:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip(), key, gr.skip()
        if not self.runtime.status.ready:
            note = f"{self.runtime.status.message} Recording stopped."
            return gr.skip(), gr.skip(), note, gr.skip(), key, note
        rate, samples = chunk if isinstance(chunk, tuple) else read_chunk(chunk, self.live_limits)
        key = key or self.registry.new_key()
        live = self.registry.get(
            key,
            lambda: self._new_live(src, tgt, task_label, preset, expressive, self.marker(request)),
            owner=request.session_hash,
        )
        audio = live.push(samples, rate, time.monotonic())
        # Plain values, never gr.skip(): Gradio rebuilds an output's component and its API schema for every
        # update it is handed, a fifth of the web loop's time with three streams (py-spy). No piece is None (the
        # page's player ignores it); no halt is "" (the halt's handler acts only on a note).
        return live.captions_html(), live.transcript_text(), live.status_text(), as_player_audio(audio), key, ""

    def live_start(self):
        """Recording starts: the previous recording's results go, and the settings a stream cannot change lock,
        saying why."""
        lock = gr.update(interactive=False)
        return (
            LiveTranslation.empty_captions_html(), "", "", None, gr.update(value=None, visible=False),
            *([lock] * 3), SETTINGS_LOCKED, lock,
        )  # fmt: skip

    @staticmethod
    def live_unlock():
        unlock = gr.update(interactive=True)
        return *([unlock] * 3), "", unlock

    def live_retarget(self, tgt, task_label, key, note):
        """The target or the output changed while recording: the stream takes it from its next sentence (the text
        so far stays), and the settings note says so under any line it already holds."""
        live = self.registry.peek(key)
        if live is None or live.finished or not tgt:
            return gr.skip()
        try:
            live.stream.retarget(tgt, _speech_task(task_label))
        except ValueError as e:
            return str(e)
        output = "spoken and shown" if task_label == SPEECH_AND_TEXT else "shown, not spoken"
        told = f"From the next sentence the translation is in {_target_name(tgt)}, {output}."
        kept = [line for line in (note or "").splitlines() if line and not line.startswith("From the next")]
        return "\n\n".join([*kept, told])

    def live_stop(self, key):
        """Returns captions, transcript, status, the last piece for the player, the whole played speech (the saved
        WAV) for the player below, and the downloads."""
        live = self.registry.peek(key)
        if live is None:
            closed = self._closed.pop(key, None) if key else None
            if closed is not None:
                note = "The stream was closed after a silence; here is what was translated until then."
                return gr.skip(), gr.skip(), note, gr.skip(), _wav_of(closed), _downloads(closed)
            return gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(), _downloads([])
        audio = live.finish()
        files = [str(p) for p in live.write_downloads(self._output_folder("live-"))]
        piece = gr.skip() if audio is None else as_player_audio(audio)
        texts = live.captions_html(), live.transcript_text(), live.status_text()
        return *texts, piece, _wav_of(files), _downloads(files)

    def live_clear(self, key):
        """Everything shown goes (downloads too), and the page says so; the next recording starts afresh."""
        self.registry.drop(key)
        return LiveTranslation.empty_captions_html(), "", CLEARED, None, None, _downloads([]), None

    def housekeeping(self, now: float | None = None) -> None:
        """Close live streams idle for ``idle_timeout_s`` (their state freed, their downloads kept for the Stop that
        may still come), free stopped ones as long idle, delete outputs older than ``retention_s``, and give free
        heap back to the system (:mod:`ui.heap`). Runs every few seconds on its own thread."""
        now = time.monotonic() if now is None else now
        self.rooms.registry.end_idle(now)
        for key, live in self.registry.idle(now - self.web.idle_timeout_s):
            log.info("closing a live stream idle for %.0f s", now - live.last_active)
            live.finish()
            self._closed[key] = [str(p) for p in live.write_downloads(self._output_folder("live-"))]
            self.registry.drop(key)
        self.registry.drop_finished(now - self.web.idle_timeout_s)
        cutoff = time.time() - self.web.retention_s
        for folder in self.work_dir.iterdir():
            if folder.is_dir() and folder.stat().st_mtime < cutoff:
                shutil.rmtree(folder, ignore_errors=True)
        for key, files in list(self._closed.items()):  # downloads past retention are no longer offered
            if not all(Path(f).exists() for f in files):
                self._closed.pop(key, None)
        release_free_heap()

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

    @staticmethod
    def file_reset():
        """A new file or a new Translate: the previous file's results leave the screen at once."""
        return None, "", "", _downloads([]), ""

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
        files = [str(p) for p in written]
        return wav, transcript, translation, _downloads(files), _safety_markdown(flagged, "Safety flags")

    # ---- text -----------------------------------------------------------------------------------------------

    def translate_text(self, text, src, tgt, task_label, request: gr.Request, progress=gr.Progress()):  # noqa: B008
        """Long text is cut into sentences and translated a batch at a time, with progress, up to the stated limit.
        The translation and its safety notes are shown as soon as they are decided; the speech follows (it is made
        one call at a time, and on a busy server takes longer than the text)."""
        if not text or not text.strip():
            raise gr.Error("Type some text to translate.")
        if not src:
            raise gr.Error("Choose the language of the text (source language).")
        limit = self.web.max_text_chars
        if len(text) > limit:
            raise gr.Error(f"The text has {len(text):,} characters; at most {limit:,} are translated at once.")
        task = Task.T2ST if task_label == SPEECH_AND_TEXT else Task.T2TT
        pipeline = self.runtime.pipeline()
        sentences = split_sentences(text)
        checked = []
        for batch in batches(sentences):
            done = sum(len(c.results) for c in checked)
            progress(done / len(sentences), desc=f"Translated {done} of {len(sentences)} sentences")
            checked.append(pipeline.check_texts([s.text for s in batch], task, tgt, src))
        results = [pair for c in checked for pair in c.results]
        translation = join_paragraphs(sentences, [result.text for result, _ in results])
        safety = _text_safety(results)
        if not task.speech_output:
            yield translation, None, safety
            return
        yield translation, None, safety + "\n\n*Making the speech…*"
        speech = [result.waveform for c in checked for result, _ in pipeline.speak_texts(c)]
        folder = self._output_folder("text-")
        marked = self.marker(request)(np.concatenate(speech))
        yield translation, str(write_wav(folder / f"translation.{results[0][0].tgt_lang}.wav", marked)), safety

    # ---- watermark check ------------------------------------------------------------------------------------

    def verify(self, path):
        if not path:
            raise gr.Error("Upload a recording to check.")
        pipeline = self.runtime.pipeline()
        max_s = pipeline.settings.engine.max_audio_s
        samples, rate = decode(path, max_duration_s=max_s)
        if samples.size == 0 or float(np.max(np.abs(samples))) < SILENCE_PEAK:
            return "### Nothing to check\nThe recording is silent, so it cannot carry a watermark.", _evidence([])
        audio = prepare(samples, rate, max_duration_s=max_s)
        result = pipeline.watermarker.detect(audio, SAMPLE_RATE_HZ)
        # The watermark knows how much sound a payload needs; a shorter clip is "too short", never "unreadable"
        # (which suggests tampering).
        needs = f"{pipeline.watermarker.min_payload_s:.1f} s of sound"
        short = f" The clip is too short to hold a payload (it needs {needs})." if result.too_short else ""
        if result.detected:
            if result.payload is not None:
                who = describe_payload(result.payload)
            elif result.too_short:
                who = f"present, but the clip is too short to hold a payload (it needs {needs})"
            else:
                who = "present, but the payload could not be read"
            ranges = ", ".join(f"{a:.1f}–{b:.1f} s" for a, b in result.marked_s) or "—"
            text = (
                f"### Watermark found\n**Payload:** {who}  \n**Where:** {ranges}  \n"
                f"**Confidence:** chance of this in unmarked audio p = {result.p_value:.1e} (score {result.score:.1f})"
            )
        else:
            text = (
                "### No Parley watermark found\n"
                f"(score {result.score:.1f}, p = {result.p_value:.2f}). Audio from another source, a different "
                f"server key, or altered beyond recognition.{short}"
            )
        return text, _evidence(result.windows)

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
                with gr.Tab("Live", id="live", elem_id="live-tab") as live:
                    self._live_tab(shared)
                with gr.Tab("File", id="file") as file:
                    self._file_tab(shared)
                with gr.Tab("Text", id="text") as text:
                    self._text_tab(shared)
                with gr.Tab("Conversation", id="conversation") as conversation:
                    self.conversations.tab(demo, tabs)
                with gr.Tab("Verify watermark", id="verify") as verify:
                    self._verify_tab()
            # The settings mean nothing on the Verify tab: they hide there.
            for tab in (live, file, text, conversation, verify):
                tab.select(lambda shown=tab is not verify: gr.update(visible=shown), outputs=[shared.row],
                           queue=False, show_progress="hidden")  # fmt: skip
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
        with gr.Column(elem_id="settings-row") as row, gr.Row():
            src = gr.Dropdown(
                [("Not specified", NO_SOURCE), *[(lang.label, lang.code) for lang in all_languages()]],
                value="eng", label="Source language (needed for text and for a transcript)", filterable=True,
                elem_id="src-lang", allow_custom_value=True, scale=2,
            )  # fmt: skip
            # allow_custom_value: a code the list does not hold reaches the handler, which answers in plain words
            # (instead of Gradio's "Value: … is not in the list of choices").
            tgt = gr.Dropdown(
                target_choices(SPEECH_AND_TEXT), value="spa", label="Target language", filterable=True,
                elem_id="tgt-lang", allow_custom_value=True, scale=2,
            )  # fmt: skip
            task = gr.Radio([SPEECH_AND_TEXT, TEXT_ONLY], value=SPEECH_AND_TEXT, label="Output", elem_id="task")
            preset = gr.Dropdown(
                [(preset_label(name), name) for name in PRESETS], value=settings.streaming.preset,
                label="Latency (live)", elem_id="preset", scale=3, min_width=360,
                info="How often live captions update, and how long a pause ends a sentence.",
            )  # fmt: skip
            expressive = gr.Checkbox(
                value=settings.expressive.expressive,
                label="Keep my voice's character (pauses, pace, pitch, loudness, voice)", elem_id="expressive",
            )  # fmt: skip
        note = gr.Markdown(elem_id="settings-note")
        last_spoken = gr.State("spa")  # the last target that can be spoken, to go back to
        switched = task.change(
            keep_valid_target, inputs=[task, tgt, last_spoken], outputs=[tgt, last_spoken, note], show_progress="hidden"
        )
        return _Shared(src, tgt, task, preset, expressive, row, note, switched)

    def _live_tab(self, shared: _Shared) -> None:
        # Captions right under the Record button, so both are in view while recording (a phone included).
        mic = gr.Audio(sources=["microphone"], streaming=True, type="filepath", label="Microphone", elem_id="mic")
        captions = gr.HTML(LiveTranslation.empty_captions_html(), elem_id="captions")
        live_status = gr.Markdown(elem_id="live-status")
        transcript = gr.Textbox(label="What was said (source transcript)", elem_id="live-transcript")
        # Pieces of translated speech go to the page's player (ui/page.js), which queues them back to back; the
        # whole of it, as saved, lands in the visible player when recording stops.
        feed = gr.Audio(interactive=False, elem_id="live-feed", show_label=False)
        speaker = gr.Audio(label="Translated speech (all of it, after you stop)", interactive=False,
                           elem_id="live-audio")  # fmt: skip
        halt = gr.Textbox(visible=False)
        clear = gr.Button("Clear results", elem_id="live-clear")
        live_files = gr.File(label="Downloads", file_count="multiple", elem_id="live-files", visible=False)
        # A live event only hands audio to its stream's own thread and returns, but Gradio holds its slot for the
        # whole stream: its own group, sized for the streams this server takes at once, never the model's slot.
        live_event = {"concurrency_limit": self.web.max_live_streams, "concurrency_id": LIVE_GROUP}
        quiet = {"show_progress": "hidden"}  # streaming outputs never fade or show timers
        key = gr.State(None, delete_callback=self.registry.drop)  # this tab's live-state secret (server side only)
        texts = [captions, transcript, live_status]
        mic.start_recording(
            self.live_start, outputs=[*texts, speaker, live_files, *shared.locked, shared.note, clear],
            js="() => window.parley.resetPlayer()", queue=False, **quiet,
        )  # fmt: skip
        mic.stream(
            _plain_errors(_gpu(self.live_chunk)),
            inputs=[mic, *shared.controls, key],
            outputs=[*texts, feed, key, halt],
            stream_every=0.5,
            time_limit=self.web.stream_time_limit_s,
            **live_event,
            **quiet,
        )
        mic.stop_recording(
            _plain_errors(_gpu(self.live_stop)), inputs=[key], outputs=[*texts, feed, speaker, live_files],
            **live_event, **quiet,
        ).then(self.live_unlock, outputs=[*shared.locked, shared.note, clear], queue=False, **quiet)  # fmt: skip
        # A listener's change mid-stream: the target (picked, or put back by the output switch) and the output.
        retarget = {"fn": self.live_retarget, "inputs": [shared.tgt, shared.task, key, shared.note],
                    "outputs": [shared.note], "queue": False, **quiet}  # fmt: skip
        shared.tgt.input(**retarget)
        shared.task_switched.then(**retarget)
        feed.change(None, inputs=[feed], js="(piece) => window.parley.play(piece)")
        halt.change(None, inputs=[halt], js="(note) => { if (note) window.parley.stopRecording(); return []; }")
        clear.click(
            self.live_clear, inputs=[key], outputs=[*texts, speaker, feed, live_files, key],
            js="() => window.parley.resetPlayer()", queue=False, **quiet,
        )  # fmt: skip
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
        files = gr.File(label="Downloads", file_count="multiple", elem_id="file-files", visible=False)
        outputs = [audio, transcript, translation, files, safety]
        upload.change(self.file_reset, outputs=outputs, queue=False, show_progress="hidden")
        go.click(self.file_reset, outputs=outputs, queue=False, show_progress="hidden").then(
            _plain_errors(_gpu(self.translate_file)),
            inputs=[upload, shared.src, shared.tgt, shared.task, shared.expressive],
            outputs=outputs,
            **self._model_event,
        )

    def _text_tab(self, shared: _Shared) -> None:
        text_in = gr.Textbox(
            label="Text", lines=4, elem_id="text-in",
            info=f"Up to {self.web.max_text_chars:,} characters; long text is translated sentence by sentence.",
        )  # fmt: skip
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
        plot = gr.LinePlot(x="time (s)", y="score", color="line", label="Watermark evidence over time",
                           elem_id="verify-plot")  # fmt: skip
        go.click(_plain_errors(self.verify), inputs=[check_in], outputs=[result, plot], concurrency_limit=2)


def _evidence(windows: list[WindowScore]) -> pd.DataFrame:
    """The Verify plot: each window's score, and the line above which a score is rare in unmarked audio."""
    times = [(w.start_s + w.end_s) / 2 for w in windows]
    ends = [min(times), max(times)] if times else []
    return pd.DataFrame(
        {
            "time (s)": times + ends,
            "score": [w.score for w in windows] + [CHANCE_SCORE] * len(ends),
            "line": ["evidence"] * len(times) + ["rare by chance above this"] * len(ends),
        }
    )


def _theme() -> gr.themes.Base:
    """System fonts only (the default theme would fetch web fonts, and an offline launch makes no outside
    requests); hints, info lines and primary buttons darker than Gradio's, for 4.5:1 contrast (axe-core found
    1.9:1 and 2.8:1)."""
    theme = gr.themes.Default(
        font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"]
    )
    return theme.set(
        body_text_color_subdued="*neutral_600",
        button_primary_background_fill="*primary_700",
        button_primary_background_fill_hover="*primary_800",
        button_primary_background_fill_dark="*primary_700",
        button_primary_background_fill_hover_dark="*primary_800",
    )


def build_app(settings: Settings, work_dir: Path | None = None) -> tuple[ParleyApp, gr.Blocks]:
    """The whole app; starts loading the model in the background right away."""
    hand_over_often()
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
        css_paths=[PAGE_DIR / "page.css"],
        js=(PAGE_DIR / "page.js").read_text(encoding="utf-8"),
        theme=_theme(),
    )
    app.attach_websocket(demo)
    app.start_housekeeping()
    if block:
        demo.block_thread()
