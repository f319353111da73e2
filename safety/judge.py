"""The safety judge: one place that decides what is wrong with a translation, for every path (file, text, live).

Safety only judges; it never runs the model. :class:`SafetyJudge` is a pure function of the texts and languages to a
frozen :class:`SafetyVerdict` (words to ban, spans to mask, silence or not, the report). The engine owns every decode:
it asks the judge, re-decodes when asked, and applies the masks (``engine.mitigation``), through the protocols in
:mod:`engine.hooks`, so neither package imports the other's model code.

Toxicity follows MinTox (Tan et al., 2023, "Added Toxicity Mitigation at Inference Time for Multimodal and Massively
Multilingual Translation"): when the translation holds more list terms than its source (for speech, the model's own
transcript of the same encoder output), the item is decoded once more from the *same* encoder output with the
matched words banned, and text and speech both come from the re-decode. If the re-decode still adds toxicity, every
toxic term of the item is masked in the text (added and source terms cannot be told apart: ETOX compares counts) and
the item's speech is **silenced** — replaced by silence of the same length, so timelines keep their shape — rather
than re-synthesised from masked text, which would give the vocoder meaningless input. Toxicity that was in the source
is reported, not censored, unless ``SafetyOptions.filter_source_toxicity`` is on; then it is masked and silenced the
same way.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from safety.gender import GENDERS, GenderBiasChecker, GenderOptions, GenderReport, other, summarise
from safety.toxicity import (
    AddedToxicityReport,
    ToxicityDetector,
    ToxicityOptions,
    ToxicityReport,
)

log = logging.getLogger(__name__)


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
class _ToxicityReview:
    toxicity: ToxicityReport  # of the text finally shown
    added: AddedToxicityReport | None  # of the first translation
    mitigated: bool
    still_added: bool  # the added toxicity could not be removed (re-decode still toxic, or nothing to ban)
    masked_terms: frozenset[str]


def _matches_after(report: ToxicityReport, start: int) -> ToxicityReport:
    """``report`` reduced to the matches that end after character ``start`` (the newly committed text)."""
    return dataclasses.replace(report, matches=tuple(m for m in report.matches if m.end > start))


@dataclass(frozen=True)
class SafetyVerdict:
    """What the judge decided about one text (implements ``engine.hooks.Verdict``). The engine acts on it: it decodes
    once more with ``words_to_ban`` banned and asks again, masks ``mask_spans``, silences the speech, and translates
    ``alternative_source`` to offer the other gender's translation."""

    report: SafetyReport
    #: Non-empty: the translation added these offensive words; decode again without them and judge the new text
    #: with ``first=`` this verdict (MinTox). The report is then provisional.
    words_to_ban: tuple[str, ...] = ()
    #: Spans of the judged text to show masked (every occurrence of a term that must be hidden).
    mask_spans: tuple[tuple[int, int], ...] = ()
    #: A gender-marked version of the source; its translation is the alternative in the other gender.
    alternative_source: str | None = None
    #: The translation's start with its first gendered pronoun swapped (English *She* -> *He*): the model's own
    #: continuation after it, forced as a prefix, is the alternative (it picks *him* or *his* for *her* itself).
    alternative_prefix: str | None = None
    _review: _ToxicityReview | None = field(default=None, repr=False, compare=False)

    @property
    def silenced(self) -> bool:
        """The speech holds words that are masked in the text, so it must not be played."""
        return bool(self.mask_spans)


