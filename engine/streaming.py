"""Simultaneous speech translation: translate while the person is still speaking.

One :class:`StreamingSession` per stream, with a tiny API::

    session = StreamingSession(translator, StreamingVad.for_new_stream(vad_model), tgt_lang="spa")
    for chunk in microphone:                       # any size, any sample rate
        for event in session.push(chunk, 48_000):  # PartialText, CommittedText, SpeechChunk, SegmentEnd, Notice
            ...
    events = session.finish()                      # flushes the last words

How it decides (each step its own piece, as in SeamlessStreaming's agent pipeline):

1. **Resample** to 16 kHz with a chunking-independent filter (:mod:`engine.resample`).
2. **Segment** with Silero VAD over fixed 32 ms windows: speech opens a segment; a pause of ``pause_s`` closes it;
   speech longer than ``max_segment_s`` is cut at its quietest window.
3. **Step** every ``step_s`` of segment audio: re-translate the segment so far, forcing the committed words as the
   decoder's prefix, and commit what the last ``n`` hypotheses agree on (:mod:`engine.agreement`). Committed text is
   never retracted.
4. **Finalise** at the end of a segment: one full decode after the committed prefix commits the rest.
5. **Speak** each commit as it happens: the text decoder's states for the newly committed tokens (computed with the
   whole committed prefix as context) go through the text-to-unit model and the vocoder; nothing is translated twice.

Every decision happens at a window boundary in *source* time, never on chunk arrival, so the same audio gives the
same text whatever the chunk size. Work per step is bounded by ``max_segment_s``, so minute 10 costs what minute 1
does.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import torch

from engine.agreement import LocalAgreement
from engine.audio import SAMPLE_RATE_HZ, to_float32, to_mono
from engine.hooks import CommitCheck, CommitVerdict, Report
from engine.languages import get_language
from engine.prosody import ExpressiveStage
from engine.resample import StreamResampler
from engine.tasks import Task
from engine.translator import Encoded, Translator
from engine.vad import WINDOW_SAMPLES, StreamingVad

WINDOW_S = WINDOW_SAMPLES / SAMPLE_RATE_HZ
#: Generous bound on text tokens per second of speech (fluent speech is 3–5 subword tokens/s); it caps runaway
#: decoding (a model that never emits EOS) and keeps each step's cost proportional to its audio.
MAX_TOKENS_PER_S = 8.0
MIN_TOKEN_BUDGET = 8


def token_budget(duration_s: float) -> int:
    """Most text tokens generated for ``duration_s`` of speech (committed prefix included)."""
    return MIN_TOKEN_BUDGET + math.ceil(MAX_TOKENS_PER_S * duration_s)


@dataclass(frozen=True)
class LatencyPreset:
    """How eagerly to commit. Durations are rounded to whole 32 ms VAD windows."""

    name: str
    #: Re-translate every this much segment audio; None commits only at segment ends (offline quality).
    step_s: float | None
    #: Hypotheses that must agree before words are committed (LocalAgreement-n).
    agreement_n: int
    #: A pause this long ends a segment.
    pause_s: float
    #: Speech longer than this without a pause is cut at its quietest point.
    max_segment_s: float = 15.0
    #: Silero speech probability that opens a segment; it closes below threshold - 0.15 (hysteresis).
    vad_threshold: float = 0.5
    #: Audio kept before speech starts and after it ends, so onsets and endings are not clipped.
    pad_s: float = 0.096

    def __post_init__(self) -> None:
        if self.step_s is not None and self.step_s < WINDOW_S:
            raise ValueError(f"step_s must be at least one VAD window ({WINDOW_S * 1000:.0f} ms)")
        if self.agreement_n < 1:
            raise ValueError("agreement_n must be at least 1")
        if self.pause_s < WINDOW_S or self.max_segment_s < 2.0 or self.pad_s < 0:
            raise ValueError("pause_s must cover a VAD window, max_segment_s be at least 2 s, pad_s non-negative")
        if not 0.2 <= self.vad_threshold < 1.0:
            raise ValueError("vad_threshold must be in [0.2, 1)")

    def windows(self, seconds: float) -> int:
        return max(1, round(seconds / WINDOW_S))


PRESETS: dict[str, LatencyPreset] = {
    preset.name: preset
    for preset in (
        LatencyPreset("low", step_s=0.512, agreement_n=2, pause_s=0.48),
        LatencyPreset("balanced", step_s=1.024, agreement_n=2, pause_s=0.64),
        LatencyPreset("quality", step_s=1.536, agreement_n=3, pause_s=0.8),
        LatencyPreset("segment", step_s=None, agreement_n=1, pause_s=0.64),
    )
}


@dataclass(frozen=True)
class StreamEvent:
    """Common stamps: the segment, the source seconds read when it was decided, when it was emitted (Unix time),
    and the session's compute time so far (source time + compute time = computation-aware delay)."""

    segment: int
    source_time_s: float
    emitted_at: float
    compute_s: float


