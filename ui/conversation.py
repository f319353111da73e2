"""The Conversation tab: two people, two languages, on one device or two (``/?talk=CODE``).

One :class:`engine.conversation.Conversation` per code, shared by the devices that opened its link: a person records
an utterance and presses their own big button (or "Who spoke?", which finds it from the audio with the model's own
scores); the turn shows on every device, in the speaker's language with the translation under it, and the device
of the person it is for plays the translation, marked with that device's watermark payload.
"""

from __future__ import annotations

import html
import secrets
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr

from engine.audio import AudioError, prepare
from engine.conversation import Conversation, ModelScorer, Person, Turn
from engine.languages import Capability, get_language, languages_with
from engine.tasks import Task
from safety.marking import MarkedTimeline
from ui.live import as_player_audio
from ui.runtime import ModelRuntime

ME_A, ME_B, ME_BOTH = "Person A", "Person B", "Both (one device)"
UNKNOWN_TALK = "No conversation has this code; check the link you were given."
#: How often a device asks for the other device's turns (s).
POLL_S = 1.0


@dataclass
class _Shared:
    """One conversation and the lock its devices take turns under."""

    conversation: Conversation
    lock: threading.Lock = field(default_factory=threading.Lock)
    last_active: float = field(default_factory=time.monotonic)