class SafetyJudge:
    """Toxicity (ETOX detection, MinTox decisions) and gender bias, as pure functions of the texts: it never runs a
    model. Holds no per-stream state, so every session and request shares one."""

    def __init__(self, options: SafetyOptions | None = None, tokenize: Callable[[str], list[str]] | None = None):
        """``tokenize`` is the translation model's own tokenizer (text → pieces): ETOX matches unsegmented scripts
        on it."""
        self.options = options if options is not None else SafetyOptions()
        self._toxicity = ToxicityDetector(self.options.toxicity, tokenize=tokenize)
        self._gender = GenderBiasChecker(self.options.gender)

    def prepare(self, langs: Iterable[str]) -> None:
        """Build the toxicity lists of ``langs`` at start-up rather than during someone's first request in a language
        (the gender lexicons are small: reading all of them takes 30 ms)."""
        self._toxicity.prepare(langs)

    def needs_source(self, text: str, tgt_lang: str, start: int = 0) -> bool:
        """Whether judging ``text`` after character ``start`` needs the source text: only when the new part holds
        toxic or gendered words (the live path decodes a transcript for it only then)."""
        if _matches_after(self._toxicity.detect(text, tgt_lang), start).toxic:
            return True
        return any(span.end > start for span in self._gender.gendered_spans(text, tgt_lang))

    def judge(
        self,
        source_text: str | None,
        src_lang: str | None,
        text: str,
        tgt_lang: str,
        *,
        start: int = 0,
        first: SafetyVerdict | None = None,
        redecoded: bool = False,
        transcription: bool = False,
        alternatives: bool = False,
    ) -> SafetyVerdict:
        """Judge ``text`` (a translation of ``source_text``; None: unknown) where only what ends after character
        ``start`` is new (the live path judges a segment's committed text as it grows).

        ``first``: the verdict that asked for a re-decode; ``redecoded``: whether one could be made (False when the
        words could not be banned), ``text`` then being the re-decode's. ``transcription``: ``text`` is the
        speaker's own words (its toxicity is theirs). ``alternatives``: look for the other gender's translation
        (file and text paths; a live sentence is unfinished).
        """
        if transcription:
            source_text, src_lang = text, tgt_lang
        detected, added = self._detect(source_text, src_lang, text, tgt_lang)
        new = _matches_after(detected, start)
        if first is None and added is not None and added.added and new.toxic:
            review = _ToxicityReview(detected, added, mitigated=False, still_added=False, masked_terms=frozenset())
            words = AddedToxicityReport(added.source, new).words_to_ban
            return SafetyVerdict(self._report(review, None), words_to_ban=words, _review=review)
        still_added = first is not None and (not redecoded or (added is not None and added.added))
        if first is not None:
            log.info("Added toxicity re-decoded: %s; still toxic: %s", redecoded, still_added)
        masked = still_added or self.options.filter_source_toxicity
        terms = frozenset(m.term for m in new.matches) if masked else frozenset()
        review = _ToxicityReview(
            detected,
            first.report.added_toxicity if first is not None else added,
            mitigated=first is not None and redecoded,
            still_added=still_added,
            masked_terms=terms,
        )
        spans = tuple(m.span for m in detected.matches if m.term in terms)
        gender, asks = None, {}
        if not transcription:
            gender = self._gender_report(source_text, src_lang, text, tgt_lang)
            if alternatives and self.options.gender_alternatives:
                gender, asks = self._alternative(gender, source_text, src_lang, text, tgt_lang)
        return SafetyVerdict(self._report(review, gender), (), spans, _review=review, **asks)

    def with_alternative(
        self, verdict: SafetyVerdict, translated: str | None, text: str, tgt_lang: str
    ) -> SafetyVerdict:
        """``verdict`` with the other gender's alternative: ``translated`` (the model's translation of
        ``verdict.alternative_source``, or its re-decode after ``verdict.alternative_prefix``) when it does use that
        gender, else the lexicon swap of ``text``."""
        gender = verdict.report.gender
        if gender is None or gender.assumed not in GENDERS:
            return verdict
        wanted = other(gender.assumed)
        if (
            translated is not None
            and summarise(s.gender for s in self._gender.gendered_spans(translated, tgt_lang)) == wanted
        ):
            alternative = translated
        else:
            log.info("The marked source did not translate to the %s form; swapping instead", wanted)
            alternative = self._gender.swap_gender(text, tgt_lang, to=wanted)
        report = self._report(verdict._review, gender.with_alternative(alternative))
        return dataclasses.replace(verdict, report=report, alternative_source=None, alternative_prefix=None)

    # ---- gender -------------------------------------------------------------------------------------------------

    def _gender_report(
        self, source_text: str | None, src_lang: str | None, target_text: str, tgt_lang: str
    ) -> GenderReport:
        """The lexicon report; a contradiction gets its suggested fix, the translation in the stated gender. An
        unknown source states nothing: the report then only says what the translation assumed."""
        report = self._gender.check(source_text or "", src_lang or tgt_lang, target_text, tgt_lang)
        if not report.contradiction:
            return report
        if report.correction is not None:  # the checker's own fix (also for a disagreement inside the translation)
            return report.with_alternative(report.correction)
        if report.source_gender not in GENDERS:
            return report
        fix = self._gender.swap_gender(target_text, tgt_lang, to=report.source_gender)  # type: ignore[arg-type]
        return report.with_alternative(fix)

    def _alternative(
        self, report: GenderReport, source_text: str | None, src_lang: str | None, text: str, tgt_lang: str
    ) -> tuple[GenderReport, dict[str, str]]:
        """For an ambiguous source translated with a gender, what the engine should decode for the other gender
        (the verdict fields it sets): a prefix up to the first gendered pronoun swapped, to force in a re-decode of
        the same encoder output; else the gender-marked source to translate (when the source language has
        markers); else nothing, the lexicon swap of the translation being the alternative right away."""
        if not (report.ambiguous and report.assumed in GENDERS and source_text is not None and src_lang is not None):
            return report, {}
        wanted = other(report.assumed)
        prefix = self._gender.alternative_prefix(text, tgt_lang, wanted)
        if prefix is not None:
            return report, {"alternative_prefix": prefix}
        marked = self._gender.marked_source(source_text, src_lang, wanted)
        if marked is not None:
            return report, {"alternative_source": marked}
        return report.with_alternative(self._gender.swap_gender(text, tgt_lang, to=wanted)), {}

    # ---- toxicity -----------------------------------------------------------------------------------------------

    def _detect(
        self, source_text: str | None, src_lang: str | None, text: str, tgt_lang: str
    ) -> tuple[ToxicityReport, AddedToxicityReport | None]:
        if source_text is None or src_lang is None:
            return self._toxicity.detect(text, tgt_lang), None
        added = self._toxicity.added_toxicity(source_text, src_lang, text, tgt_lang)
        return added.target, added

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
        if gender.source_gender in GENDERS:
            flags.append(
                f"Gender error: the source says {gender.source_gender}, the translation uses the other form.{fix}"
            )
        else:
            flags.append(f"Gender error: the translation's words disagree on the person's gender.{fix}")
    elif gender is not None and gender.ambiguous and gender.assumed in GENDERS:
        offer = f" Alternative: {gender.alternative}" if gender.alternative else ""
        flags.append(f"The source does not state a gender; the translation assumes {gender.assumed}.{offer}")
    return tuple(flags)