@dataclass(frozen=True)
class PartialText(StreamEvent):
    text: str  # tentative continuation after the committed text; replaces the previous partial


@dataclass(frozen=True)
class CommittedText(StreamEvent):
    text: str  # final; append to the committed text (carries its own leading space)
    token_ids: tuple[int, ...]
    safety: Report | None = None  # the commit check's report (on the segment's committed text so far), if any


@dataclass(frozen=True)
class SpeechChunk(StreamEvent):
    audio: np.ndarray  # float32 mono
    sample_rate_hz: int = SAMPLE_RATE_HZ


@dataclass(frozen=True)
class SegmentEnd(StreamEvent):
    start_s: float  # the segment's source audio span
    end_s: float
    text: str  # the segment's whole committed text
    transcript: str | None = None  # the segment in the spoken language, when the session knows it


@dataclass(frozen=True)
class Notice(StreamEvent):
    message: str  # something the person should know (bad samples replaced, rate changed)


@dataclass
class _Segment:
    """Per-segment state: its audio windows, their VAD probabilities, and what is committed so far."""

    start_sample: int
    windows: list[np.ndarray] = field(default_factory=list)
    silence_run: int = 0
    committed: list[int] = field(default_factory=list)
    committed_text: str = ""
    spoken_samples: int = 0  # segment audio already matched to a speech chunk by the expressive stage
    speaker_id: int | None = None  # vocoder voice the expressive stage chose for this segment
    verdicts: list[CommitVerdict] = field(default_factory=list)  # the commit check's, to mask the segment's text

    @property
    def audio(self) -> np.ndarray:
        return np.concatenate(self.windows)

    @property
    def end_sample(self) -> int:
        return self.start_sample + len(self.windows) * WINDOW_SAMPLES


