"""The safety stages assembled in one place, for every path that produces text: file, text and live.

One :class:`SafetyChecker` per loaded model (it holds no per-stream state, so sessions and requests share it). Its
methods implement the engine's :mod:`engine.hooks` protocols, so the engine calls them without importing this
package:

* :meth:`SafetyChecker.check_result` — one finished translation (file path; text path via :func:`translate_checked`);
* :meth:`SafetyChecker.check_commit` — tokens a streaming session is about to commit, before their speech is made;
* :meth:`SafetyChecker.check_gender` — the gender-bias report with an alternative or a suggested fix.

Toxicity follows MinTox (Tan et al., 2023, "Added Toxicity Mitigation at Inference Time for Multimodal and Massively
Multilingual Translation"): when the translation holds more list terms than its source (for speech, the model's own
transcript of the same encoder output), that item is decoded once more from the *same* encoder output with the
matched words banned (``bad_words_ids``), and text and speech both come from the re-decode. If the re-decode still
adds toxicity, every toxic term of the item is masked in the text (added and source terms cannot be told apart:
ETOX compares counts) and the item's speech is **silenced** — replaced by silence of the same length, so timelines
keep their shape — rather than re-synthesised from masked text, which would give the vocoder meaningless input.
Toxicity that was in the source is reported, not censored, unless ``SafetyOptions.filter_source_toxicity`` is on;
then it is masked and silenced the same way.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from engine.banned_words import bad_words_ids
from engine.hooks import Report, ResultCheck
from engine.masking import mask
from engine.tasks import Task
from engine.translator import Encoded, TranslationResult, Translator
from safety.gender import GENDERS, Gender, GenderBiasChecker, GenderOptions, GenderReport, other, summarise
from safety.toxicity import (
    AddedToxicityReport,
    ToxicityDetector,
    ToxicityOptions,
    ToxicityReport,
)

log = logging.getLogger(__name__)

#: Live path: the transcript of a segment so far is decoded with at most this many tokens per target token
#: committed (plus ``MIN_TRANSCRIPT_TOKENS``); it bounds the extra decode a commit may cost.
TRANSCRIPT_TOKENS_PER_TARGET_TOKEN = 2
MIN_TRANSCRIPT_TOKENS = 8

_Payload = TypeVar("_Payload")


@dataclass(frozen=True)
class SafetyOptions:
    """What the safety stages do beyond reporting."""

    # The "filter" setting: also mask toxicity that was in the source (the speaker's own words) and silence its
    # speech. Off: source toxicity is reported, not censored.
    filter_source_toxicity: bool = False
    # Translate a gender-marked source to offer the other gender when the source left it open (file and text
    # paths; one extra text-to-text decode per such item). Off: no alternative is offered.
    gender_alternatives: bool = True
    # Word lists and obfuscation handling of the toxicity detector.
    toxicity: ToxicityOptions = field(default_factory=ToxicityOptions)
    # Lexicons of the gender-bias check.
    gender: GenderOptions = field(default_factory=GenderOptions)


@dataclass(frozen=True)
class SafetyReport:
    """Both stages' findings for one translation (file, text path) or one commit (live path: they describe the
    segment's committed text so far).

    ``toxicity`` is about the text finally shown (the re-decode when mitigated; spans before masking).
    ``added_toxicity`` compares the first translation with its source; None when the source is unknown (speech
    without a source language), so whether toxicity was added is unknown. ``gender`` is None for transcription
    (source and output are the same words). ``mitigated``: the text and speech come from a re-decode with toxic
    words banned. ``masked``: toxic words are masked in the text and the speech is silenced.
    """

    toxicity: ToxicityReport
    added_toxicity: AddedToxicityReport | None
    gender: GenderReport | None
    mitigated: bool
    masked: bool
    flags: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (``<stem>.<tgt>.safety.json``)."""
        added = self.added_toxicity
        return {
            "flags": list(self.flags),
            "mitigated": self.mitigated,
            "masked": self.masked,
            "toxicity": dataclasses.asdict(self.toxicity),
            "added_toxicity": None
            if added is None
            else {
                "added": added.added,
                "added_count": added.added_count,
                "reliable": added.reliable,
                "source": dataclasses.asdict(added.source),
                "words_to_ban": list(added.words_to_ban),
            },
            "gender": None if self.gender is None else dataclasses.asdict(self.gender),
        }


