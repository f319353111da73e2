"""The gender lexicons under ``assets/gender/`` (format in its README) and the matching of their forms in text.

A form is a word or phrase of one gender with its counterpart in the other (*médico / médica*); an agreement
rule finds, after a trigger word, a word whose regular ending shows the person's gender (*soy fotógrafa*). Two tables
help the checker read a source: the languages whose pronouns carry no gender (``pronoun_neutral.tsv``), and per
target language the person nouns with one form for both genders (``epicene.tsv``: *la periodista*), where only
the article shows the gender.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from safety.toxicity import Token, word_tokens

log = logging.getLogger(__name__)

GENDER_DIR = Path(__file__).resolve().parent.parent.parent / "assets" / "gender"

Gender = Literal["masculine", "feminine"]
GenderSummary = Literal["masculine", "feminine", "mixed"]
MASCULINE: Gender = "masculine"
FEMININE: Gender = "feminine"
MIXED: GenderSummary = "mixed"
GENDERS = (MASCULINE, FEMININE)

#: Lexicon kinds that show a translation committed to a gender; ``det`` forms only follow the word they agree with.
EVIDENCE_KINDS = frozenset({"noun", "adj", "verb", "pronoun"})
DET = "det"
#: Kind of a determiner found before an epicene person noun: evidence, unlike other ``det`` forms.
ARTICLE = "article"
#: Kind of the words found by an ending rule (agreement.tsv) rather than by the lexicon.
AGREEMENT = "agreement"
NEUTRAL_KINDS = frozenset({"first", "second", "third", "noun"})
BOTH = "both"
DETECT = frozenset({BOTH, MASCULINE, FEMININE})
ANY_WORD = "*"
NONE = "-"
#: Letters an agreeing word must keep before its ending: "yo" is not a masculine "y-o".
MIN_STEM_CHARS = 2


class GenderLexiconError(ValueError):
    """A lexicon file under ``assets/gender/`` that is missing columns or holds an unknown value."""


def words(text: str) -> tuple[str, ...]:
    """The normalised words of a lexicon cell, as the text they are matched against is tokenised."""
    return tuple(t.text for t in word_tokens(text))


def read_tsv(path: Path, columns: Sequence[str]) -> list[dict[str, str]]:
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


@dataclass(frozen=True)
class Found:
    """A gendered word (or phrase) of a text, and what a swap would put in its place."""

    first: int  # token index
    last: int  # token index, inclusive
    gender: Gender
    kind: str  # a lexicon kind, AGREEMENT or ARTICLE
    counterpart: str  # the same word in the other gender, normalised (lower case)
    shown_last: int | None = None  # for an ARTICLE: the token index of its noun, so the reported span covers both


@dataclass(frozen=True)
class _Form:
    words: tuple[str, ...]
    gender: Gender
    counterpart: tuple[str, ...]
    kind: str


class FormIndex:
    """The gendered forms of one language, indexed by first word; the first row that lists a form wins."""

    def __init__(self, forms: Iterable[_Form], prefixes: Iterable[str]) -> None:
        self._by_first: dict[str, dict[tuple[str, ...], _Form]] = {}
        for form in forms:
            self._by_first.setdefault(form.words[0], {}).setdefault(form.words, form)
        self._prefixes = sorted(set(prefixes), key=len, reverse=True)
        self.det_words = frozenset(
            form.words[0] for by_words in self._by_first.values() for form in by_words.values() if form.kind == DET
        )

    @property
    def size(self) -> int:
        return sum(len(by_words) for by_words in self._by_first.values())

    def _split_prefix(self, word: str) -> Iterable[tuple[str, str]]:
        yield "", word
        for prefix in self._prefixes:
            if word.startswith(prefix) and len(word) > len(prefix):
                yield prefix, word[len(prefix) :]

    def find(self, tokens: Sequence[Token]) -> list[Found]:
        """Longest form at each token; tokens inside a match start no other match."""
        found: list[Found] = []
        i = 0
        while i < len(tokens):
            best: tuple[_Form, str] | None = None
            for prefix, stem in self._split_prefix(tokens[i].text):
                for form_words, form in self._by_first.get(stem, {}).items():
                    window = (stem, *(t.text for t in tokens[i + 1 : i + len(form_words)]))
                    if window == form_words and (best is None or len(form_words) > len(best[0].words)):
                        best = form, prefix
            if best is None:
                i += 1
                continue
            form, prefix = best
            last = i + len(form.words) - 1
            found.append(Found(i, last, form.gender, form.kind, prefix + " ".join(form.counterpart)))
            i = last + 1
        return found


@dataclass(frozen=True)
class AgreementRule:
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

    def find(self, tokens: Sequence[Token], covered: set[int], passed_over: frozenset[str]) -> list[Found]:
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
                found.append(Found(j, j, gender, AGREEMENT, word[: len(word) - len(ending)] + counterpart))
        return found


def _bar_list(value: str) -> list[str]:
    """A '|'-separated cell; '-' stands for the empty string."""
    return ["" if item == NONE else item for item in value.split("|")]


def _agreement_rule(row: dict[str, str]) -> AgreementRule:
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
    after = frozenset() if row["after"] == ANY_WORD else frozenset(words(" ".join(_bar_list(row["after"]))))
    return AgreementRule(
        after=after,
        endings=tuple(sorted(endings, key=lambda e: len(e[0]), reverse=True)),
        skip=frozenset(words(" ".join(_bar_list(row["skip"])))),
        exceptions=tuple(e for e in _bar_list(row["except"]) if e),
    )


def _forms_of_row(path: Path, row: dict[str, str]) -> list[_Form]:
    """The one or two forms a lexicon row gives: ``detect`` (optional column) says which genders it indexes."""
    kind, detect = row["kind"], row.get("detect") or BOTH
    if kind not in EVIDENCE_KINDS | {DET} or detect not in DETECT:
        raise GenderLexiconError(f"{path}: unknown kind {kind!r} or detect {detect!r} for {row['masculine']}")
    masculine, feminine = words(row["masculine"]), words(row["feminine"])
    forms = []
    if detect in (BOTH, MASCULINE):
        forms.append(_Form(masculine, MASCULINE, feminine, kind))
    if detect in (BOTH, FEMININE):
        forms.append(_Form(feminine, FEMININE, masculine, kind))
    return forms


class GenderLexicons:
    """The files under ``assets/gender/``, each read on first use and cached on this instance."""

    def __init__(self, folder: Path) -> None:
        self._folder = Path(folder)
        self._forms: dict[str, FormIndex | None] = {}
        self._tables: dict[str, list[dict[str, str]]] = {}
        self._cues: dict[str, dict[str, Gender]] = {}
        self._neutral: dict[str, dict[str, str]] = {}
        self._agreement: dict[str, list[AgreementRule]] = {}

    def _table(self, name: str, columns: Sequence[str]) -> list[dict[str, str]]:
        if name not in self._tables:
            path = self._folder / name
            self._tables[name] = read_tsv(path, columns) if path.is_file() else []
        return self._tables[name]

    def _rows(self, name: str, lang: str, columns: Sequence[str]) -> list[dict[str, str]]:
        return [row for row in self._table(name, ["lang", *columns]) if row["lang"] == lang]

    def forms(self, lang: str) -> FormIndex | None:
        """Gendered forms of ``lang`` (None when the language has no lexicon)."""
        if lang not in self._forms:
            path = self._folder / f"{lang}.tsv"
            self._forms[lang] = self._read_forms(path, lang) if path.is_file() else None
        return self._forms[lang]

    def _read_forms(self, path: Path, lang: str) -> FormIndex:
        forms = [form for row in read_tsv(path, ["masculine", "feminine", "kind"]) for form in _forms_of_row(path, row)]
        prefixes = [words(row["prefix"])[0] for row in self._rows("clitics.tsv", lang, ["prefix"])]
        log.info("Gender lexicon for %s: %d forms", lang, len(forms))
        return FormIndex(forms, prefixes)

    def cues(self, lang: str) -> dict[str, Gender]:
        """Source words of ``lang`` that state a gender."""
        if lang not in self._cues:
            cues: dict[str, Gender] = {}
            for row in self._rows("cues.tsv", lang, ["word", "gender"]):
                if row["gender"] not in GENDERS:
                    raise GenderLexiconError(f"cues.tsv: unknown gender {row['gender']!r} for {row['word']}")
                cues[words(row["word"])[0]] = row["gender"]  # type: ignore[assignment]  # checked just above
            self._cues[lang] = cues
        return self._cues[lang]

    def neutral(self, lang: str) -> dict[str, str]:
        """Neutral person words of ``lang`` and their kind (first, second, third, noun), pronoun-neutral.tsv's too."""
        if lang not in self._neutral:
            rows = self._rows("neutral.tsv", lang, ["word", "kind"])
            unknown = {row["kind"] for row in rows} - NEUTRAL_KINDS
            if unknown:
                raise GenderLexiconError(f"neutral.tsv: unknown kinds {sorted(unknown)}")
            neutral = {pronoun: "third" for pronoun in self.neutral_pronouns(lang)}
            self._neutral[lang] = neutral | {words(row["word"])[0]: row["kind"] for row in rows}
        return self._neutral[lang]

    def neutral_pronouns(self, lang: str) -> tuple[str, ...]:
        """Third-person pronouns of a language whose pronouns carry no gender (empty for other languages)."""
        rows = self._rows("pronoun_neutral.tsv", lang, ["pronouns"])
        return tuple(w for row in rows for pronoun in _bar_list(row["pronouns"]) for w in words(pronoun)[:1])

    def pronoun_neutral_languages(self) -> tuple[str, ...]:
        return tuple(row["lang"] for row in self._table("pronoun_neutral.tsv", ["lang", "pronouns"]))

    def epicene(self, lang: str) -> frozenset[str]:
        """Person nouns of ``lang`` with one form for both genders (*periodista*): their article shows the gender."""
        return frozenset(words(row["noun"])[0] for row in self._rows("epicene.tsv", lang, ["noun"]))

    def agreement(self, lang: str) -> list[AgreementRule]:
        """Rules of agreement.tsv for ``lang``."""
        if lang not in self._agreement:
            columns = ["after", "masculine", "feminine", "detect", "skip", "except"]
            self._agreement[lang] = [_agreement_rule(row) for row in self._rows("agreement.tsv", lang, columns)]
        return self._agreement[lang]

    def markers(self, lang: str) -> list[dict[str, str]]:
        """Rows of markers.tsv for ``lang``: kind, word, masculine, feminine."""
        return self._rows("markers.tsv", lang, ["kind", "word", "masculine", "feminine"])

    def entry_count(self, lang: str) -> int:
        """Forms, cues, neutral words, epicene nouns and agreement rules of ``lang`` (the coverage table's count)."""
        forms = self.forms(lang)
        tables = len(self.cues(lang)) + len(self.neutral(lang)) + len(self.epicene(lang)) + len(self.agreement(lang))
        return tables + (forms.size if forms is not None else 0)
