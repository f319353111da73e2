"""Gender-bias check: does a translation commit to a gender the source did not state, or contradict one it did?

English "I am a doctor" says nothing about the speaker's gender; Spanish must choose *médico* or *médica*, and MT
systems mostly choose the masculine (Stanovsky et al., 2019, "Evaluating Gender Bias in Machine Translation"). This
stage finds, with curated lexicons under ``assets/gender/`` (format in its README):

* whether the source refers to a person without a gender cue (first/second person, a gender-neutral pronoun such as
  Turkish *o*, an English occupation noun) — ``ambiguous``;
* which gender the translation committed to (person nouns, agreeing adjectives and participles, Slavic past tense,
  Hindi verb agreement, pronouns), from the lexicons and, for words they lack, from regular endings after a
  first-person copula (Spanish *soy fotógrafa*, Polish *-łam*) — ``assumed`` and ``spans``;
* whether a gender the source states is contradicted by the translation — ``contradiction`` (not when the source
  also speaks of "I" or "you": the other form may be about them).

It also builds the two inputs for an alternative translation in the other gender: a gender-marked source for the
model to re-translate (``marked_source``), and, as a fallback, the translation with its lexicon forms swapped
(``swap_gender``). The pipeline fills ``GenderReport.alternative``.

Lexicon matching has no coreference: with several people in a sentence, a form about one of them may be read as
being about another.
"""

from __future__ import annotations

import csv
import dataclasses
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from safety.toxicity import Token, word_tokens

log = logging.getLogger(__name__)

GENDER_DIR = Path(__file__).resolve().parent.parent / "assets" / "gender"

Gender = Literal["masculine", "feminine"]
GenderSummary = Literal["masculine", "feminine", "mixed"]
MASCULINE: Gender = "masculine"
FEMININE: Gender = "feminine"
MIXED: GenderSummary = "mixed"
GENDERS = (MASCULINE, FEMININE)

#: Lexicon kinds that show a translation committed to a gender; ``det`` forms only follow the word they agree with.
EVIDENCE_KINDS = frozenset({"noun", "adj", "verb", "pronoun"})
DET = "det"
NEUTRAL_KINDS = frozenset({"first", "second", "third", "noun"})
#: Neutral kinds that refer to the speaker or the listener, whom third-person cues never describe.
SPEAKER_KINDS = frozenset({"first", "second"})
#: Kind of the words found by an ending rule (agreement.tsv) rather than by the lexicon.
AGREEMENT = "agreement"
BOTH = "both"
DETECT = frozenset({BOTH, MASCULINE, FEMININE})
ANY_WORD = "*"
NONE = "-"
#: A determiner agrees with a word at most this many tokens on: "die neue Managerin" (one adjective between).
DET_REACH = 2
#: Letters an agreeing word must keep before its ending: "yo" is not a masculine "y-o".
MIN_STEM_CHARS = 2
MARKER_NOUN = "noun"
MARKER_PRONOUN = "pronoun"

ENGLISH = "eng"
#: English contractions after a pronoun that a marker template replaces: "I'm" -> "I, a woman, am".
ENGLISH_CONTRACTIONS = {"m": "am", "re": "are", "ve": "have", "ll": "will", "d": "would"}
_CONTRACTION = re.compile(r"^['’](m|re|ve|ll|d)\b", re.IGNORECASE)


class GenderLexiconError(ValueError):
    """A lexicon file under ``assets/gender/`` that is missing columns or holds an unknown value."""


@dataclass(frozen=True)
class GenderOptions:
    """Where the gender lexicons live."""

    # Folder with <lang>.tsv, cues.tsv, neutral.tsv, agreement.tsv, clitics.tsv and markers.tsv (see its README.md).
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
    kind: str  # noun | adj | verb | pronoun (lexicon), or agreement (an ending rule)


@dataclass(frozen=True)
class GenderReport:
    """Result of the gender-bias check for one translation.

    ``ambiguous``: the source refers to a person without stating a gender. ``assumed``: the gender the translation
    committed to (None when it has no gendered form). ``source_gender``: the gender the source states.
    ``contradiction``: the source states one gender and the translation uses the other. ``alternative``: a
    translation in the other gender, filled by the pipeline (``dataclasses.replace``).
    """

    ambiguous: bool
    assumed: GenderSummary | None
    contradiction: bool
    source_gender: GenderSummary | None
    spans: tuple[GenderSpan, ...]
    alternative: str | None = None

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


