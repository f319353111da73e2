"""Simultaneous speech translation: translate while the person is still speaking.

One :class:`StreamingSession` per stream, with a tiny API::

    session = StreamingSession(backend, StreamingVad.for_new_stream(vad_model), tgt_lang="spa")
    for chunk in microphone:                       # any size, any sample rate
        for event in session.push(chunk, 48_000):  # PartialText, CommittedText, SpeechChunk, SegmentEnd, Notice
            ...
    events = session.finish()                      # flushes the last words

The session only composes small parts, each in its own module:

1. :class:`~engine.stream_input.StreamInput` cleans the input and cuts 16 kHz windows (chunking-independent).
2. :class:`~engine.segmenter.StreamSegmenter` opens, steps and closes segments with Silero VAD.
3. At each step the :class:`~engine.backend.StreamingBackend` re-translates the segment so far after the committed
   words (forced prefix), and a :class:`~engine.agreement.CommitPolicy` (LocalAgreement-n) decides what to commit.
   Committed text is never retracted.
4. A :class:`~engine.hooks.Judge` (the safety stage), when given, sees every commit before its speech is made; the
   session runs the re-decode it asks for (:mod:`engine.mitigation`) and carries its masks on the event.
5. Each commit is spoken right away from decoder states that saw the whole committed prefix (nothing is translated
   twice), shaped by the expressive stage when one is given.

Every decision happens at a window boundary in *source* time, so the same audio gives the same text whatever the
chunk size; work per step is bounded by ``max_segment_s``, so minute 10 costs what minute 1 does.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from engine.agreement import CommitPolicy, LocalAgreement
from engine.backend import EncoderState, StreamingBackend
from engine.constants import SAMPLE_RATE_HZ
from engine.hooks import Judge, Report
from engine.languages import Capability, get_language
from engine.live_voice import LiveVoice, ProsodyStage
from engine.masking import mask
from engine.mitigation import judge_and_mitigate
from engine.presets import PRESETS, LatencyPreset, token_budget
from engine.segmenter import SegmentAudio, SegmentStep, SpeechProbability, StreamSegmenter
from engine.step_pacing import StepPacer
from engine.stream_events import (
    CommittedText,
    Notice,
    PartialText,
    SegmentEnd,
    SpeechChunk,
    StepsCoarsened,
    StreamEvent,
)
from engine.stream_input import LiveInputLimits, StreamInput
from engine.tasks import Task

__all__ = [
    "PRESETS",
    "CommittedText",
    "LatencyPreset",
    "Notice",
    "PartialText",
    "SegmentEnd",
    "SpeechChunk",
    "StepsCoarsened",
    "StreamEvent",
    "StreamingSession",
    "committed_word_delays",
    "token_budget",
]

#: Live path: the transcript a commit's judge needs is decoded with at most this many tokens per target token
#: committed (plus ``MIN_TRANSCRIPT_TOKENS``); it bounds the extra decode a commit may cost.
TRANSCRIPT_TOKENS_PER_TARGET_TOKEN = 2
MIN_TRANSCRIPT_TOKENS = 8


@dataclass
class _Decoding:
    """What the session knows about the open segment's translation: committed tokens and their text as shown in
    pieces (joined), and the masks the judge asked for on that text."""

    audio: SegmentAudio
    committed: list[int] = field(default_factory=list)
    text: str = ""
    masks: tuple[tuple[int, int], ...] = ()


class StreamingSession:
    """One live stream: speech in (any chunking, any rate), events out. Not thread-safe; one per stream."""

    def __init__(
        self,
        backend: StreamingBackend,
        vad: SpeechProbability,
        tgt_lang: str,
        task: Task | str = Task.S2TT,
        preset: LatencyPreset | str = "balanced",
        src_lang: str | None = None,
        speaker_id: int | None = None,
        expressive: ProsodyStage | None = None,
        judge: Judge | None = None,
        policy: Callable[[int, Callable[[int], bool]], CommitPolicy] = LocalAgreement,
        limits: LiveInputLimits | None = None,
    ) -> None:
        """``src_lang``, when given, adds a source transcript to each :class:`SegmentEnd` (one extra decode per
        segment, from the same encoder pass as the translation's final step). An ``expressive`` stage picks each
        segment's voice and gives every speech chunk the prosody of the source audio heard since the previous chunk
        (no look-ahead). A ``judge`` (the safety stage) sees every commit before its speech is made; its report
        rides on the :class:`CommittedText`. ``policy(n, starts_word)`` builds the commit policy; ``limits`` bound what
        one chunk may be (rate, length, channels)."""
        self.task = Task(task)
        if not self.task.speech_input:
            raise ValueError("streaming takes speech: use s2tt, s2st or asr")
        if self.task is Task.ASR:
            if src_lang is None:
                raise ValueError("streaming transcription needs the spoken language (src_lang)")
            tgt_lang = src_lang
        self.tgt_lang = _target_code(tgt_lang, self.task)
        self.src_lang = get_language(src_lang, Capability.TEXT).code if src_lang is not None else None
        self.preset = PRESETS[preset] if isinstance(preset, str) else preset
        self._backend = backend
        self._judge = judge
        self._voice = LiveVoice(expressive, speaker_id)
        self._make_policy = policy
        self._policy = self._new_policy()
        #: What the next segment is translated into (:meth:`retarget`): written by whoever calls it, read only when
        #: a segment opens, so a change never splits a segment.
        self._wanted: tuple[Task, str] = (self.task, self.tgt_lang)
        self._input = StreamInput(limits)
        self._segmenter = StreamSegmenter(vad, self.preset)
        self._pacer = StepPacer(self.preset.step_s) if self.preset.step_s is not None else None
        self._pace_notices: list[StreamEvent] = []
        self._open: _Decoding | None = None
        self._segment_index = 0
        self._compute_s = 0.0
        self._busy_since: float | None = None
        self._partial = ""
        self._finished = False
        #: Every finished segment, in order: the session's transcript (kept for downloads; not read per step).
        self.segments: list[SegmentEnd] = []

    # ---- public API ---------------------------------------------------------------------------------------------

    def push(self, samples: np.ndarray, sample_rate_hz: int) -> list[StreamEvent]:
        """Feed a chunk (int or float PCM, mono or multi-channel); returns the events it caused, in order."""
        if self._finished:
            raise RuntimeError("this session is finished; start a new one")
        return self._busy(lambda: self._windows(self._input.push(samples, sample_rate_hz)))

    def retarget(self, tgt_lang: str, task: Task | str) -> None:
        """Translate from the next segment on into ``tgt_lang``, spoken (``s2st``) or not (``s2tt``): the listener
        changed. The open segment finishes as it started and committed text stays; the change costs nothing (the
        encoder's states do not depend on the target). Safe to call from another thread than the one pushing
        audio. Raises :class:`~engine.languages.UnknownLanguageError` for a target the output cannot have."""
        task = Task(task)
        if task not in (Task.S2ST, Task.S2TT) or self.task is Task.ASR:
            raise ValueError("only a translation's target and output can change during a stream")
        self._wanted = (task, _target_code(tgt_lang, task))

    def check(self, samples: np.ndarray, sample_rate_hz: int) -> None:
        """Raise :class:`~engine.audio.AudioError` when ``push`` would refuse this chunk (outside the limits)."""
        self._input.check(samples, sample_rate_hz)

    def finish(self) -> list[StreamEvent]:
        """End of stream: translate and commit whatever is left. Calling it again returns nothing."""
        if self._finished:
            return []
        self._finished = True

        def flush() -> list[StreamEvent]:
            events = self._windows(self._input.flush())
            step = self._segmenter.flush()
            return events + (self._on_step(step) + self._backend_notices() if step is not None else [])

        return self._busy(flush)

    def pace(self, lag_s: float) -> None:
        """How far the session trails the speaker: seconds of speech received but not yet pushed. While that is
        more than a step, the session re-translates less often (:mod:`engine.step_pacing`) and says so in a
        :class:`StepsCoarsened` notice among the next events. Only a real-time front end calls it; without it the
        preset's pace holds (the same audio gives the same text)."""
        if self._pacer is None or not self._pacer.update(lag_s):
            return
        self._segmenter.step_stride = self._pacer.stride
        step_s, paced_s = self._pacer.step_s, self._pacer.paced_step_s
        if self._pacer.stride > 1:
            message = (
                f"Falling behind the speaker: captions now update every {paced_s:.1f} s instead of {step_s:.1f} s."
            )
        else:
            message = f"Caught up: captions update every {step_s:.1f} s again."
        self._pace_notices.append(self._stamp(StepsCoarsened, message=message, step_s=paced_s))

    @property
    def source_time_s(self) -> float:
        return self._segmenter.samples_read / SAMPLE_RATE_HZ

    @property
    def compute_s(self) -> float:
        return self._compute_s

    @property
    def open_segment_s(self) -> float:
        """Source audio held for the segment being translated (0 between segments): bounded by ``max_segment_s``."""
        return 0.0 if self._open is None else self._open.audio.duration_s

    # ---- steps --------------------------------------------------------------------------------------------------

    def _windows(self, windows: list[np.ndarray]) -> list[StreamEvent]:
        events: list[StreamEvent] = [self._stamp(Notice, message=m) for m in self._input.take_notices()]
        events += self._pace_notices
        self._pace_notices = []
        for window in windows:
            step = self._segmenter.push(window)
            if step is not None:
                events += self._on_step(step)
        return events + self._backend_notices()

    def _backend_notices(self) -> list[StreamEvent]:
        """A remote backend's notices ("reconnecting"); backends without any have no ``take_notices``."""
        take_notices = getattr(self._backend, "take_notices", None)
        return [self._stamp(Notice, message=m) for m in (take_notices() if take_notices else [])]

    def _on_step(self, step: SegmentStep) -> list[StreamEvent]:
        if self._open is None or self._open.audio is not step.segment:
            self._open_segment(step.segment)
        decoding = self._open
        state = self._backend.encode(decoding.audio.audio)
        budget = token_budget(decoding.audio.duration_s) - len(decoding.committed)
        hypothesis = self._backend.continue_text(state, self.tgt_lang, decoding.committed, budget)
        if step.final:
            return self._end_segment(decoding, state, hypothesis)
        events = self._commit(decoding, state, self._policy.update(hypothesis))
        partial = self._backend.detokenize(self._policy.tentative)
        if partial != self._partial:
            self._partial = partial
            events.append(self._stamp(PartialText, text=partial))
        return events

    def _open_segment(self, audio: SegmentAudio) -> None:
        wanted = self._wanted
        if wanted != (self.task, self.tgt_lang):
            self.task, self.tgt_lang = wanted
            self._policy = self._new_policy()  # whether words need a start test depends on the target's script
        self._open = _Decoding(audio)
        self._voice.start_segment()

    def _new_policy(self) -> CommitPolicy:
        unsegmented = get_language(self.tgt_lang).unsegmented
        starts_word = (lambda _: True) if unsegmented else self._backend.starts_word
        return self._make_policy(self.preset.agreement_n, starts_word)

    def _end_segment(self, decoding: _Decoding, state: EncoderState, rest: list[int]) -> list[StreamEvent]:
        events = self._commit(decoding, state, rest)
        if self._partial:
            self._partial = ""
            events.append(self._stamp(PartialText, text=""))
        shown = mask(decoding.text, decoding.masks).strip()
        transcript = None
        if self.src_lang is not None:
            budget = token_budget(decoding.audio.duration_s)
            transcript = shown if self.task is Task.ASR else self._transcribe(state, budget)
        audio = decoding.audio
        end = self._stamp(
            SegmentEnd,
            start_s=audio.start_sample / SAMPLE_RATE_HZ,
            end_s=audio.end_sample / SAMPLE_RATE_HZ,
            text=shown,
            transcript=transcript,
            tgt_lang=self.tgt_lang,
            spoken=self.task.speech_output,
        )
        self.segments.append(end)
        events.append(end)
        self._open = None
        self._segment_index += 1
        self._policy.reset()
        return events

    # ---- commits ------------------------------------------------------------------------------------------------

    def _commit(self, decoding: _Decoding, state: EncoderState, tokens: list[int]) -> list[StreamEvent]:
        if not tokens:
            return []
        report = None
        if self._judge is not None:  # before anything is shown or spoken
            tokens, report, silenced = self._judged(decoding, state, tokens)
        else:
            silenced = False
        decoding.committed += tokens
        piece = self._piece(decoding, tokens)
        start = len(decoding.text)
        decoding.text += piece
        shown = mask(decoding.text, decoding.masks)[start:]  # masks may reach back into earlier pieces
        events: list[StreamEvent] = [
            self._stamp(CommittedText, text=shown, token_ids=tuple(tokens), safety=report, masks=decoding.masks)
        ]
        if self.task.speech_output:
            audio = decoding.audio.audio
            voice = self._voice.voice(audio)
            speech = self._backend.speak(state, self.tgt_lang, decoding.committed, len(tokens), voice)
            audio = self._voice.shape(audio, speech, self.tgt_lang, self.src_lang)
            if silenced:
                audio = np.zeros_like(audio)  # same length, so what follows keeps its place
            events.append(self._stamp(SpeechChunk, audio=audio))
        return events

    def _piece(self, decoding: _Decoding, tokens: list[int]) -> str:
        """The text the new tokens add to the segment's committed text (with its leading space)."""
        before = self._backend.detokenize(decoding.committed[: len(decoding.committed) - len(tokens)])
        after = self._backend.detokenize(decoding.committed)
        piece = after[len(before) :] if after.startswith(before) else " " + self._backend.detokenize(tokens)
        if not decoding.text:
            piece = piece.lstrip()
            if self._segment_index:  # later segments continue the running text
                piece = " " + piece
        return piece

    def _judged(self, decoding: _Decoding, state: EncoderState, tokens: list[int]) -> tuple[list[int], Report, bool]:
        """Judge the segment's committed text with the new tokens; a MinTox re-decode is forced after the committed
        prefix, bans the words, and is as long as the commit it replaces (the session's latency does not change).
        The transcript is decoded only when the new text holds toxic or gendered words. Returns the tokens to
        commit, the report, and whether their speech is silenced; the segment's masks are updated."""
        backend, committed = self._backend, decoding.committed
        start = len(decoding.text)
        text = decoding.text + self._trial_piece(decoding, tokens)
        source_text = None
        if self.src_lang is not None and self._judge.needs_source(text, self.tgt_lang, start):
            budget = MIN_TRANSCRIPT_TOKENS + TRANSCRIPT_TOKENS_PER_TARGET_TOKEN * (len(committed) + len(tokens))
            source_text = self._transcribe(state, budget)

        def redecode(words: tuple[str, ...]) -> tuple[str, list[int]] | None:
            new = backend.continue_text(state, self.tgt_lang, committed, len(tokens), banned_words=words)
            return (decoding.text + self._trial_piece(decoding, new), new) if new else None

        verdict, _, replacement = judge_and_mitigate(
            self._judge, redecode, source_text, self.src_lang, text, self.tgt_lang, start=start
        )
        if replacement is not None:  # the kept hypotheses continue the replaced tokens: start agreeing afresh
            tokens = replacement
            self._policy.reset()
        decoding.masks = tuple(sorted({*decoding.masks, *verdict.mask_spans}))
        return tokens, verdict.report, verdict.silenced

    def _trial_piece(self, decoding: _Decoding, tokens: list[int]) -> str:
        decoding.committed += tokens
        try:
            return self._piece(decoding, tokens)
        finally:
            del decoding.committed[len(decoding.committed) - len(tokens) :]

    def _transcribe(self, state: EncoderState, budget: int) -> str:
        return self._backend.detokenize(self._backend.continue_text(state, self.src_lang, (), budget)).strip()

    # ---- stamps -------------------------------------------------------------------------------------------------

    def _busy(self, work: Callable[[], list[StreamEvent]]) -> list[StreamEvent]:
        self._busy_since = time.perf_counter()
        try:
            return work()
        finally:
            self._compute_s += time.perf_counter() - self._busy_since
            self._busy_since = None

    def _stamp(self, kind: type[StreamEvent], **fields) -> StreamEvent:
        busy = time.perf_counter() - self._busy_since if self._busy_since is not None else 0.0
        return kind(
            segment=self._segment_index,
            source_time_s=self.source_time_s,
            emitted_at=time.time(),
            compute_s=self._compute_s + busy,
            **fields,
        )


def _target_code(tgt_lang: str, task: Task) -> str:
    capability = Capability.SPEECH_OUTPUT if task.speech_output else Capability.TEXT
    return get_language(tgt_lang, capability).code


def committed_word_delays(events: Iterable[StreamEvent]) -> list[float]:
    """One delay per committed word (for :func:`engine.metrics.latency`): the source seconds read when it was
    committed. Computation-aware delays are :func:`engine.metrics.computation_aware_delay_s`, defined once there."""
    return [e.source_time_s for e in events if isinstance(e, CommittedText) for _ in e.text.split()]
