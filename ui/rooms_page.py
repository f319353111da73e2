"""The page's parts for rooms: the speaker's panel (in the Live tab) and the listener's view (``/?room=CODE``).

The room itself lives in :mod:`ui.rooms`; here are only the components and the handlers that connect them to it.
Every handler answers a refused request (unknown code, room full, room ended) in the page, in one sentence.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import gradio as gr

from engine.audio import AudioError
from engine.languages import Capability, languages_with
from ui.live import LiveTranslation, as_player_audio
from ui.rooms import ENDED_BY_SPEAKER, Room, RoomError, RoomRegistry, listening_note
from ui.runtime import ModelRuntime

SPEECH_AND_TEXT = "Speech + text"
TEXT_ONLY = "Text only"
#: How often a listener's page asks for new captions and speech, and the speaker's for the listener counts (s).
LISTENER_POLL_S = 0.5
SPEAKER_POLL_S = 1.0


class RoomsPage:
    """Handlers for rooms, bound to the runtime and one :class:`RoomRegistry` (no globals)."""

    def __init__(self, runtime: ModelRuntime, work_dir: Path) -> None:
        self.runtime = runtime
        self.web = runtime.settings.web
        self.work_dir = work_dir
        self.registry = RoomRegistry(self.web.max_rooms, self.web.room_idle_timeout_s)

    # ---- speaker ------------------------------------------------------------------------------------------------

    def open_room(self, src, preset, expressive, code, request: gr.Request):
        if code:
            return gr.skip(), code, gr.Timer(active=True), gr.skip()
        pipeline = self.runtime.pipeline()
        web = self.web

        def build(new_code: str) -> Room:
            return Room(
                new_code,
                lambda sink: pipeline.room(sink, src or None, preset, expressive, web.max_room_languages),
                pipeline.marker,
                self.work_dir,
                web.max_room_listeners,
                web.max_backlog_s,
            )

        try:
            room = self.registry.open(build)
        except RoomError as e:
            return str(e), None, gr.Timer(active=False), gr.skip()
        host = request.headers.get("host", "") if request is not None else ""
        link = f"/?room={room.code}"
        info = (
            f"**Room code:** `{room.code}` · **Link for listeners:** [{host}{link}]({link})  \n"
            "Record with the microphone below; the room ends when you end it or close this page."
        )
        return info, room.code, gr.Timer(active=True), gr.update(visible=True)

    def speaker_chunk(self, chunk, code):
        if chunk is None or not code:
            return gr.skip(), gr.skip()
        room = self.registry.find(code)
        rate, samples = chunk
        room.speak(samples, rate, time.monotonic())
        return room.speaker_status(), room.source_transcript()

    def speaker_tick(self, code):
        if not code:
            return gr.skip(), gr.skip()
        try:
            room = self.registry.find(code)
        except RoomError:
            return gr.skip(), gr.skip()
        return room.speaker_status(), room.source_transcript()

    def end_room(self, code):
        if not code:
            return gr.skip(), gr.skip(), None, gr.Timer(active=False), gr.skip()
        room = self.registry.find(code)
        self.registry.close(code, ENDED_BY_SPEAKER)
        files = [str(p) for p in room.speaker_downloads()]
        return "The room has ended; here are its transcript and every language's captions.", \
            gr.update(value=files or None, visible=bool(files)), None, gr.Timer(active=False), \
            gr.update(visible=False)  # fmt: skip

    def speaker_left(self, code) -> None:
        """The speaker's tab closed: the room ends for everyone."""
        if code:
            self.registry.close(code, ENDED_BY_SPEAKER)

    # ---- listener -----------------------------------------------------------------------------------------------

    def on_load(self, request: gr.Request):
        code = request.query_params.get("room") if request is not None else None
        if not code:
            return gr.update(visible=False), None, gr.skip(), gr.update()
        try:
            room = self.registry.find(code)
        except RoomError as e:
            return gr.update(visible=True), None, str(e), gr.update(visible=False)
        if room.ended:
            return gr.update(visible=True), None, room.ended, gr.update(visible=False)
        text = f"**Room {room.code}** · choose your language and output, then join."
        return gr.update(visible=True), room.code, text, gr.update(visible=True)

    def join(self, code, lang, output, key):
        if not code:
            return UNKNOWN_NOTE, key, gr.Timer(active=False)
        try:
            room = self.registry.find(code)
            if key:
                room.leave(key)
            key = room.join(lang, output == SPEECH_AND_TEXT)
        except RoomError as e:
            return str(e), None, gr.Timer(active=False)
        return listening_note(room.code, lang), key, gr.Timer(active=True)

    def listener_tick(self, code, key):
        if not code or not key:
            return gr.skip(), gr.skip(), gr.skip(), gr.Timer(active=False)
        try:
            view = self.registry.find(code).view(key)
        except RoomError as e:
            return gr.skip(), gr.skip(), str(e), gr.Timer(active=False)
        if view.ended:
            return view.captions_html, as_player_audio(view.speech), f"**{view.status}**", gr.Timer(active=False)
        # Plain values while the room is live, never gr.skip() or a new gr.Timer: Gradio rebuilds an output's
        # component and its API schema for every update it is handed, and every listener polls twice a second.
        # A piece of speech that is None is ignored by the page's player; the timer's value is its interval.
        return view.captions_html, as_player_audio(view.speech), view.status, LISTENER_POLL_S

    def listener_downloads(self, code, key):
        try:
            room = self.registry.find(code)
            return [str(p) for p in room.listener_downloads(key)] or None
        except RoomError as e:
            raise gr.Error(str(e)) from e

    def listener_left(self, state) -> None:
        code, key = state if state else (None, None)
        if code and key:
            with contextlib.suppress(RoomError):  # the room is already gone
                self.registry.find(code).leave(key)

    # ---- layout -------------------------------------------------------------------------------------------------

    def speaker_panel(self, shared) -> None:
        """Inside the Live tab: open a room, speak into it, see who listens (counts per language)."""
        with gr.Group(elem_id="room-speaker"):
            gr.Markdown("### A room for listeners\nOthers follow you live, each in their own language.")
            open_button = gr.Button("Open a room", elem_id="room-open")
            info = gr.Markdown(elem_id="room-info")
            # The room's own controls appear once it is open, and its downloads once it has ended.
            with gr.Column(visible=False, elem_id="room-controls") as controls:
                mic = gr.Audio(sources=["microphone"], streaming=True, type="numpy", label="Speak to the room",
                               elem_id="room-mic")  # fmt: skip
                status = gr.Markdown(elem_id="room-status")
                transcript = gr.Textbox(label="What you said", elem_id="room-transcript")
                end = gr.Button("End the room", elem_id="room-end")
            files = gr.File(label="Room downloads", file_count="multiple", elem_id="room-files", visible=False)
        code = gr.State(None, delete_callback=self.speaker_left)
        timer = gr.Timer(SPEAKER_POLL_S, active=False)
        open_button.click(
            self.open_room,
            inputs=[shared.src, shared.preset, shared.expressive, code],
            outputs=[info, code, timer, controls],
        )
        live_event = {"concurrency_limit": self.web.max_live_streams, "concurrency_id": "room-speakers"}
        mic.stream(self._plain(self.speaker_chunk), inputs=[mic, code], outputs=[status, transcript],
                   stream_every=0.5, time_limit=self.web.stream_time_limit_s, **live_event)  # fmt: skip
        timer.tick(self.speaker_tick, inputs=[code], outputs=[status, transcript])
        end.click(self._plain(self.end_room), inputs=[code], outputs=[info, files, code, timer, controls])

    def listener_panel(self, demo: gr.Blocks) -> None:
        """Shown only when the page is opened with ``?room=CODE``: join, then follow live."""
        languages = [(lang.label, lang.code) for lang in languages_with(Capability.TEXT)]
        with gr.Column(visible=False, elem_id="room-listener") as panel:
            gr.Markdown("## Listening to a room")
            note = gr.Markdown(elem_id="listener-status")
            with gr.Row() as controls:
                lang = gr.Dropdown(languages, value="spa", label="Your language", filterable=True,
                                   elem_id="listener-lang")  # fmt: skip
                output = gr.Radio([SPEECH_AND_TEXT, TEXT_ONLY], value=SPEECH_AND_TEXT, label="Output",
                                  elem_id="listener-output")  # fmt: skip
                join = gr.Button("Join", variant="primary", elem_id="listener-join", scale=0)
            captions = gr.HTML(LiveTranslation.empty_captions_html(), elem_id="listener-captions")
            # Pieces of speech go to the page's player (ui/page.js, the Live tab's), which plays them back to back.
            feed = gr.Audio(interactive=False, elem_id="listener-feed", show_label=False)
            download = gr.Button("Download what was said so far", elem_id="listener-download")
            files = gr.File(label="Your downloads", file_count="multiple", elem_id="listener-files")
        code = gr.State(None)
        key = gr.State(None)
        membership = gr.State(None, delete_callback=self.listener_left)  # (code, key), to leave on close
        timer = gr.Timer(LISTENER_POLL_S, active=False)
        demo.load(self.on_load, outputs=[panel, code, note, controls])
        join.click(self.join, inputs=[code, lang, output, key], outputs=[note, key, timer]).then(
            lambda c, k: (c, k), inputs=[code, key], outputs=[membership]
        )
        timer.tick(self.listener_tick, inputs=[code, key], outputs=[captions, feed, note, timer])
        feed.change(None, inputs=[feed], js="(piece) => window.parley.play(piece)")
        download.click(self.listener_downloads, inputs=[code, key], outputs=[files])

    @staticmethod
    def _plain(fn):
        def wrapper(*args):
            try:
                return fn(*args)
            except (RoomError, AudioError) as e:
                raise gr.Error(str(e)) from e

        wrapper.__name__ = fn.__name__
        return wrapper


UNKNOWN_NOTE = "Open the room's link to join it."