def _words(text: str) -> tuple[str, ...]:
    return tuple(t.text for t in word_tokens(text))


def _read_tsv(path: Path, columns: Sequence[str]) -> list[dict[str, str]]:
    """Rows of a lexicon TSV (``#`` lines are comments), checked to have ``columns``."""
    try:
        with path.open(encoding="utf-8") as f:
            rows = list(csv.DictReader((line for line in f if not line.startswith("#")), delimiter="\t"))
    except (OSError, UnicodeDecodeError) as e:
        raise GenderLexiconError(f"cannot read {path}: {e}") from e
    for number, row in enumerate(rows, start=2):
        if any(not row.get(column) for column in columns):
            raise GenderLexiconError(f"{path}: row {number} lacks one of the columns {', '.join(columns)}: {row}")
    return rows


# --- finding gendered words -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Found:
    """A gendered word (or phrase) of a text, and what ``swap_gender`` would put in its place."""

    first: int  # token index
    last: int  # token index, inclusive
    gender: Gender
    kind: str  # a lexicon kind, or AGREEMENT
    counterpart: str  # the same word in the other gender, normalised (lower case)


@dataclass(frozen=True)
class _Form:
    words: tuple[str, ...]
    gender: Gender
    counterpart: tuple[str, ...]
    kind: str


class _FormIndex:
    """The gendered forms of one language, indexed by first word; the first row that lists a form wins."""

    def __init__(self, forms: Iterable[_Form], prefixes: Iterable[str]) -> None:
        self._by_first: dict[str, dict[tuple[str, ...], _Form]] = {}
        for form in forms:
            self._by_first.setdefault(form.words[0], {}).setdefault(form.words, form)
        self._prefixes = sorted(set(prefixes), key=len, reverse=True)
        self.det_words = frozenset(
            form.words[0] for by_words in self._by_first.values() for form in by_words.values() if form.kind == DET
        )

    def _split_prefix(self, word: str) -> Iterable[tuple[str, str]]:
        yield "", word
        for prefix in self._prefixes:
            if word.startswith(prefix) and len(word) > len(prefix):
                yield prefix, word[len(prefix) :]

    def find(self, tokens: Sequence[Token]) -> list[_Found]:
        """Longest form at each token; tokens inside a match start no other match."""
        found: list[_Found] = []
        i = 0
        while i < len(tokens):
            best: tuple[_Form, str] | None = None
            for prefix, stem in self._split_prefix(tokens[i].text):
                for words, form in self._by_first.get(stem, {}).items():
                    window = (stem, *(t.text for t in tokens[i + 1 : i + len(words)]))
                    if window == words and (best is None or len(words) > len(best[0].words)):
                        best = form, prefix
            if best is None:
                i += 1
                continue
            form, prefix = best
            last = i + len(form.words) - 1
            found.append(_Found(i, last, form.gender, form.kind, prefix + " ".join(form.counterpart)))
            i = last + 1
        return found


@dataclass(frozen=True)
class _AgreementRule:
    """One row of agreement.tsv: after a trigger word, the next word's ending shows the person's gender."""

    after: frozenset[str]  # empty: every word is looked at
    endings: tuple[tuple[str, Gender, str], ...]  # (ending, its gender, the other gender's ending), longest first
    skip: frozenset[str]
    exceptions: tuple[str, ...]

    def _next_word(self, tokens: Sequence[Token], i: int, passed_over: frozenset[str]) -> int | None:
        j = i + 1
        while j < len(tokens) and (tokens[j].text in self.skip or tokens[j].text in passed_over):
            j += 1
        return j if j < len(tokens) else None

    def _classify(self, word: str) -> tuple[str, Gender, str] | None:
        if word.endswith(self.exceptions):
            return None
        for ending, gender, counterpart in self.endings:
            if word.endswith(ending) and len(word) - len(ending) >= MIN_STEM_CHARS:
                return ending, gender, counterpart
        return None

    def find(self, tokens: Sequence[Token], covered: set[int], passed_over: frozenset[str]) -> list[_Found]:
        """Agreeing words not already ``covered`` by the lexicon; ``passed_over`` are the language's det forms."""
        if self.after:
            targets = {self._next_word(tokens, i, passed_over) for i, t in enumerate(tokens) if t.text in self.after}
        else:
            targets = set(range(len(tokens)))
        found = []
        for j in sorted(t for t in targets if t is not None and t not in covered):
            word = tokens[j].text
            match = self._classify(word)
            if match is not None:
                ending, gender, counterpart = match
                found.append(_Found(j, j, gender, AGREEMENT, word[: len(word) - len(ending)] + counterpart))
        return found


