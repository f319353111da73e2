"""Gender-bias check: does a translation commit to a gender the source did not state, or contradict one it did?

English "I am a doctor" says nothing about the speaker's gender; Spanish must choose *médico* or *médica*, and MT
systems mostly choose the masculine (Stanovsky et al., 2019, "Evaluating Gender Bias in Machine Translation").
Into English the choice falls on the pronoun: Turkish *o*, Finnish *hän* or Indonesian *dia* become *he* or *she*,
which Multilingual HolisticBias (Costa-jussà et al., 2023) measures. With the lexicons under ``assets/gender/``
this stage finds:

* whether the source refers to a person without a gender cue (first/second person, a pronoun of a language whose
  pronouns carry no gender, an English occupation noun) — ``ambiguous``;
* which gender the translation committed to (person nouns, agreeing adjectives and participles, Slavic past tense,
  Hindi and Urdu verb agreement, pronouns, an article before a noun with one form for both genders such as *la
  periodista*), plus regular endings after a first-person copula (*soy fotógrafa*) — ``assumed`` and ``spans``;
* contradictions: a gender the source states and the translation does not keep, or, inside the translation, a
  pronoun subject whose verb or adjective has the other gender (*Она сказал*) — ``contradiction``, with the
  translation put right in ``correction``. Not when the source also speaks of "I" or "you": the other form may be
  about them.

It also builds alternatives: a gender-marked source for the model to re-translate (``marked_source``), the prefix
to force for a re-decode in the other gender (``alternative_prefix``), the translation with its forms swapped
(``swap_gender``), and for English the singular-*they* version (``GenderReport.neutral``).

Lexicon matching has no coreference: with several people in a sentence, a form about one of them may be read as
being about another.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from safety.gender import english
from safety.gender.lexicons import (
    ARTICLE,
    DET,
    FEMININE,
    GENDER_DIR,
    GENDERS,
    MASCULINE,
    MIXED,
    Found,
    Gender,
    GenderLexicons,
    GenderSummary,
)
from safety.gender.sources import marked_source, match_case, replace
from safety.toxicity import Token, word_tokens

#: Neutral kinds that refer to the speaker or the listener, whom third-person cues never describe.
SPEAKER_KINDS = frozenset({"first", "second"})
#: A determiner agrees with a word at most this many tokens on: "die neue Managerin" (one adjective between).
DET_REACH = 2
#: A pronoun subject's verb or adjective follows it within this many tokens ("Elle est très fatiguée").
SUBJECT_REACH = 3
#: Kinds that agree with a pronoun subject; an article only as a predicate ("Él es una cantante"). Nouns do not:
#: a masculine occupation noun for a woman is common usage ("Вона лікар").
AGREEING_KINDS = frozenset({"verb", "adj", "agreement", ARTICLE})
PRONOUN = "pronoun"
#: Articles whose elided form shows another gender: Italian *un'insegnante* is feminine (*una* before a vowel),
#: *un insegnante* masculine. Normalisation drops the apostrophe, so the elided form is read back as the full one.
ELIDED_ARTICLES = {"ita": {"un": "una"}}
APOSTROPHES = "'’"


@dataclass(frozen=True)
class GenderOptions:
    """Where the gender lexicons live."""

    # Folder with <lang>.tsv, cues.tsv, neutral.tsv, pronoun_neutral.tsv, epicene.tsv, agreement.tsv, clitics.tsv
    # and markers.tsv (see its README.md).
    lexicon_dir: Path = GENDER_DIR

    def __post_init__(self) -> None:
        if not Path(self.lexicon_dir).is_dir():
            raise ValueError(f"lexicon_dir {self.lexicon_dir} is not a folder")


@dataclass(frozen=True)
class GenderSpan:
    """A word of the translation that commits to a gender."""

    start: int  # character offset into the target text
    end: int  # exclusive
    text: str
    gender: Gender
    kind: str  # noun | adj | verb | pronoun (lexicon), agreement (an ending rule), article (before an epicene noun)


@dataclass(frozen=True)
class GenderReport:
    """Result of the gender-bias check for one translation.

    ``ambiguous``: the source refers to a person without stating a gender. ``assumed``: the gender the translation
    committed to (None when it has no gendered form). ``source_gender``: the gender the source states.
    ``contradiction``: the source states one gender and the translation uses the other, or a pronoun subject of
    the translation disagrees with its verb or adjective. ``correction``: the translation with the contradicting
    forms put right (None without a contradiction or when no form could be changed). ``neutral``: for English, the
    translation with singular *they* (None otherwise). ``alternative``: a translation in the other gender, filled
    by the pipeline (``dataclasses.replace``).
    """

    ambiguous: bool
    assumed: GenderSummary | None
    contradiction: bool
    source_gender: GenderSummary | None
    spans: tuple[GenderSpan, ...]
    alternative: str | None = None
    correction: str | None = None
    neutral: str | None = None

    def with_alternative(self, alternative: str | None) -> GenderReport:
        return dataclasses.replace(self, alternative=alternative)


def summarise(genders: Iterable[Gender]) -> GenderSummary | None:
    found = set(genders)
    if len(found) > 1:
        return MIXED
    return next(iter(found), None)


def other(gender: Gender) -> Gender:
    """The gender of the alternative: ``marked_source(text, lang, other(report.assumed))``."""
    return FEMININE if gender == MASCULINE else MASCULINE


@dataclass(frozen=True)
class _Source:
    ambiguous: bool
    stated: GenderSummary | None
    speaker_or_listener: bool  # the source speaks of "I" or "you"


class GenderBiasChecker:
    """The gender-bias stage: ``check`` reports; ``marked_source``, ``alternative_prefix`` and ``swap_gender`` build
    alternatives."""

    def __init__(self, options: GenderOptions | None = None) -> None:
        self.options = options if options is not None else GenderOptions()
        self.lexicons = GenderLexicons(self.options.lexicon_dir)

    # ---- finding gendered words ---------------------------------------------------------------------------------

    @staticmethod
    def _tokens(text: str, lang: str) -> list[Token]:
        """The words of ``text``, with elided articles read as the full form of their gender (``ELIDED_ARTICLES``)."""
        elided = ELIDED_ARTICLES.get(lang, {})
        tokens = word_tokens(text)
        return [
            Token(elided[t.text], t.start, t.end) if t.text in elided and text[t.end : t.end + 1] in APOSTROPHES else t
            for t in tokens
        ]

    def _found(self, tokens: Sequence[Token], lang: str) -> list[Found]:
        """Lexicon forms first, then agreement endings on the words the lexicon does not know, then articles."""
        forms = self.lexicons.forms(lang)
        found = forms.find(tokens) if forms is not None else []
        covered = {i for f in found for i in range(f.first, f.last + 1)}
        passed_over = forms.det_words if forms is not None else frozenset()
        for rule in self.lexicons.agreement(lang):
            more = rule.find(tokens, covered, passed_over)
            found += more
            covered |= {f.first for f in more}
        found = self._articles(tokens, found, covered, lang)
        return sorted(found, key=lambda f: f.first)

    def _articles(self, tokens: Sequence[Token], found: list[Found], covered: set[int], lang: str) -> list[Found]:
        """A determiner before an epicene person noun is evidence (*la periodista*); before other nouns it is not."""
        epicene = self.lexicons.epicene(lang)
        result = []
        for f in found:
            reach = range(f.last + 1, min(f.last + 1 + DET_REACH, len(tokens)))
            noun = next((j for j in reach if tokens[j].text in epicene and j not in covered), None)
            if f.kind == DET and noun is not None:
                f = dataclasses.replace(f, kind=ARTICLE, shown_last=noun)
            result.append(f)
        return result

    def gendered_spans(self, target_text: str, tgt_lang: str) -> tuple[GenderSpan, ...]:
        """Words of a translation that commit to a gender (empty when ``tgt_lang`` has no lexicon)."""
        tokens = self._tokens(target_text, tgt_lang)
        return tuple(self._span(target_text, tokens, f) for f in self._found(tokens, tgt_lang) if f.kind != DET)

    @staticmethod
    def _span(text: str, tokens: Sequence[Token], f: Found) -> GenderSpan:
        start, end = tokens[f.first].start, tokens[f.shown_last if f.shown_last is not None else f.last].end
        return GenderSpan(start, end, text[start:end], f.gender, f.kind)

    # ---- the report ---------------------------------------------------------------------------------------------

    def _analyse_source(self, source_text: str, src_lang: str) -> _Source:
        """Whether a source is ambiguous, the gender it states, and whether it speaks of "I"/"you".

        Gender is stated by cue words and, for gendered languages, by their own forms. Cues are about third persons
        (*my brother*), so a first- or second-person reference stays ambiguous beside them: in *my brother says I
        am tired* the speaker's gender is still open.
        """
        tokens = self._tokens(source_text, src_lang)
        cues = self.lexicons.cues(src_lang)
        genders = [cues[t.text] for t in tokens if t.text in cues]
        genders += [f.gender for f in self._found(tokens, src_lang) if f.kind != DET]
        stated = summarise(genders)
        neutral = self.lexicons.neutral(src_lang)
        kinds = {neutral[t.text] for t in tokens if t.text in neutral}
        speaker_or_listener = not kinds.isdisjoint(SPEAKER_KINDS)
        return _Source(speaker_or_listener or (bool(kinds) and stated is None), stated, speaker_or_listener)

    @staticmethod
    def _disagreements(tokens: Sequence[Token], found: Sequence[Found]) -> list[tuple[Found, Gender]]:
        """Forms that disagree with the pronoun subject before them (*Она сказал*), each with the subject's gender.

        An article counts only right after its subject and copula (*Él es una cantante*), not further on, where it
        is more often about another person (*Ella habló con el periodista*).
        """
        result = []
        subject: Found | None = None
        for f in found:
            if f.kind == PRONOUN:
                subject = f
                continue
            if subject is None or f.kind not in AGREEING_KINDS:
                continue
            reach = SUBJECT_REACH if f.kind in ("verb", "adj", "agreement") else DET_REACH
            if f.first - subject.last <= reach and f.gender != subject.gender:
                result.append((f, subject.gender))
        return result

    def check(self, source_text: str, src_lang: str, target_text: str, tgt_lang: str) -> GenderReport:
        """Gender report of one translation; codes are SeamlessM4T codes (``eng``, ``spa``)."""
        source = self._analyse_source(source_text, src_lang)
        tokens = self._tokens(target_text, tgt_lang)
        found = [f for f in self._found(tokens, tgt_lang) if f.kind != DET]
        spans = tuple(self._span(target_text, tokens, f) for f in found)
        ambiguous = source.ambiguous
        if source.stated is None and src_lang in self.lexicons.pronoun_neutral_languages():
            # Pronouns of the source say nothing about gender (and are often dropped): a gendered pronoun in the
            # translation is the translation's own choice.
            ambiguous = ambiguous or any(f.kind == PRONOUN for f in found)
        # With "I" or "you" in the source, a form of the other gender may be about them: not a contradiction.
        stated_gender = source.stated if source.stated in GENDERS and not source.speaker_or_listener else None
        disagreeing = self._disagreements(tokens, found)
        correction = None
        if stated_gender is not None and any(f.gender != stated_gender for f in found):
            correction = self.swap_gender(target_text, tgt_lang, to=stated_gender)  # type: ignore[arg-type]
            contradiction = True
        elif disagreeing:
            edits = {f.first: f for f, _ in disagreeing}
            correction = self._apply(target_text, tokens, self._found(tokens, tgt_lang), set(edits), tgt_lang)
            contradiction = True
        else:
            contradiction = False
        neutral = self.neutral_version(target_text, tgt_lang) if tgt_lang == english.ENGLISH else None
        assumed = summarise(f.gender for f in found)
        return GenderReport(ambiguous, assumed, contradiction, source.stated, spans, None, correction, neutral)

    # ---- alternatives -------------------------------------------------------------------------------------------

    def _apply(
        self, text: str, tokens: Sequence[Token], found: Sequence[Found], changed: set[int], lang: str
    ) -> str | None:
        """``text`` with the forms starting at the ``changed`` token indices swapped, and the determiners that agree
        with them; None when nothing changes."""
        edits = []
        for f in found:
            agrees_with_change = f.kind == DET and not changed.isdisjoint(range(f.last + 1, f.last + 1 + DET_REACH))
            if f.first in changed or agrees_with_change:
                new = english.counterpart(tokens, f.first, f.counterpart) if lang == english.ENGLISH else f.counterpart
                start, end = tokens[f.first].start, tokens[f.last].end
                edits.append((start, end, match_case(new, text[start:end])))
        return replace(text, edits) if edits else None

    def swap_gender(self, target_text: str, tgt_lang: str, to: Gender | None = None) -> str | None:
        """The translation with its gendered forms changed, or None when nothing changes.

        ``to=None`` flips every form; ``to="feminine"`` makes every form feminine (fixes a contradiction without
        touching the forms that were right). A determiner changes only when a word at most ``DET_REACH`` tokens
        after it changed (*el médico* -> *la médica*, while *el hospital* stays); an article before an epicene noun
        changes alone (*el periodista* -> *la periodista*). English *her* becomes *his* before a noun and *him*
        elsewhere. A fallback: it knows only lexicon words and agreement endings, so other agreeing words stay.
        """
        tokens = self._tokens(target_text, tgt_lang)
        found = self._found(tokens, tgt_lang)
        changed = {f.first for f in found if f.kind != DET and (to is None or f.gender != to)}
        return self._apply(target_text, tokens, found, changed, tgt_lang)

    def alternative_prefix(self, target_text: str, tgt_lang: str, to: Gender) -> str | None:
        """The translation up to and including its first pronoun not in ``to``, that pronoun swapped to ``to``.

        Forced as the decoder's prefix of a re-decode from the same encoder output, it lets the model write the
        rest in the other gender itself (English *her* -> *him*/*his* is then the model's choice of continuation
        after the swapped subject). None when the translation has no pronoun of the other gender.
        """
        tokens = self._tokens(target_text, tgt_lang)
        found = self._found(tokens, tgt_lang)
        first = next((f for f in found if f.kind == PRONOUN and f.gender != to), None)
        if first is None:
            return None
        end = tokens[first.last].end
        return self._apply(target_text[:end], tokens[: first.last + 1], [first], {first.first}, tgt_lang)

    def neutral_version(self, target_text: str, tgt_lang: str) -> str | None:
        """English only: the translation with singular *they* for its gendered pronouns (*she works* -> *they
        work*); None for other languages or when it has no gendered pronoun."""
        if tgt_lang != english.ENGLISH:
            return None
        tokens = self._tokens(target_text, tgt_lang)
        pronouns = [f.first for f in self._found(tokens, tgt_lang) if f.kind == PRONOUN]
        edits = [
            (tokens[i].start, tokens[i].end, match_case(new, target_text[tokens[i].start : tokens[i].end]))
            for i, new in english.they_edits(tokens, pronouns)
        ]
        return replace(target_text, edits) if edits else None

    def marked_source(self, source_text: str, src_lang: str, gender: Gender) -> str | None:
        """The source with ``gender`` stated, for the model to re-translate; None when it cannot be marked
        (:func:`safety.gender.sources.marked_source`)."""
        return marked_source(self.lexicons, source_text, src_lang, gender)