class ConversationPage:
    def __init__(self, runtime: ModelRuntime, work_dir: Path, max_open: int, idle_timeout_s: float) -> None:
        self.runtime = runtime
        self.work_dir = work_dir
        self._max_open, self._idle_timeout_s = max_open, idle_timeout_s
        self._lock = threading.Lock()
        self._talks: dict[str, _Shared] = {}

    # ---- handlers -----------------------------------------------------------------------------------------------

    def start(self, lang_a, lang_b, request: gr.Request):
        pipeline = self.runtime.pipeline()
        for lang in (lang_a, lang_b):
            pipeline.translator.check_target(lang, speech_output=False)

        def translate(audio, tgt, src):
            task = Task.S2ST if get_language(tgt).speech_output else Task.S2TT
            return pipeline.translate_recording(audio, task, tgt, src)

        people = (Person("Person A", lang_a), Person("Person B", lang_b))
        try:
            conversation = Conversation(people, translate, ModelScorer(pipeline.translator))
        except ValueError as e:
            raise gr.Error(str(e)) from e
        with self._lock:
            self._forget_idle()
            if len(self._talks) >= self._max_open:
                raise gr.Error("The server already holds its most conversations; try again later.")
            code = secrets.token_urlsafe(12)  # 96 bits: the link is the only way in
            self._talks[code] = _Shared(conversation)
        link = f"/?talk={code}"
        info = f"**Conversation open.** On a second device, open [{link}]({link}) (it joins as Person B)."
        return info, code, ME_BOTH, -1, gr.Timer(active=True)

    def on_load(self, request: gr.Request):
        code = request.query_params.get("talk") if request is not None else None
        if not code:
            return gr.skip(), None, gr.skip(), gr.Timer(active=False), gr.skip()
        if self._find(code) is None:
            return UNKNOWN_TALK, None, gr.skip(), gr.Timer(active=False), gr.skip()
        return "**Joined the conversation** as Person B.", code, ME_B, gr.Timer(active=True), \
            gr.Tabs(selected="conversation")  # fmt: skip

    def turn(self, code, recording, me, played, speaker: int | None, request: gr.Request):
        shared = self._find(code)
        if shared is None:
            raise gr.Error(UNKNOWN_TALK if code else "Start a conversation first.")
        if recording is None:
            raise gr.Error("Record what you said first, then press your button.")
        rate, samples = recording
        audio = prepare(samples, rate, self.runtime.settings.engine.max_audio_s)
        with shared.lock:
            shared.conversation.take_turn(audio, speaker)
            shared.last_active = time.monotonic()
        return (*self._render(shared, me, played, request), None)

    def tick(self, code, me, played, request: gr.Request):
        shared = self._find(code)
        if shared is None:
            return gr.skip(), gr.skip(), played
        return self._render(shared, me, played, request)

    def export(self, code, request: gr.Request):
        shared = self._find(code)
        if shared is None:
            raise gr.Error("Start a conversation first.")
        folder = Path(tempfile.mkdtemp(prefix="talk-", dir=self.work_dir))
        timeline = MarkedTimeline(self._marker(request))
        with shared.lock:
            written = shared.conversation.write(folder, timeline)
        if not written:
            raise gr.Error("Nothing has been said yet.")
        return [str(p) for p in written]

    def _render(self, shared: _Shared, me: str, played: int, request: gr.Request):
        """The turns as HTML, and the newest translation for this device that it has not played yet."""
        with shared.lock:
            talk = shared.conversation
            turns = list(talk.turns)
            labels = [talk.label(0), talk.label(1)]
        for_me = [t for t in turns if t.index > played and _hears(me, 1 - t.speaker) and t.speech is not None]
        audio = gr.skip()
        if for_me:
            # An empty turn leaves the visible player as it is (None would clear it).
            audio = as_player_audio(self._marker(request)(for_me[-1].speech)) or gr.skip()
        newest = turns[-1].index if turns else played
        return _turns_html(turns, labels), audio, max(played, newest)

    def _marker(self, request: gr.Request):
        key = request.session_hash if request is not None and request.session_hash else "no-session"
        return self.runtime.pipeline().marker(key)

    def _find(self, code: str | None) -> _Shared | None:
        with self._lock:
            return self._talks.get(code) if code else None

    def _forget_idle(self) -> None:
        now = time.monotonic()
        for code in [c for c, s in self._talks.items() if now - s.last_active > self._idle_timeout_s]:
            del self._talks[code]

    # ---- layout -------------------------------------------------------------------------------------------------

    def tab(self, demo: gr.Blocks, tabs: gr.Tabs) -> None:
        spoken = [(lang.label, lang.code) for lang in languages_with(Capability.SPEECH_OUTPUT)]
        with gr.Row():
            lang_a = gr.Dropdown(spoken, value="eng", label="Person A speaks", elem_id="conv-lang-a")
            lang_b = gr.Dropdown(spoken, value="spa", label="Person B speaks", elem_id="conv-lang-b")
            start = gr.Button("Start a conversation", elem_id="conv-start", scale=0)
        info = gr.Markdown(elem_id="conv-info")
        me = gr.Radio([ME_A, ME_B, ME_BOTH], value=ME_BOTH, label="This device plays translations for",
                      elem_id="conv-me")  # fmt: skip
        mic = gr.Audio(sources=["microphone"], type="numpy", label="Record what you say", elem_id="conv-mic")
        with gr.Row():
            speak_a = gr.Button("Person A spoke", variant="primary", size="lg", elem_id="conv-a")
            speak_b = gr.Button("Person B spoke", variant="primary", size="lg", elem_id="conv-b")
        auto = gr.Button("Who spoke? (found from the audio)", elem_id="conv-auto")
        turns = gr.HTML('<div class="turns"></div>', elem_id="conv-turns")
        audio = gr.Audio(label="Translation", autoplay=True, interactive=False, elem_id="conv-audio")
        export = gr.Button("Export the conversation", elem_id="conv-export")
        files = gr.File(label="Conversation downloads", file_count="multiple", elem_id="conv-files")
        code, played = gr.State(None), gr.State(-1)
        timer = gr.Timer(POLL_S, active=False)
        start.click(self.start, inputs=[lang_a, lang_b], outputs=[info, code, me, played, timer])
        demo.load(self.on_load, outputs=[info, code, me, timer, tabs])
        event = {"concurrency_limit": self.runtime.settings.web.concurrency_limit, "concurrency_id": "model"}
        for button, speaker in ((speak_a, 0), (speak_b, 1), (auto, None)):
            button.click(
                _plain(self.turn, speaker), inputs=[code, mic, me, played], outputs=[turns, audio, played, mic],
                **event,
            )  # fmt: skip
        timer.tick(self.tick, inputs=[code, me, played], outputs=[turns, audio, played])
        export.click(self.export, inputs=[code], outputs=[files])


def _hears(me: str, person: int) -> bool:
    return me == ME_BOTH or (me == ME_A) == (person == 0)


def _plain(handler, speaker: int | None):
    def take(code, recording, me, played, request: gr.Request):
        try:
            return handler(code, recording, me, played, speaker, request)
        except AudioError as e:
            raise gr.Error(str(e)) from e

    return take


def _turns_html(turns: list[Turn], labels: list[str]) -> str:
    rows = []
    for t in turns:
        how = ""
        if t.direction is not None:
            a, b = t.direction.scores
            how = f' <span class="how">(found from the audio: {a:.2f} vs {b:.2f})</span>'
        rows.append(
            f'<div class="turn turn-{"ab"[t.speaker]}"><div class="said"><b>{html.escape(labels[t.speaker])}</b>'
            f'{how}: {html.escape(t.transcript)}</div><div class="heard">→ {html.escape(labels[1 - t.speaker])}: '
            f"{html.escape(t.translation)}</div></div>"
        )
    return f'<div class="turns">{"".join(rows)}</div>'