def _bar_list(value: str) -> list[str]:
    """A '|'-separated cell of agreement.tsv; '-' stands for the empty string."""
    return ["" if item == NONE else item for item in value.split("|")]


def _agreement_rule(row: dict[str, str]) -> _AgreementRule:
    masculine, feminine, detect = _bar_list(row["masculine"]), _bar_list(row["feminine"]), row["detect"]
    if len(masculine) != len(feminine) or detect not in DETECT:
        raise GenderLexiconError(f"agreement.tsv: endings do not pair up or bad detect {detect!r}: {row}")
    endings = []
    for m, f in zip(masculine, feminine, strict=True):
        if detect in (BOTH, MASCULINE):
            endings.append((m, MASCULINE, f))
        if detect in (BOTH, FEMININE):
            endings.append((f, FEMININE, m))
    if any(not ending for ending, _, _ in endings):
        raise GenderLexiconError(f"agreement.tsv: the empty ending cannot be evidence: {row}")
    words = frozenset() if row["after"] == ANY_WORD else frozenset(_words(" ".join(_bar_list(row["after"]))))
    return _AgreementRule(
        after=words,
        endings=tuple(sorted(endings, key=lambda e: len(e[0]), reverse=True)),
        skip=frozenset(_words(" ".join(_bar_list(row["skip"])))),
        exceptions=tuple(e for e in _bar_list(row["except"]) if e),
    )


class GenderLexicons:
    """The files under ``assets/gender/``, each read on first use and cached on this instance."""

    def __init__(self, folder: Path) -> None:
        self._folder = Path(folder)
        self._forms: dict[str, _FormIndex | None] = {}
        self._tables: dict[str, list[dict[str, str]]] = {}
        self._cues: dict[str, dict[str, Gender]] = {}
        self._neutral: dict[str, dict[str, str]] = {}
        self._agreement: dict[str, list[_AgreementRule]] = {}

    def _table(self, name: str, columns: Sequence[str]) -> list[dict[str, str]]:
        if name not in self._tables:
            self._tables[name] = _read_tsv(self._folder / name, columns)
        return self._tables[name]

    def _rows(self, name: str, lang: str, columns: Sequence[str]) -> list[dict[str, str]]:
        return [row for row in self._table(name, ["lang", *columns]) if row["lang"] == lang]

    def forms(self, lang: str) -> _FormIndex | None:
        """Gendered forms of ``lang`` (None when the language has no lexicon)."""
        if lang not in self._forms:
            path = self._folder / f"{lang}.tsv"
            self._forms[lang] = self._read_forms(path, lang) if path.is_file() else None
        return self._forms[lang]

    def _read_forms(self, path: Path, lang: str) -> _FormIndex:
        forms = []
        for row in _read_tsv(path, ["masculine", "feminine", "kind"]):
            kind = row["kind"]
            if kind not in EVIDENCE_KINDS | {DET}:
                raise GenderLexiconError(f"{path}: unknown kind {kind!r} for {row['masculine']}")
            masculine, feminine = _words(row["masculine"]), _words(row["feminine"])
            forms += [_Form(masculine, MASCULINE, feminine, kind), _Form(feminine, FEMININE, masculine, kind)]
        prefixes = [_words(row["prefix"])[0] for row in self._rows("clitics.tsv", lang, ["prefix"])]
        log.info("Gender lexicon for %s: %d forms", lang, len(forms))
        return _FormIndex(forms, prefixes)

    def cues(self, lang: str) -> dict[str, Gender]:
        """Source words of ``lang`` that state a gender."""
        if lang not in self._cues:
            cues: dict[str, Gender] = {}
            for row in self._rows("cues.tsv", lang, ["word", "gender"]):
                if row["gender"] not in GENDERS:
                    raise GenderLexiconError(f"cues.tsv: unknown gender {row['gender']!r} for {row['word']}")
                cues[_words(row["word"])[0]] = row["gender"]  # type: ignore[assignment]  # checked just above
            self._cues[lang] = cues
        return self._cues[lang]

    def neutral(self, lang: str) -> dict[str, str]:
        """Neutral person words of ``lang`` and their kind (first, second, third, noun)."""
        if lang not in self._neutral:
            rows = self._rows("neutral.tsv", lang, ["word", "kind"])
            unknown = {row["kind"] for row in rows} - NEUTRAL_KINDS
            if unknown:
                raise GenderLexiconError(f"neutral.tsv: unknown kinds {sorted(unknown)}")
            self._neutral[lang] = {_words(row["word"])[0]: row["kind"] for row in rows}
        return self._neutral[lang]

    def agreement(self, lang: str) -> list[_AgreementRule]:
        """Rules of agreement.tsv for ``lang``."""
        if lang not in self._agreement:
            columns = ["after", "masculine", "feminine", "detect", "skip", "except"]
            self._agreement[lang] = [_agreement_rule(row) for row in self._rows("agreement.tsv", lang, columns)]
        return self._agreement[lang]

    def markers(self, lang: str) -> list[dict[str, str]]:
        """Rows of markers.tsv for ``lang``: kind, word, masculine, feminine."""
        return self._rows("markers.tsv", lang, ["kind", "word", "masculine", "feminine"])