class StreamingSession:
    """One live stream: speech in (any chunking, any rate), events out. Not thread-safe; one per stream."""

    def __init__(
        self,
        translator: Translator,
        vad: StreamingVad,
        tgt_lang: str,
        task: Task | str = Task.S2TT,
        preset: LatencyPreset | str = "balanced",
        src_lang: str | None = None,
        speaker_id: int | None = None,
        expressive: ExpressiveStage | None = None,
        commit_check: CommitCheck | None = None,
    ) -> None:
        """``src_lang``, when given, adds a source transcript to each :class:`SegmentEnd` (one extra decode per
        segment, from the same encoder pass as the translation's final step). An enabled ``expressive`` stage picks
        each segment's voice and gives every speech chunk the prosody of the source audio heard since the previous
        chunk; it adds its compute time to each chunk (bench/expressive.py: about 60 ms per 1 s chunk, p95 under
        100 ms, on two shared CPU cores) and needs no look-ahead. A ``commit_check`` (the safety stage) sees every
        commit before its speech is made: it may replace the tokens (a re-decode with toxic words banned), mask
        their text and silence their speech; its report rides on the :class:`CommittedText`."""
        self.task = Task(task)
        if not self.task.speech_input:
            raise ValueError("streaming takes speech: use s2tt, s2st or asr")
        if self.task is Task.ASR:
            if src_lang is None:
                raise ValueError("streaming transcription needs the spoken language (src_lang)")
            tgt_lang = src_lang
        self.tgt_lang = translator.check_target(tgt_lang, self.task.speech_output)
        self.src_lang = translator.check_source_text(src_lang) if src_lang is not None else None
        self.preset = PRESETS[preset] if isinstance(preset, str) else preset
        self._translator = translator
        self._tokenizer = translator.loaded.tokenizer
        self._vad = vad
        self._speaker_id = speaker_id
        self._commit_check = commit_check
        self._expressive = expressive
        self._agreement = LocalAgreement(self.preset.agreement_n, self._starts_word)
        self._word_starts: dict[int, bool] = {}
        self._unsegmented = get_language(self.tgt_lang).unsegmented
        self._resampler: StreamResampler | None = None
        self._pending = np.zeros(0, dtype=np.float32)  # 16 kHz samples short of a whole window
        self._samples_read = 0  # 16 kHz samples processed into windows since the stream began
        self._preroll: deque[np.ndarray] = deque(maxlen=self.preset.windows(self.preset.pad_s))
        self._segment: _Segment | None = None
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
        self._busy_since = time.perf_counter()
        try:
            events: list[StreamEvent] = []
            audio = to_mono(to_float32(np.asarray(samples)))
            if not np.isfinite(audio).all():
                audio = np.nan_to_num(audio, nan=0.0, posinf=0.0, neginf=0.0)
                message = "Some audio samples were invalid and were replaced by silence."
                events.append(self._stamp(Notice, message=message))
            if self._resampler is None or self._resampler.from_hz != sample_rate_hz:
                if self._resampler is not None:
                    events += self._consume(self._resampler.flush())
                    events.append(self._stamp(Notice, message=f"The input sample rate changed to {sample_rate_hz} Hz."))
                self._resampler = StreamResampler(sample_rate_hz, SAMPLE_RATE_HZ)
            events += self._consume(self._resampler.push(audio))
            return events
        finally:
            self._account()

    def finish(self) -> list[StreamEvent]:
        """End of stream: translate and commit whatever is left. Calling it again returns nothing."""
        if self._finished:
            return []
        self._busy_since = time.perf_counter()
        try:
            events = self._consume(self._resampler.flush()) if self._resampler else []
            if self._pending.size:  # the last partial window, completed with silence
                events += self._consume(np.zeros(WINDOW_SAMPLES - self._pending.size, dtype=np.float32))
            if self._segment is not None:
                events += self._end_segment(self._segment)
            self._finished = True
            return events
        finally:
            self._account()

    @property
    def source_time_s(self) -> float:
        return self._samples_read / SAMPLE_RATE_HZ

    @property
    def compute_s(self) -> float:
        return self._compute_s

    # ---- windows and segments -----------------------------------------------------------------------------------

    def _consume(self, audio16: np.ndarray) -> list[StreamEvent]:
        self._pending = np.concatenate([self._pending, audio16]) if self._pending.size else audio16
        events: list[StreamEvent] = []
        whole = self._pending.size // WINDOW_SAMPLES
        for i in range(whole):
            events += self._on_window(self._pending[i * WINDOW_SAMPLES : (i + 1) * WINDOW_SAMPLES])
        self._pending = self._pending[whole * WINDOW_SAMPLES :].copy()
        return events

    def _on_window(self, window: np.ndarray) -> list[StreamEvent]:
        preset = self.preset
        probability = self._vad.probability(window)
        self._samples_read += WINDOW_SAMPLES
        segment = self._segment
        if segment is None:
            if probability < preset.vad_threshold:
                self._preroll.append(window)
                return []
            start = self._samples_read - WINDOW_SAMPLES * (len(self._preroll) + 1)
            segment = self._segment = _Segment(start, [*self._preroll, window])
            self._preroll.clear()
            return []
        segment.windows.append(window)
        segment.silence_run = segment.silence_run + 1 if probability < preset.vad_threshold - 0.15 else 0
        if segment.silence_run >= preset.windows(preset.pause_s):
            return self._close_at_pause(segment)
        if len(segment.windows) >= preset.windows(preset.max_segment_s):
            return self._cut_at_quietest(segment)
        if preset.step_s is not None and len(segment.windows) % preset.windows(preset.step_s) == 0:
            return self._step(segment)
        return []

    def _close_at_pause(self, segment: _Segment) -> list[StreamEvent]:
        """Drop the pause (but ``pad_s`` of it) from the segment, finalise, and keep the pause's tail as preroll."""
        keep = len(segment.windows) - segment.silence_run + self.preset.windows(self.preset.pad_s)
        trailing = segment.windows[keep:]
        segment.windows = segment.windows[:keep]
        events = self._end_segment(segment)
        self._preroll.extend(trailing)
        return events

    def _cut_at_quietest(self, segment: _Segment) -> list[StreamEvent]:
        """Speech without a pause: cut after the lowest-energy window of the second half, carry on with the rest."""
        half = len(segment.windows) // 2
        energies = [float(np.dot(w, w)) for w in segment.windows[half:]]
        cut = half + int(np.argmin(energies)) + 1
        tail = segment.windows[cut:]
        segment.windows = segment.windows[:cut]
        events = self._end_segment(segment)
        self._segment = _Segment(segment.end_sample, tail)
        return events

    # ---- decoding -----------------------------------------------------------------------------------------------

    def _hypothesis(self, segment: _Segment) -> tuple[Encoded, list[int]]:
        """Translate the segment so far after its committed prefix; returns the encoder output and the new tokens."""
        translator = self._translator
        encoded = translator.encode_speech([segment.audio])
        budget = token_budget(len(segment.windows) * WINDOW_S) - len(segment.committed)
        if budget <= 0:
            return encoded, []
        sequence = translator.generate_text(
            encoded, self.tgt_lang, prefix=segment.committed, max_new_tokens=budget, num_beams=1
        )[0].tolist()
        new = sequence[2 + len(segment.committed) :]
        specials = set(self._tokenizer.all_special_ids)
        while new and new[-1] in specials:  # EOS and padding
            new.pop()
        return encoded, new

    def _step(self, segment: _Segment) -> list[StreamEvent]:
        encoded, hypothesis = self._hypothesis(segment)
        commit = self._agreement.update(hypothesis)
        events = self._commit(segment, encoded, commit) if commit else []
        partial = self._tokenizer.decode(self._agreement.tentative, skip_special_tokens=True)
        if partial != self._partial:
            self._partial = partial
            events.append(self._stamp(PartialText, text=partial))
        return events

    def _end_segment(self, segment: _Segment) -> list[StreamEvent]:
        encoded, rest = self._hypothesis(segment)
        events = self._commit(segment, encoded, rest) if rest else []
        if self._partial:
            self._partial = ""
            events.append(self._stamp(PartialText, text=""))
        shown = self._shown_text(segment)
        transcript = None
        if self.src_lang is not None:
            transcript = shown if self.task is Task.ASR else self._transcribe(encoded, segment)
        end = self._stamp(
            SegmentEnd,
            start_s=segment.start_sample / SAMPLE_RATE_HZ,
            end_s=segment.end_sample / SAMPLE_RATE_HZ,
            text=shown,
            transcript=transcript,
        )
        self.segments.append(end)
        events.append(end)
        self._segment = None
        self._segment_index += 1
        self._agreement.reset()
        return events

    def _transcribe(self, encoded: Encoded, segment: _Segment) -> str:
        budget = token_budget(len(segment.windows) * WINDOW_S)
        sequence = self._translator.generate_text(encoded, self.src_lang, max_new_tokens=budget, num_beams=1)
        return self._tokenizer.decode(sequence[0], skip_special_tokens=True).strip()

    def _commit(self, segment: _Segment, encoded: Encoded, tokens: list[int]) -> list[StreamEvent]:
        verdict = None
        if self._commit_check is not None:  # before anything is shown or spoken
            verdict = self._commit_check.check_commit(encoded, self.tgt_lang, self.src_lang, segment.committed, tokens)
            if list(verdict.tokens) != tokens:  # re-decoded: the kept hypotheses continue the replaced tokens
                tokens = list(verdict.tokens)
                self._agreement.reset()
            segment.verdicts.append(verdict)
        segment.committed += tokens
        text = self._tokenizer.decode(segment.committed, skip_special_tokens=True)
        if text.startswith(segment.committed_text):
            new_text = text[len(segment.committed_text) :]
        else:  # decoding merged across the boundary; fall back to the new tokens on their own
            new_text = " " + self._tokenizer.decode(tokens, skip_special_tokens=True)
        if not segment.committed_text:
            new_text = new_text.lstrip()
            if self.segments or self._segment_index:  # later segments continue the running text
                new_text = " " + new_text
        segment.committed_text = text
        if verdict is not None:
            new_text = verdict.shown_text(new_text)
        report = None if verdict is None else verdict.report
        events: list[StreamEvent] = [self._stamp(CommittedText, text=new_text, token_ids=tuple(tokens), safety=report)]
        if self.task.speech_output:
            audio = self._expressive_speech(encoded, segment, len(tokens))
            if verdict is not None and verdict.silenced:
                audio = np.zeros_like(audio)  # same length, so what follows keeps its place
            events.append(self._stamp(SpeechChunk, audio=audio))
        return events

    def _shown_text(self, segment: _Segment) -> str:
        """The segment's committed text as shown: masked wherever a commit check asked for it."""
        text = segment.committed_text.strip()
        for verdict in segment.verdicts:
            text = verdict.shown_text(text)
        return text

    def _expressive_speech(self, encoded: Encoded, segment: _Segment, new_count: int) -> np.ndarray:
        """Speech for the newly committed tokens; with the expressive stage, in the segment's chosen voice and with
        the prosody of the source audio heard since the previous chunk."""
        stage = self._expressive
        if stage is None or not stage.enabled:
            return self._speak(encoded, segment.committed, new_count, self._speaker_id)
        if segment.speaker_id is None:
            segment.speaker_id = stage.speaker_for(segment.audio)
        voice = self._speaker_id if segment.speaker_id is None else segment.speaker_id
        speech = self._speak(encoded, segment.committed, new_count, voice)
        heard = segment.audio[segment.spoken_samples :]
        segment.spoken_samples = len(segment.windows) * WINDOW_SAMPLES
        return stage.apply(heard, speech, self.tgt_lang, self.src_lang)

    def _speak(self, encoded: Encoded, committed: list[int], new_count: int, speaker_id: int | None) -> np.ndarray:
        """Speech for the last ``new_count`` committed tokens, from decoder states that saw the whole prefix."""
        translator, gen = self._translator, self._translator.loaded.model.generation_config
        head = [gen.decoder_start_token_id, gen.text_decoder_lang_to_code_id[self.tgt_lang]]
        device = encoded.hidden_states.device
        full = torch.tensor([[*head, *committed, gen.eos_token_id]], device=device)
        states = translator.decoder_states(encoded, full)  # one state per input position: head + committed
        first = len(head) + len(committed) - new_count
        phrase_states = torch.cat([states[:, : len(head)], states[:, first:]], dim=1)
        phrase = torch.tensor([[*head, *committed[-new_count:], gen.eos_token_id]], device=device)
        return translator.synthesize(phrase_states, phrase, self.tgt_lang, speaker_id).waveforms[0]

    # ---- helpers ------------------------------------------------------------------------------------------------

    def _starts_word(self, token_id: int) -> bool:
        """Sentencepiece marks word starts with "▁"; in scripts without spaces any token may end a word."""
        if self._unsegmented:
            return True
        if token_id not in self._word_starts:
            piece = self._tokenizer.convert_ids_to_tokens(token_id)
            self._word_starts[token_id] = piece.startswith("▁") or token_id in self._tokenizer.all_special_ids
        return self._word_starts[token_id]

    def _stamp(self, kind: type[StreamEvent], **fields) -> StreamEvent:
        busy = time.perf_counter() - self._busy_since if self._busy_since is not None else 0.0
        return kind(
            segment=self._segment_index,
            source_time_s=self.source_time_s,
            emitted_at=time.time(),
            compute_s=self._compute_s + busy,
            **fields,
        )

    def _account(self) -> None:
        if self._busy_since is not None:
            self._compute_s += time.perf_counter() - self._busy_since
            self._busy_since = None


def committed_word_delays(events: Iterable[StreamEvent], computation_aware: bool = False) -> list[float]:
    """One delay per committed word (for :func:`engine.metrics.latency`): source seconds read when it was
    committed, plus the compute time spent so far when ``computation_aware``."""
    delays = []
    for event in events:
        if isinstance(event, CommittedText):
            delay = event.source_time_s + (event.compute_s if computation_aware else 0.0)
            delays += [delay] * len(event.text.split())
    return delays
