"""The one place that builds Parley from its settings: model, VAD, expressive stage and voices, safety judge,
watermark. The web app, the desktop mode and the CLI all call :func:`build_pipeline` and differ only in their front
end, so the same settings give the same behaviour everywhere.
"""

from __future__ import annotations

import copy
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from compose.settings import Settings
from engine.backend import StreamingBackend
from engine.file_translation import FileTranslation, Progress, translate_recording
from engine.hooks import Report
from engine.languages import all_languages, get_language
from engine.mitigation import CheckedTexts, check_texts, speak_checked
from engine.models import LoadedModel, load_model
from engine.prosody import ExpressiveOptions, ExpressiveStage
from engine.room import EventSink, RoomSession
from engine.scheduler import InferenceScheduler
from engine.scheduler_calls import Priority
from engine.scheduler_requests import ScheduledTranslator
from engine.segmenter import SpeechProbability
from engine.stream_input import LiveInputLimits
from engine.streaming import StreamingSession
from engine.tasks import Task
from engine.translator import TranslationResult, Translator
from engine.vad import Segmenter, StreamingVad, VadOptions, load_vad_model
from engine.voices import ResemblyzerEncoder, VoiceMatcher
from safety.judge import SafetyJudge, SafetyOptions
from safety.marking import SpeechMarker
from safety.toxicity import ToxicityOptions
from safety.watermark import WatermarkConfig, Watermarker, create_watermarker

if TYPE_CHECKING:  # the Ray pool is optional: imported only when the backend is "ray"
    from cluster.pool import ReplicaPool


@dataclass(frozen=True)
class Pipeline:
    """Everything built once per loaded model and shared by every stream and request (none holds per-stream
    state). Methods build the per-request pieces with the settings' defaults, overridable per request."""

    settings: Settings
    translator: Translator
    vad_model: torch.nn.Module
    judge: SafetyJudge | None
    expressive: ExpressiveStage
    watermarker: Watermarker
    #: Batches every model call (live streams, uploads, text requests) across sessions; None when decoding with
    #: beams (it decodes greedily).
    scheduler: InferenceScheduler | None = None
    #: With ``--backend ray``: the replicas that run every model call (then there is no local scheduler).
    pool: ReplicaPool | None = None

    @property
    def loaded(self) -> LoadedModel:
        return self.translator.loaded

    def marker(self, session_key: str) -> SpeechMarker:
        """Marks every synthetic sample of one session with this deployment's id and the session's id."""
        return SpeechMarker.for_session(self.watermarker, self.settings.watermark.deployment_id, session_key)

    def _stage(self, expressive: bool | None) -> ExpressiveStage | None:
        wanted = self.settings.expressive.expressive if expressive is None else expressive
        return self.expressive if wanted else None

    def stream(
        self,
        tgt_lang: str,
        task: Task | str = Task.S2ST,
        preset: str | None = None,
        src_lang: str | None = None,
        expressive: bool | None = None,
    ) -> StreamingSession:
        """A new live session (one per stream) with its own VAD state."""
        backend = self._backend()
        vad = StreamingVad.for_new_stream(self.vad_model)
        return self._session(tgt_lang, task, preset, src_lang, expressive, vad, backend)

    def room(
        self,
        on_events: EventSink,
        src_lang: str | None = None,
        preset: str | None = None,
        expressive: bool | None = None,
        max_languages: int = 8,
    ) -> RoomSession:
        """A new room (one speaker, any listeners): each language added is a session like :meth:`stream`'s
        (speech and text when the language can be spoken, text otherwise), sharing the room's VAD and encoder."""
        if src_lang is not None:
            self.translator.check_source_text(src_lang)
        backend = self._backend()

        def language(tgt_lang: str, vad: SpeechProbability, shared: StreamingBackend) -> StreamingSession:
            task = Task.S2ST if get_language(tgt_lang).speech_output else Task.S2TT
            return self._session(tgt_lang, task, preset, src_lang, expressive, vad, shared)

        return RoomSession(
            language, backend, StreamingVad.for_new_stream(self.vad_model), on_events, self._limits(), max_languages
        )

    def _backend(self) -> StreamingBackend:
        """A new session's model calls: the Ray pool, the shared scheduler, or (decoding with beams) the translator."""
        key = secrets.token_hex(8)
        if self.pool is not None:
            return self.pool.session(key)
        return self.translator if self.scheduler is None else self.scheduler.session(key)

    def _limits(self) -> LiveInputLimits:
        streaming = self.settings.streaming
        return LiveInputLimits(streaming.min_rate_hz, streaming.max_rate_hz, streaming.max_chunk_s)

    def _session(self, tgt_lang, task, preset, src_lang, expressive, vad, backend) -> StreamingSession:
        task = Task(task)
        if task is not Task.ASR:
            self.translator.check_target(tgt_lang, task.speech_output)
        if src_lang is not None:
            self.translator.check_source_text(src_lang)
        return StreamingSession(
            backend,
            vad,
            tgt_lang,
            task=task,
            preset=preset or self.settings.streaming.preset,
            src_lang=src_lang,
            speaker_id=self.settings.engine.speaker_id,
            expressive=self._stage(expressive),
            judge=self.judge,
            limits=self._limits(),
        )

    def translate_recording(
        self,
        audio: np.ndarray,
        task: Task | str,
        tgt_lang: str,
        src_lang: str | None = None,
        progress: Progress | None = None,
        expressive: bool | None = None,
    ) -> FileTranslation:
        """A whole 16 kHz recording, utterance by utterance (speech not yet watermarked: the caller marks it on the
        timeline it writes)."""
        # Silero keeps its recurrent state in the model object: uploads running at once each need their own copy.
        vad = copy.deepcopy(self.vad_model)
        segmenter = Segmenter(vad, VadOptions(max_segment_s=self.settings.engine.max_segment_s))
        return translate_recording(
            self._requests(Priority.FILE), segmenter, audio, Task(task), tgt_lang, src_lang, progress,
            expressive=self._stage(expressive), judge=self.judge,
        )  # fmt: skip

    def translate_texts(
        self, texts: Sequence[str], task: Task | str, tgt_lang: str, src_lang: str
    ) -> list[tuple[TranslationResult, Report | None]]:
        """Texts (one request's sentences decode together), at live priority: a person waits for the answer."""
        return speak_checked(self.check_texts(texts, task, tgt_lang, src_lang))

    def check_texts(self, texts: Sequence[str], task: Task | str, tgt_lang: str, src_lang: str) -> CheckedTexts:
        """:meth:`translate_texts` without the speech yet: the page shows the text first, then calls
        :meth:`speak_texts`."""
        return check_texts(self._requests(Priority.LIVE), self.judge, texts, task, tgt_lang, src_lang)

    @staticmethod
    def speak_texts(checked: CheckedTexts) -> list[tuple[TranslationResult, Report | None]]:
        return speak_checked(checked)

    def _requests(self, priority: Priority) -> Translator | ScheduledTranslator:
        """One request's model calls: on the Ray pool, through the scheduler (its own round-robin turn, at
        ``priority``), or the translator itself when decoding with beams."""
        key = secrets.token_hex(8)
        if self.pool is not None:
            return self.pool.file_translator(key)
        return self.translator if self.scheduler is None else self.scheduler.requests(key, priority)


