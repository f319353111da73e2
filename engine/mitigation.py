"""The engine's half of the safety stage: it runs the decodes a judge asks for and applies the judge's masks.

One function holds the MinTox control flow (judge; if the translation added offensive words, decode once more with
them banned and judge the new text) for every path; each path passes the decode it can make (a whole-utterance
re-decode for files and text, a commit-sized continuation after the committed prefix for live speech).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from engine.gender_alternative import offer_alternative
from engine.hooks import Judge, Report, Verdict
from engine.masking import mask
from engine.scheduler_requests import ScheduledTranslator
from engine.tasks import Task
from engine.translator import Encoded, TranslationResult, Translator

_Payload = TypeVar("_Payload")


def judge_and_mitigate(
    judge: Judge,
    redecode: Callable[[tuple[str, ...]], tuple[str, _Payload] | None],
    source_text: str | None,
    src_lang: str | None,
    text: str,
    tgt_lang: str,
    **judge_kwargs,
) -> tuple[Verdict, str, _Payload | None]:
    """MinTox (Tan et al., 2023): the final verdict, the text it is about, and the re-decode's payload (None when
    the first decode stands)."""
    verdict = judge.judge(source_text, src_lang, text, tgt_lang, **judge_kwargs)
    if not verdict.words_to_ban:
        return verdict, text, None
    redone = redecode(verdict.words_to_ban)
    new_text, payload = redone if redone is not None else (text, None)
    final = judge.judge(
        source_text, src_lang, new_text, tgt_lang, first=verdict, redecoded=redone is not None, **judge_kwargs
    )
    return final, new_text, payload


def checked_decode(
    translator: Translator | ScheduledTranslator,
    judge: Judge,
    encoded: Encoded,
    result: TranslationResult,
    source_text: str | None,
    src_lang: str | None,
    speaker_id: int | None = None,
) -> tuple[TranslationResult, Verdict]:
    """Judge one finished translation (file and text paths): the result to use (itself, the MinTox re-decode from
    the same ``encoded``, or a masked and silenced copy) and the final verdict (its ``report`` goes with the
    result). ``encoded`` is the encoder output of this one item. For speech input without ``source_text`` but with
    ``src_lang``, the transcript is decoded from ``encoded`` (no second encoder pass)."""
    started = time.perf_counter()
    transcription = result.task is Task.ASR
    if source_text is None and src_lang is not None and result.task.speech_input and not transcription:
        source_text = translator.decode(encoded, Task.S2TT, src_lang)[0].text

    def redecode(words: tuple[str, ...]) -> tuple[str, TranslationResult] | None:
        ids = translator.banned_ids(words)
        if not ids:
            return None
        new = translator.decode(encoded, result.task, result.tgt_lang, speaker_id, bad_words_ids=ids)[0]
        return new.text, new

    verdict, _, redone = judge_and_mitigate(
        judge, redecode, source_text, src_lang, result.text, result.tgt_lang,
        transcription=transcription, alternatives=not transcription,
    )  # fmt: skip
    checked = redone if redone is not None else result
    verdict = offer_alternative(translator, judge, verdict, encoded, checked, src_lang)
    if verdict.mask_spans:
        checked = dataclasses.replace(silenced(checked), text=mask(checked.text, verdict.mask_spans))
    timings = result.timings_s | {"safety": time.perf_counter() - started}
    return dataclasses.replace(checked, timings_s=timings), verdict


def silenced(result: TranslationResult) -> TranslationResult:
    """``result`` with its speech replaced by silence of the same length (timelines keep their shape)."""
    silence = None if result.waveform is None else np.zeros_like(result.waveform)
    return dataclasses.replace(result, waveform=silence, units=None)


@dataclass(frozen=True)
class CheckedTexts:
    """A text request's translations, judged, before any speech is made. Why two steps: a person reads the text
    while its speech is made (:func:`speak_checked`), instead of waiting for both."""

    translator: Translator | ScheduledTranslator  # the one whose encoder output ``encoded`` is
    encoded: Encoded | None  # None for no texts
    task: Task  # what was asked; the results so far hold text only
    results: list[tuple[TranslationResult, Report | None]]
    silenced: tuple[bool, ...]  # per result: its speech must be silence (masked words)


def check_texts(
    translator: Translator | ScheduledTranslator,
    judge: Judge | None,
    texts: Sequence[str],
    task: Task | str,
    tgt_lang: str,
    src_lang: str,
) -> CheckedTexts:
    """The text path's first step: one encoder pass for the batch, the text decoded and each result judged (a
    mitigation re-decodes from the same encoder output)."""
    task = Task(task)
    if task.speech_input:
        raise ValueError(f"{task.value} takes speech; the text path takes t2tt or t2st")
    if not texts:
        return CheckedTexts(translator, None, task, [], ())
    tgt = translator.check_target(tgt_lang, task.speech_output)
    src = translator.check_source_text(src_lang)
    encoded = translator.encode_text(list(texts), src)
    decoded = translator.decode(encoded, Task.T2TT, tgt)
    if judge is None:
        return CheckedTexts(translator, encoded, task, [(r, None) for r in decoded], (False,) * len(decoded))
    judged = [
        checked_decode(translator, judge, encoded.item(i), result, text, src)
        for i, (text, result) in enumerate(zip(texts, decoded, strict=True))
    ]
    results = [(result, verdict.report) for result, verdict in judged]
    return CheckedTexts(translator, encoded, task, results, tuple(bool(v.mask_spans) for _, v in judged))


def speak_checked(
    checked: CheckedTexts, speaker_id: int | None = None
) -> list[tuple[TranslationResult, Report | None]]:
    """The second step: the results as the task asked for them, with speech (silence where words are masked) when
    it asks for speech."""
    results = [dataclasses.replace(r, task=checked.task) for r, _ in checked.results]
    if checked.task.speech_output and checked.encoded is not None:
        results = checked.translator.speak_decoded(checked.encoded, results, speaker_id)
        results = [silenced(r) if silent else r for r, silent in zip(results, checked.silenced, strict=True)]
    return [(r, report) for r, (_, report) in zip(results, checked.results, strict=True)]
