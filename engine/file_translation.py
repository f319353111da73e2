"""Whole-recording translation: cut at pauses, translate each utterance, put the pieces back on a timeline.

The translated speech keeps the source's pauses: each translated utterance starts after the same silence that
preceded its source utterance, so a 2-second pause in the talk is a 2-second pause in the translation (the
translation itself may be longer or shorter than the source, which shifts what follows).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from engine.audio import SAMPLE_RATE_HZ, AudioError, write_wav
from engine.hooks import Judge, Report
from engine.mitigation import checked_decode
from engine.outputs import write_cues
from engine.prosody import ExpressiveStage
from engine.scheduler_requests import ScheduledTranslator
from engine.subtitles import Cue
from engine.tasks import Task
from engine.translator import Translator
from engine.vad import Segment, Segmenter

#: Called after each utterance with (utterances done, utterances in total).
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class TranslatedSegment:
    source: Segment
    text: str  # the translation (for ASR: the transcript)
    transcript: str | None  # source-language transcript, when the source language is known
    audio: np.ndarray | None  # translated speech, 16 kHz
    output_start_s: float | None  # where ``audio`` starts in the assembled translation
    safety: Report | None = None  # the safety check's report, when a checker ran


@dataclass(frozen=True)
class FileTranslation:
    task: Task
    tgt_lang: str
    src_lang: str | None
    source_duration_s: float
    segments: list[TranslatedSegment]
    audio: np.ndarray | None  # the assembled translated speech, 16 kHz mono

    def transcript_cues(self) -> list[Cue]:
        """Source-language text on the source timeline (empty when the source language was not given)."""
        return [Cue(s.source.start_s, s.source.end_s, s.transcript) for s in self.segments if s.transcript]

    def translation_cues(self) -> list[Cue]:
        """Translated text on the source timeline: subtitles for the original recording."""
        return [Cue(s.source.start_s, s.source.end_s, s.text) for s in self.segments]

    def dubbed_cues(self) -> list[Cue]:
        """Translated text on the translated speech's own timeline."""
        return [
            Cue(s.output_start_s, s.output_start_s + s.audio.shape[0] / SAMPLE_RATE_HZ, s.text)
            for s in self.segments
            if s.audio is not None and s.output_start_s is not None
        ]


def translate_recording(
    translator: Translator | ScheduledTranslator,
    segmenter: Segmenter,
    audio: np.ndarray,
    task: Task,
    tgt_lang: str,
    src_lang: str | None = None,
    progress: Progress | None = None,
    expressive: ExpressiveStage | None = None,
    judge: Judge | None = None,
) -> FileTranslation:
    """Translate a validated 16 kHz recording utterance by utterance (``translator``: the translator itself, or its
    scheduled twin, which queues each utterance's model calls at file priority beside live streams).

    For speech→speech and speech→text, the source transcript comes from the same encoder output as the
    translation (one encoder pass, two decodes) when ``src_lang`` is given. With an enabled ``expressive`` stage,
    each utterance is spoken by the vocoder voice nearest to its speaker and its translated speech carries the
    utterance's pauses, pace, pitch and loudness (None: neutral voice, speech as the model made it). A ``judge``
    (the safety stage) reviews each utterance before its speech is shaped (the engine runs the re-decode it asks
    for and applies its masks) and its report is attached to the segment.
    """
    task = Task(task)
    if not task.speech_input:
        raise ValueError(f"{task.value} takes text, not a recording")
    if task is Task.ASR:
        if src_lang is None:
            raise AudioError("Transcription needs the spoken language (--src).")
        tgt_lang = src_lang
    tgt = translator.check_target(tgt_lang, task.speech_output)
    src = translator.check_source_text(src_lang) if src_lang is not None else None
    segments = segmenter.segments(audio)
    if not segments:
        raise AudioError("No speech was found in the recording.")

    done: list[TranslatedSegment] = []
    for i, segment in enumerate(segments):
        source = audio[segment.start : segment.end]
        encoded = translator.encode_speech([source])
        speaker = expressive.speaker_for(source) if expressive is not None and task.speech_output else None
        result = translator.decode(encoded, task, tgt, speaker)[0]
        transcript = None
        if task is Task.ASR:
            transcript = result.text
        elif src is not None:
            transcript = translator.decode(encoded, Task.S2TT, src)[0].text
        safety = None
        if judge is not None:  # before the speech is shaped: the judge may ask to re-decode, mask or silence it
            result, verdict = checked_decode(translator, judge, encoded, result, transcript, src, speaker)
            safety = verdict.report
            transcript = result.text if task is Task.ASR else transcript
        speech = result.waveform
        if expressive is not None and speech is not None:
            speech = expressive.apply(source, speech, tgt, src)
        done.append(TranslatedSegment(segment, result.text, transcript, speech, None, safety))
        if progress is not None:
            progress(i + 1, len(segments))

    placed, assembled = _place(done) if task.speech_output else (done, None)
    return FileTranslation(task, tgt, src, audio.shape[0] / SAMPLE_RATE_HZ, placed, assembled)


def _place(segments: list[TranslatedSegment]) -> tuple[list[TranslatedSegment], np.ndarray]:
    """Lay translated utterances on one timeline, each after the same pause as its source utterance."""
    placed, pieces = [], []
    cursor, previous_end = 0, 0
    for seg in segments:
        gap = seg.source.start - previous_end  # the source pause before this utterance, in samples
        pieces.append(np.zeros(gap, dtype=np.float32))
        cursor += gap
        placed.append(replace(seg, output_start_s=cursor / SAMPLE_RATE_HZ))
        pieces.append(seg.audio)
        cursor += seg.audio.shape[0]
        previous_end = seg.source.end
    return placed, np.concatenate(pieces).astype(np.float32)


def write_outputs(result: FileTranslation, out_dir: Path, stem: str) -> list[Path]:
    """Write audio, plain text and subtitles; returns the paths written."""
    tgt = result.tgt_lang
    written = [] if result.task is Task.ASR else write_cues(out_dir, f"{stem}.{tgt}", result.translation_cues())
    written += write_cues(out_dir, f"{stem}.{result.src_lang}", result.transcript_cues())
    if result.audio is not None:
        written.append(write_wav(out_dir / f"{stem}.{tgt}.wav", result.audio))
        written += write_cues(out_dir, f"{stem}.{tgt}.dubbed", result.dubbed_cues(), plain_text=False)
    return written