def build_pipeline(settings: Settings, loaded: LoadedModel | None = None) -> Pipeline:
    """Load (or take) the model and build every stage from ``settings``. Vocoder voices are measured here, by pitch
    and by timbre (Resemblyzer's encoder, loaded once), at start-up (or read from their cache), never during
    someone's first live commit."""
    loaded = loaded if loaded is not None else load_model(settings.engine)
    translator = Translator(loaded, settings.engine)
    judge = None
    if settings.safety.safety:
        options = SafetyOptions(
            filter_source_toxicity=settings.safety.filter_toxicity,
            gender_alternatives=settings.safety.gender_alternatives,
            toxicity=ToxicityOptions(toxicity_dir=settings.safety.toxicity_dir),
        )
        judge = SafetyJudge(options, tokenize=loaded.tokenizer.tokenize)  # ETOX: the model's own tokens
        judge.prepare(lang.code for lang in all_languages())
    expressive_options = ExpressiveOptions(cache_dir=settings.engine.cache_dir)
    voices = VoiceMatcher(translator, expressive_options, encoder=ResemblyzerEncoder())
    voices.prepare()
    # No key: the public development key, with a warning (WatermarkKey.from_secret).
    mark = settings.watermark
    config = WatermarkConfig(
        mark.watermark_backend,
        key_secret=mark.watermark_key or None,
        audiowmark_binary=mark.audiowmark_binary,
        audiowmark_key_file=mark.audiowmark_key_file,
        audiowmark_strength=mark.audiowmark_strength,
        audiowmark_detect_speed=mark.audiowmark_detect_speed,
        audioseal_generator=mark.audioseal_generator,
        audioseal_detector=mark.audioseal_detector,
    )
    watermarker = create_watermarker(config)
    pool = scheduler = None
    if settings.cluster.backend == "ray":
        from cluster.head import open_pool

        pool = open_pool(settings, translator)
    elif (settings.engine.num_beams or 1) == 1:
        scheduler = InferenceScheduler(translator, settings.scheduler)
    return Pipeline(
        settings,
        translator,
        load_vad_model(),
        judge,
        ExpressiveStage(expressive_options, voices),
        watermarker,
        scheduler,
        pool,
    )