@dataclass(frozen=True)
class CommitSafety:
    """The live path's verdict on tokens about to be committed (implements ``engine.hooks.CommitVerdict``)."""

    tokens: tuple[int, ...]
    report: SafetyReport
    tgt_lang: str
    masked_terms: frozenset[str]  # list terms to mask wherever they appear in the committed text
    detector: ToxicityDetector = field(repr=False, compare=False)

    @property
    def silenced(self) -> bool:
        return bool(self.masked_terms)

    def shown_text(self, text: str) -> str:
        if not self.masked_terms:
            return text
        matches = self.detector.detect(text, self.tgt_lang).matches
        return mask(text, [m.span for m in matches if m.term in self.masked_terms])


@dataclass(frozen=True)
class _ToxicityReview:
    toxicity: ToxicityReport  # of the text finally shown
    added: AddedToxicityReport | None  # of the first translation
    mitigated: bool
    still_added: bool  # the added toxicity could not be removed (re-decode still toxic, or nothing to ban)
    masked_terms: frozenset[str]


def _matches_after(report: ToxicityReport, start: int) -> ToxicityReport:
    """``report`` reduced to the matches that end after character ``start`` (the newly committed text)."""
    return dataclasses.replace(report, matches=tuple(m for m in report.matches if m.end > start))


def _item(encoded: Encoded, index: int) -> Encoded:
    """One item of a batched encoder output, without its padding frames."""
    hidden = encoded.hidden_states[index : index + 1]
    if encoded.attention_mask is None:
        return Encoded(hidden, None, encoded.seconds)
    frames = int(encoded.attention_mask[index].sum())
    return Encoded(hidden[:, :frames], encoded.attention_mask[index : index + 1, :frames], encoded.seconds)