# --- the checker --------------------------------------------------------------------------------------------------


def _match_case(template: str, model: str) -> str:
    """``template`` in the case pattern of ``model``: ``ÄRZTIN``, ``Ärztin`` or as written."""
    if len(model) > 1 and model.isupper():
        return template.upper()
    if model[:1].isupper():
        return template[:1].upper() + template[1:]
    return template


def _replace(text: str, edits: Iterable[tuple[int, int, str]]) -> str:
    """``text`` with non-overlapping (start, end, new) edits applied."""
    for start, end, new in sorted(edits, reverse=True):
        text = text[:start] + new + text[end:]
    return text


class GenderBiasChecker:
    """The gender-bias stage: ``check`` reports; ``marked_source`` and ``swap_gender`` build alternatives."""

    def __init__(self, options: GenderOptions | None = None) -> None:
        self.options = options if options is not None else GenderOptions()
        self._lexicons = GenderLexicons(self.options.lexicon_dir)

    def _found(self, tokens: Sequence[Token], lang: str) -> list[_Found]:
        """Lexicon forms first, then agreement endings on the words the lexicon does not know."""
        forms = self._lexicons.forms(lang)
        found = forms.find(tokens) if forms is not None else []
        covered = {i for f in found for i in range(f.first, f.last + 1)}
        passed_over = forms.det_words if forms is not None else frozenset()
        for rule in self._lexicons.agreement(lang):
            more = rule.find(tokens, covered, passed_over)
            found += more
            covered |= {f.first for f in more}
        return sorted(found, key=lambda f: f.first)

    def _analyse_source(self, source_text: str, src_lang: str) -> tuple[bool, GenderSummary | None, bool]:
        """(ambiguous, stated gender, speaks of "I"/"you") for a source.

        Gender is stated by cue words and, for gendered languages, by their own forms. Cues are about third persons
        (*my brother*), so a first- or second-person reference stays ambiguous beside them: in *my brother says I
        am tired* the speaker's gender is still open.
        """
        tokens = word_tokens(source_text)
        cues = self._lexicons.cues(src_lang)
        genders = [cues[t.text] for t in tokens if t.text in cues]
        genders += [f.gender for f in self._found(tokens, src_lang) if f.kind != DET]
        stated = summarise(genders)
        neutral = self._lexicons.neutral(src_lang)
        kinds = {neutral[t.text] for t in tokens if t.text in neutral}
        speaker_or_listener = not kinds.isdisjoint(SPEAKER_KINDS)
        return speaker_or_listener or (bool(kinds) and stated is None), stated, speaker_or_listener

    def gendered_spans(self, target_text: str, tgt_lang: str) -> tuple[GenderSpan, ...]:
        """Words of a translation that commit to a gender (empty when ``tgt_lang`` has no lexicon)."""
        tokens = word_tokens(target_text)
        spans = []
        for f in self._found(tokens, tgt_lang):
            if f.kind != DET:
                start, end = tokens[f.first].start, tokens[f.last].end
                spans.append(GenderSpan(start, end, target_text[start:end], f.gender, f.kind))
        return tuple(spans)

    def check(self, source_text: str, src_lang: str, target_text: str, tgt_lang: str) -> GenderReport:
        """Gender report of one translation; codes are SeamlessM4T codes (``eng``, ``spa``)."""
        ambiguous, stated, speaker_or_listener = self._analyse_source(source_text, src_lang)
        spans = self.gendered_spans(target_text, tgt_lang)
        # With "I" or "you" in the source, a form of the other gender may be about them: not a contradiction.
        opposite = stated in GENDERS and any(span.gender != stated for span in spans)
        contradiction = opposite and not speaker_or_listener
        return GenderReport(ambiguous, summarise(s.gender for s in spans), contradiction, stated, spans)

    def swap_gender(self, target_text: str, tgt_lang: str, to: Gender | None = None) -> str | None:
        """The translation with its gendered forms changed, or None when nothing changes.

        ``to=None`` flips every form; ``to="feminine"`` makes every form feminine (fixes a contradiction without
        touching the forms that were right). A determiner changes only when a word at most ``DET_REACH`` tokens
        after it changed (*el médico* -> *la médica*, *die neue Managerin* -> *der neue Manager*, while *el hospital*
        stays). A fallback: it knows only lexicon words and agreement endings, so other agreeing words stay as they
        were.
        """
        tokens = word_tokens(target_text)
        found = self._found(tokens, tgt_lang)
        changed = {f.first for f in found if f.kind != DET and (to is None or f.gender != to)}  # token indices
        edits = []
        for f in found:
            agrees_with_change = f.kind == DET and not changed.isdisjoint(range(f.last + 1, f.last + 1 + DET_REACH))
            if f.first in changed or agrees_with_change:
                start, end = tokens[f.first].start, tokens[f.last].end
                edits.append((start, end, _match_case(f.counterpart, target_text[start:end])))
        return _replace(target_text, edits) if edits else None

    def marked_source(self, source_text: str, src_lang: str, gender: Gender) -> str | None:
        """The source with ``gender`` stated, for the model to re-translate; None when it cannot be marked.

        A person noun gets a marker in front (*I am a doctor* -> *I am a female doctor*), which reads naturally and
        translates to the gendered noun. Without one, a pronoun becomes a short apposition (*I'm tired* -> *I, a
        woman, am tired*): less natural, so the pipeline may prefer :meth:`swap_gender` there.
        """
        tokens = word_tokens(source_text)
        neutral = self._lexicons.neutral(src_lang)
        markers = self._lexicons.markers(src_lang)
        for row in (r for r in markers if r["kind"] == MARKER_NOUN):
            for i, token in enumerate(tokens):
                if neutral.get(token.text) == MARKER_NOUN:
                    return self._insert_marker(source_text, src_lang, tokens, i, row[gender])
        for row in (r for r in markers if r["kind"] == MARKER_PRONOUN):
            for token in tokens:
                if token.text == row["word"]:
                    return self._replace_pronoun(source_text, src_lang, token, row[gender])
        return None

    @staticmethod
    def _insert_marker(text: str, lang: str, tokens: Sequence[Token], i: int, marker: str) -> str:
        token = tokens[i]
        edits = [(token.start, token.start, marker + " ")]
        before = tokens[i - 1] if i > 0 else None
        if lang == ENGLISH and before is not None and before.text == "an" and marker[:1] not in "aeiou":
            edits.append((before.start, before.end, _match_case("a", text[before.start : before.end])))
        return _replace(text, edits)

    @staticmethod
    def _replace_pronoun(text: str, lang: str, token: Token, template: str) -> str:
        new, end = _match_case(template, text[token.start : token.end]), token.end
        contraction = _CONTRACTION.match(text[end:]) if lang == ENGLISH else None
        if contraction:
            new, end = f"{new} {ENGLISH_CONTRACTIONS[contraction.group(1).lower()]}", end + contraction.end()
        return _replace(text, [(token.start, end, new)])