class SafetyChecker:
    """Toxicity detection and MinTox mitigation plus the gender-bias check, for one loaded model."""

    def __init__(self, translator: Translator, options: SafetyOptions | None = None) -> None:
        self.options = options if options is not None else SafetyOptions()
        self._translator = translator
        self._tokenizer = translator.loaded.tokenizer
        # ETOX matches unsegmented scripts on the translation model's own tokens.
        self._toxicity = ToxicityDetector(self.options.toxicity, tokenize=self._tokenizer.tokenize)
        self._gender = GenderBiasChecker(self.options.gender)

    # ---- file and text paths ------------------------------------------------------------------------------------

    def check_result(
        self,
        encoded: Encoded,
        result: TranslationResult,
        source_text: str | None,
        src_lang: str | None,
        speaker_id: int | None = None,
    ) -> tuple[TranslationResult, SafetyReport]:
        """Check one translation; returns the result to use (itself, the MinTox re-decode, or a masked and
        silenced copy) and its report. Implements ``engine.hooks.ResultCheck``.

        For speech input without ``source_text`` but with ``src_lang``, the transcript is decoded from ``encoded``
        (no second encoder pass). Transcription is its own source: its toxicity is the speaker's.
        """
        started = time.perf_counter()
        if result.task is Task.ASR:
            source_text, src_lang = result.text, result.tgt_lang
        elif source_text is None and src_lang is not None and result.task.speech_input:
            source_text = self._transcript(encoded, src_lang)

        def redecode(words: tuple[str, ...]) -> tuple[str, TranslationResult] | None:
            ids = bad_words_ids(self._tokenizer, words)
            if not ids:
                return None
            new = self._translator.decode(encoded, result.task, result.tgt_lang, speaker_id, bad_words_ids=ids)[0]
            return new.text, new

        review, checked = self._review_toxicity(source_text, src_lang, result.text, result.tgt_lang, 0, redecode)
        checked = result if checked is None else checked
        gender = None
        if result.task is not Task.ASR:
            gender = self.check_gender(source_text, src_lang, checked.text, result.tgt_lang)
        if review.masked_terms:
            spans = [m.span for m in review.toxicity.matches if m.term in review.masked_terms]
            silent = None if checked.waveform is None else np.zeros_like(checked.waveform)
            checked = dataclasses.replace(checked, text=mask(checked.text, spans), waveform=silent, units=None)
        timings = result.timings_s | {"safety": time.perf_counter() - started}
        checked = dataclasses.replace(checked, timings_s=timings)
        return checked, self._report(review, gender)

    # ---- live path ----------------------------------------------------------------------------------------------

    def check_commit(
        self,
        encoded: Encoded,
        tgt_lang: str,
        src_lang: str | None,
        committed: Sequence[int],
        tokens: Sequence[int],
    ) -> CommitSafety:
        """Check tokens a streaming session is about to commit. Implements ``engine.hooks.CommitCheck``.

        The segment's committed text so far is checked; mitigation concerns only toxic words in the new tokens
        (what is committed stays). The re-decode is forced after ``committed``, bans the words, and is as many
        tokens long as the commit it replaces, so the session's latency does not change. The transcript is decoded
        only when the new text holds toxic or gendered words. Live reports offer no gender alternative (the
        sentence is unfinished); a contradiction still gets its suggested fix.
        """
        prefix_text = self._decode(committed)
        text = self._decode([*committed, *tokens])
        start = len(prefix_text) if text.startswith(prefix_text) else 0
        source_text = None
        needs_source = _matches_after(self._toxicity.detect(text, tgt_lang), start).toxic or any(
            span.end > start for span in self._gender.gendered_spans(text, tgt_lang)
        )
        if src_lang is not None and needs_source:
            budget = MIN_TRANSCRIPT_TOKENS + TRANSCRIPT_TOKENS_PER_TARGET_TOKEN * (len(committed) + len(tokens))
            source_text = self._transcript(encoded, src_lang, max_new_tokens=budget, num_beams=1)

        def redecode(words: tuple[str, ...]) -> tuple[str, tuple[int, ...]] | None:
            ids = bad_words_ids(self._tokenizer, words)
            if not ids:
                return None
            sequence = self._translator.generate_text(
                encoded, tgt_lang, prefix=committed, bad_words_ids=ids, max_new_tokens=len(tokens), num_beams=1
            )[0].tolist()
            new = sequence[2 + len(committed) :]
            specials = set(self._tokenizer.all_special_ids)
            while new and new[-1] in specials:  # EOS and padding
                new.pop()
            return (self._decode([*committed, *new]), tuple(new)) if new else None

        review, replacement = self._review_toxicity(source_text, src_lang, text, tgt_lang, start, redecode)
        final_text = text if replacement is None else self._decode([*committed, *replacement])
        gender = self._gender_report(source_text, src_lang, final_text, tgt_lang)
        return CommitSafety(
            tokens=tuple(tokens) if replacement is None else replacement,
            report=self._report(review, gender),
            tgt_lang=tgt_lang,
            masked_terms=review.masked_terms,
            detector=self._toxicity,
        )

    # ---- gender -------------------------------------------------------------------------------------------------

    def check_gender(
        self, source_text: str | None, src_lang: str | None, target_text: str, tgt_lang: str
    ) -> GenderReport:
        """Gender report with ``alternative`` filled: for a contradiction, the translation in the stated gender (the
        suggested fix); for an ambiguous source the translation committed to one gender, the other gender's
        translation (see :meth:`_alternative`). An unknown source states nothing: the report then only says what
        the translation assumed."""
        report = self._gender_report(source_text, src_lang, target_text, tgt_lang)
        if (
            self.options.gender_alternatives
            and report.ambiguous
            and report.assumed in GENDERS
            and source_text is not None
            and src_lang is not None
        ):
            alternative = self._alternative(source_text, src_lang, target_text, tgt_lang, other(report.assumed))
            return report.with_alternative(alternative)
        return report

    def _gender_report(
        self, source_text: str | None, src_lang: str | None, target_text: str, tgt_lang: str
    ) -> GenderReport:
        """The lexicon report; a contradiction gets its suggested fix, the translation in the stated gender."""
        report = self._gender.check(source_text or "", src_lang or tgt_lang, target_text, tgt_lang)
        if not report.contradiction or report.source_gender not in GENDERS:
            return report
        fix = self._gender.swap_gender(target_text, tgt_lang, to=report.source_gender)  # type: ignore[arg-type]
        return report.with_alternative(fix)

    def _alternative(
        self, source_text: str, src_lang: str, target_text: str, tgt_lang: str, gender: Gender
    ) -> str | None:
        """The translation in ``gender``: the model's translation of the gender-marked source when the source
        language has markers and the model's output does use ``gender``; otherwise the lexicon swap of the
        translation (None when it has nothing to swap)."""
        marked = self._gender.marked_source(source_text, src_lang, gender)
        if marked is not None:
            translated = self._translator.translate([marked], Task.T2TT, tgt_lang, src_lang=src_lang)[0].text
            if summarise(s.gender for s in self._gender.gendered_spans(translated, tgt_lang)) == gender:
                return translated
            log.info("The marked source %r did not translate to the %s form; swapping instead", marked, gender)
        return self._gender.swap_gender(target_text, tgt_lang, to=gender)

    # ---- shared -------------------------------------------------------------------------------------------------

    def _review_toxicity(
        self,
        source_text: str | None,
        src_lang: str | None,
        text: str,
        tgt_lang: str,
        start: int,
        redecode: Callable[[tuple[str, ...]], tuple[str, _Payload] | None],
    ) -> tuple[_ToxicityReview, _Payload | None]:
        """The MinTox decision for the part of ``text`` after character ``start``: detect, re-decode once with the
        added words banned, mask what is still toxic (or what the filter setting masks). ``redecode(words)`` returns
        the new whole text and what the caller needs to use it, or None when it has nothing to offer."""
        first, added = self._detect(source_text, src_lang, text, tgt_lang)
        new = _matches_after(first, start)
        final, mitigated, payload, still_added = first, False, None, False
        if added is not None and added.added and new.toxic:
            redecoded = redecode(AddedToxicityReport(added.source, new).words_to_ban)
            if redecoded is None:
                still_added = True
            else:
                new_text, payload = redecoded
                final, after = self._detect(source_text, src_lang, new_text, tgt_lang)
                mitigated, still_added = True, after is not None and after.added
                log.info("Added toxicity %s re-decoded; still toxic: %s", list(new.spans), still_added)
        to_mask = _matches_after(final, start)
        masked = still_added or self.options.filter_source_toxicity
        terms = frozenset(m.term for m in to_mask.matches) if masked else frozenset()
        return _ToxicityReview(final, added, mitigated, still_added, terms), payload

    def _detect(
        self, source_text: str | None, src_lang: str | None, text: str, tgt_lang: str
    ) -> tuple[ToxicityReport, AddedToxicityReport | None]:
        if source_text is None or src_lang is None:
            return self._toxicity.detect(text, tgt_lang), None
        added = self._toxicity.added_toxicity(source_text, src_lang, text, tgt_lang)
        return added.target, added

    def _transcript(self, encoded: Encoded, src_lang: str, **generate_kwargs) -> str:
        """The model's transcript of a speech input, decoded from the same encoder output (no second encoder pass)."""
        sequence = self._translator.generate_text(encoded, src_lang, **generate_kwargs)
        return self._decode(sequence[0].tolist())

    def _decode(self, tokens: Sequence[int]) -> str:
        return self._tokenizer.decode(list(tokens), skip_special_tokens=True)

    @staticmethod
    def _report(review: _ToxicityReview, gender: GenderReport | None) -> SafetyReport:
        masked = bool(review.masked_terms)
        return SafetyReport(
            review.toxicity, review.added, gender, review.mitigated, masked, _flags(review, gender, masked)
        )


def _flags(review: _ToxicityReview, gender: GenderReport | None, masked: bool) -> tuple[str, ...]:
    """Short plain-language lines for people; empty when nothing needs their attention."""
    flags = []
    added = review.added
    if review.still_added:
        flags.append("The translation added offensive words that re-translating did not remove: they are masked "
                     "and the speech is silenced.")  # fmt: skip
    elif review.mitigated:
        flags.append("The translation added offensive words; it was translated again without them.")
    if masked and not review.still_added:
        flags.append("Offensive words are masked (filter on) and the speech is silenced.")
    if added is None and review.toxicity.toxic:
        flags.append("The translation holds offensive words; without the source language, whether the translation "
                     "added them is unknown.")  # fmt: skip
    elif added is not None and added.source.toxic and not masked:
        flags.append("The speaker's own words include offensive terms (reported, not censored).")
    if gender is not None and gender.contradiction:
        fix = f" Suggested fix: {gender.alternative}" if gender.alternative else ""
        flags.append(f"Gender error: the source says {gender.source_gender}, the translation uses the other form.{fix}")
    elif gender is not None and gender.ambiguous and gender.assumed in GENDERS:
        offer = f" Alternative: {gender.alternative}" if gender.alternative else ""
        flags.append(f"The source does not state a gender; the translation assumes {gender.assumed}.{offer}")
    return tuple(flags)


def translate_checked(
    translator: Translator,
    checker: ResultCheck,
    texts: Sequence[str],
    task: Task | str,
    tgt_lang: str,
    src_lang: str,
    speaker_id: int | None = None,
) -> list[tuple[TranslationResult, Report]]:
    """The text path: :meth:`Translator.translate` for text inputs, each result checked (one encoder pass: a
    mitigation re-decodes from the same encoder output). Returns (result, report) per input, in order; with a
    :class:`SafetyChecker` the reports are :class:`SafetyReport`."""
    task = Task(task)
    if task.speech_input:
        raise ValueError(f"{task.value} takes speech; the text path takes t2tt or t2st")
    if not texts:
        return []
    tgt = translator.check_target(tgt_lang, task.speech_output)
    src = translator.check_source_text(src_lang)
    encoded = translator.encode_text(list(texts), src)
    results = translator.decode(encoded, task, tgt, speaker_id)
    return [
        checker.check_result(_item(encoded, i), result, text, src, speaker_id)
        for i, (text, result) in enumerate(zip(texts, results, strict=True))
    ]
