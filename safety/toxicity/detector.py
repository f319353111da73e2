"""Toxicity detection on word lists and the added-toxicity report MinTox mitigation needs.

Matching follows ETOX (Costa-jussà et al., 2023, "Toxicity in Multilingual Machine Translation at Scale"): whole
words and phrases of the normalised text (:mod:`safety.toxicity.text`), contiguous tokenizer pieces for unsegmented
scripts; stretched letters (``fuuuuck``) match a list word when the run is long enough. Lists: :mod:`.lists`.

Added toxicity compares counts, as ETOX and MinTox (Tan et al., 2023, "Added Toxicity Mitigation at Inference Time
for Multimodal and Massively Multilingual Translation") do: the source and the translation are in different languages,
so their terms cannot be paired, only counted.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path

from engine.constants import UNSEGMENTED_LANGUAGES
from safety.toxicity.lists import (
    ALLOW_LIST,
    OPEN_END,
    bundled_terms,
    nllb_list_files,
    read_allow_list,
    read_nllb_list,
    read_stem_exceptions,
)
from safety.toxicity.stems import MIN_STEM_LETTERS, Stemmer, trimmed
from safety.toxicity.text import (
    MIN_SPELLED_OUT_LETTERS,
    STEM,
    WILDCARD,
    Token,
    Tokenize,
    aligned_pieces,
    normalised_chars,
    per_character,
    split_words,
    word_tokens,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ToxicityOptions:
    """How the detector finds its word lists and how hard it looks for obfuscation."""

    # Use the bundled lists: glin-profanity's and the npm-derived ones under assets/toxicity (see lists.py).
    bundled_lists: bool = True
    # Folder of NLLB Toxicity-200 lists, None for none. The entry point's settings fill it (PARLEY_TOXICITY_DIR).
    toxicity_dir: Path | None = None
    # Whether those lists are rot13-encoded; None detects it per file.
    rot13: bool | None = None
    # Also match a de-obfuscated view of the text (look-alikes, stretched and spelled-out words).
    deobfuscate: bool = True
    # A run of this many identical letters may stand for a shorter run in a list word ("fuuuck" for "fuck");
    # shorter runs must match exactly, so "cull" never matches "cul".
    min_stretch: int = 3
    # List entries never to flag in any language (false positives in a list), written as in the lists.
    exclude_terms: frozenset[str] = frozenset()
    # Per-language allow-list (lang, term, meaning TSV) of ordinary words the bundled lists hold; None for none.
    allow_list: Path | None = ALLOW_LIST
    # Languages matched on tokenizer pieces rather than words.
    unsegmented_languages: frozenset[str] = UNSEGMENTED_LANGUAGES
    # Also match one-word list entries on their Snowball stems, so other inflected forms count (stems.py).
    stemming: bool = True
    # Where Snowball has no stemmer (and stemming is on), a word may extend a one-word entry of 4+ letters by up to
    # this many letters (Welsh *cach* finds *cachu*); 0 turns that off.
    suffix_letters: int = 2

    def __post_init__(self) -> None:
        if self.toxicity_dir is not None and not Path(self.toxicity_dir).is_dir():
            raise ValueError(f"toxicity_dir {self.toxicity_dir} is not a folder")
        if self.allow_list is not None and not Path(self.allow_list).is_file():
            raise ValueError(f"allow_list {self.allow_list} is not a file")
        if self.suffix_letters < 0:
            raise ValueError(f"suffix_letters must not be negative, got {self.suffix_letters}")
        if self.min_stretch < 2:
            raise ValueError(f"min_stretch must be at least 2, got {self.min_stretch}")
        if not self.bundled_lists and self.toxicity_dir is None:
            raise ValueError("no word lists: bundled_lists is off and no toxicity_dir is set")


# --- matching -----------------------------------------------------------------------------------------------------


def _runs(word: str) -> list[tuple[str, int]]:
    return [(ch, len(list(group))) for ch, group in groupby(word)]


def _skeleton(word: str) -> str:
    return "".join(ch for ch, _ in _runs(word))


@dataclass(frozen=True)
class _Hit:
    first: int  # token index
    last: int  # token index, inclusive
    term: tuple[str, ...]
    stretched: bool


def _stem_matches(token: str, unit: str) -> bool:
    """Whether a token holds an open-ended unit: ``курв`` + STEM is any word starting with ``курв``."""
    core = unit.strip(STEM)
    if unit.startswith(STEM) and unit.endswith(STEM):
        return core in token
    return token.endswith(core) if unit.startswith(STEM) else token.startswith(core)


#: Letters a stem's first unit is indexed by: open-ended units cannot be indexed by their whole skeleton.
STEM_KEY_LETTERS = 2


class _Lexicon:
    """The terms of one language as unit tuples, indexed by the letter skeleton of their first unit.

    Stems (a first unit ending with :data:`STEM`) are indexed by their first letters; units open at the start
    (``*ебал``, any word ending in or holding them) are found in a token by one regular expression of their letters.
    """

    def __init__(self, terms: Iterable[tuple[str, ...]], min_stretch: int) -> None:
        self._min_stretch = min_stretch
        self._index: dict[str, list[tuple[str, ...]]] = {}
        self._stems: dict[str, list[tuple[str, ...]]] = {}
        self._open_start: dict[str, list[tuple[str, ...]]] = {}
        self.size = 0
        for term in dict.fromkeys(terms):  # list order, so a masked word always reports the same term
            first = term[0]
            if first.startswith(STEM):
                self._open_start.setdefault(first.strip(STEM), []).append(term)
            elif first.endswith(STEM):
                self._stems.setdefault(first[:STEM_KEY_LETTERS], []).append(term)
            else:
                self._index.setdefault(_skeleton(first), []).append(term)
            self.size += 1
        # A lookahead finds every core inside a token, overlapping ones too; longest first at each position.
        cores = sorted(self._open_start, key=len, reverse=True)
        self._open_start_re = re.compile(f"(?=({'|'.join(map(re.escape, cores))}))") if cores else None

    def _unit_matches(self, token: str, unit: str) -> bool | None:
        """True on an exact match, False on a stretched or masked one, None on no match."""
        if token == unit:
            return True
        if STEM in unit:
            return True if _stem_matches(token, unit) else None
        if WILDCARD in token:
            masked = len(token) == len(unit) and all(t in (u, WILDCARD) for t, u in zip(token, unit, strict=True))
            return False if masked else None
        token_runs, unit_runs = _runs(token), _runs(unit)
        if len(token_runs) != len(unit_runs):
            return None
        for (tc, tn), (uc, un) in zip(token_runs, unit_runs, strict=True):
            if tc != uc or not (tn == un or tn >= max(un, self._min_stretch)):
                return None
        return False

    def _candidates(self, first_token: str) -> Iterable[tuple[str, ...]]:
        """Terms that may start at a token: those sharing its skeleton, or all of them for a masked token (rare)."""
        if WILDCARD in first_token:
            return (term for terms in self._index.values() for term in terms)
        stems = self._stems.get(first_token[:STEM_KEY_LETTERS], [])
        inside = {m.group(1) for m in self._open_start_re.finditer(first_token)} if self._open_start_re else ()
        return [*self._index.get(_skeleton(first_token), ()), *stems, *(t for c in inside for t in self._open_start[c])]

    def find(self, tokens: Sequence[Token]) -> list[_Hit]:
        hits = []
        for i, token in enumerate(tokens):
            for term in self._candidates(token.text):
                if i + len(term) > len(tokens):
                    continue
                window = tokens[i : i + len(term)]
                results = [self._unit_matches(t.text, u) for t, u in zip(window, term, strict=True)]
                if None not in results:
                    hits.append(_Hit(i, i + len(term) - 1, term, stretched=not all(results)))
        return hits


# --- reports ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ToxicMatch:
    """One list term found in a text."""

    # The list entry, normalised: lower case, words joined by single spaces (pieces of unsegmented scripts without).
    term: str
    start: int  # character offset into the original text
    end: int  # exclusive
    text: str  # the original text of the span, as written
    obfuscated: bool  # found only after undoing look-alikes, stretched, masked or spelled-out letters

    @property
    def span(self) -> tuple[int, int]:
        return self.start, self.end


@dataclass(frozen=True)
class ToxicityReport:
    """Toxic terms found in one text.

    ``covered`` is False when no list exists for the language: no finding then means "not checked", not "clean".
    """

    lang: str
    matches: tuple[ToxicMatch, ...]
    covered: bool

    @property
    def toxic(self) -> bool:
        return bool(self.matches)

    @property
    def count(self) -> int:
        return len(self.matches)

    @property
    def spans(self) -> tuple[tuple[int, int], ...]:
        return tuple(m.span for m in self.matches)


@dataclass(frozen=True)
class AddedToxicityReport:
    """Toxicity in a translation beyond what its source holds (more matches in the target than in the source).

    ``reliable`` is False when either language has no list, so the counts cannot be compared.
    """

    source: ToxicityReport
    target: ToxicityReport

    @property
    def added_count(self) -> int:
        return max(0, self.target.count - self.source.count)

    @property
    def added(self) -> bool:
        return self.added_count > 0

    @property
    def reliable(self) -> bool:
        return self.source.covered and self.target.covered

    @property
    def words_to_ban(self) -> tuple[str, ...]:
        """Target words to ban in a MinTox re-decode: every matched term and its surface form, deduplicated."""
        words = dict.fromkeys(w for m in self.target.matches for w in (m.term, m.text.strip()))
        return tuple(words)


# --- the detector -------------------------------------------------------------------------------------------------


class ToxicityDetector:
    """Finds list terms in text. Lists are read on first use of a language and cached on this instance.

    ``tokenize`` should be the translation model's own tokenizer (text -> pieces), used for unsegmented scripts as
    ETOX does; without it every character is a piece, which amounts to substring matching.
    """

    def __init__(self, options: ToxicityOptions | None = None, tokenize: Tokenize | None = None) -> None:
        self.options = options if options is not None else ToxicityOptions()
        self._tokenize = tokenize or per_character
        self._lexicons: dict[str, _Lexicon] = {}
        self._stemmed: dict[str, _Lexicon] = {}
        self._stemmers: dict[str, Stemmer] = {}
        # Every stream's thread shares this detector: a language's lists are built once, and only whole.
        self._loading = threading.Lock()
        self._nllb_files: dict[str, list[Path]] | None = None
        allow_list = self.options.allow_list
        self._allowed = read_allow_list(Path(allow_list)) if allow_list is not None else {}
        self._stem_exceptions = read_stem_exceptions() if self.options.stemming else {}

    def _list_entries(self, lang: str) -> list[str]:
        entries = bundled_terms(lang) if self.options.bundled_lists else []
        if self.options.toxicity_dir is not None:
            if self._nllb_files is None:
                self._nllb_files = nllb_list_files(Path(self.options.toxicity_dir))
            for path in self._nllb_files.get(lang, []):
                entries.extend(read_nllb_list(path, self.options.rot13))
        return entries

    def _units(self, text: str, lang: str) -> tuple[str, ...]:
        """A list entry or an excluded term as the units the text is matched on.

        An entry open at an end (``курв*``) becomes units marked with :data:`STEM` there; in unsegmented
        scripts, matched on pieces anyway, the open ends are dropped.
        """
        open_start, open_end = text.startswith(OPEN_END), text.endswith(OPEN_END)
        text = text.strip(OPEN_END)
        if lang in self.options.unsegmented_languages:
            return tuple(t.text for t in aligned_pieces(normalised_chars(text, False), self._tokenize))
        words = [t.text for t in split_words(normalised_chars(text, self.options.deobfuscate))]
        letters = "".join(words)
        if WILDCARD in letters or not any(ch.isalpha() for ch in letters):
            return ()  # masked entries ("f*ck") are covered by wildcards; "31", "18+" would flag numbers
        if len(words) >= MIN_SPELLED_OUT_LETTERS and all(len(w) == 1 for w in words):
            return ()  # spelled-out entries ("s_h_i_t") are covered by the de-obfuscated view, as obfuscated
        if open_start:
            words[0] = STEM + words[0]
        if open_end:
            words[-1] += STEM
        return tuple(words)

    def _lexicon(self, lang: str) -> _Lexicon:
        if lang in self._lexicons:
            return self._lexicons[lang]
        with self._loading:
            if lang not in self._lexicons:
                never = self.options.exclude_terms | self._allowed.get(lang, frozenset())
                excluded = {self._units(term, lang) for term in never}
                units = [u for u in (self._units(entry, lang) for entry in self._list_entries(lang)) if u]
                terms = [u for u in units if u not in excluded]
                lexicon = _Lexicon(terms, self.options.min_stretch)
                log.info("Toxicity list for %s: %d terms", lang, lexicon.size)
                stemmer = self._stemmer(lang)
                if stemmer is not None:
                    self._stemmed[lang] = self._stem_lexicon(terms, excluded, stemmer)
                elif self._trims(lang):
                    self._stemmed[lang] = self._trim_lexicon(terms, excluded)
                self._lexicons[lang] = lexicon  # last: a reader that finds it finds its stems too
        return self._lexicons[lang]

    def _stemmer(self, lang: str) -> Stemmer | None:
        if not self.options.stemming or lang in self.options.unsegmented_languages or not Stemmer.covers(lang):
            return None
        if lang not in self._stemmers:
            self._stemmers[lang] = Stemmer(lang)
        return self._stemmers[lang]

    def _stem_lexicon(
        self, terms: Sequence[tuple[str, ...]], excluded: set[tuple[str, ...]], stemmer: Stemmer
    ) -> _Lexicon:
        """The one-word terms as stems, less the stems of allow-listed words (which would come back inflected) and
        the stems that are ordinary words (``stem_exceptions.tsv``: *fingering* is listed, *finger* is not)."""
        never = {stemmer.stem_of(term[0]) for term in excluded if len(term) == 1}
        never |= self._stem_exceptions.get(stemmer.lang, frozenset())
        stems = (stemmer.stem_of(term[0]) for term in terms if len(term) == 1 and STEM not in term[0])
        return _Lexicon(((s,) for s in stems if s is not None and s not in never), self.options.min_stretch)

    def _trims(self, lang: str) -> bool:
        """Whether ``lang`` is matched with :func:`trimmed` words: segmented, and no Snowball stemmer for it."""
        options = self.options
        segmented = lang not in options.unsegmented_languages
        return options.stemming and options.suffix_letters > 0 and segmented and not Stemmer.covers(lang)

    def _trim_lexicon(self, terms: Sequence[tuple[str, ...]], excluded: set[tuple[str, ...]]) -> _Lexicon:
        """The one-word terms long enough to be matched by a trimmed word, less any that an allow-listed word
        trims to (an ordinary word must not come back through its own ending)."""
        letters = range(1, self.options.suffix_letters + 1)
        never = {trimmed(term[0], k) for term in excluded if len(term) == 1 for k in letters}
        words = (t for t in terms if len(t) == 1 and STEM not in t[0] and len(t[0]) >= MIN_STEM_LETTERS)
        return _Lexicon((t for t in words if t[0] not in never), self.options.min_stretch)

    def prepare(self, langs: Iterable[str]) -> None:
        """Build the lists of ``langs`` now. Why: a language's lists are otherwise built by its first request, which
        then waits for it (0.4 s on an idle core, 2.4 s measured on 2 cores serving three live streams)."""
        for lang in langs:
            self._lexicon(lang)

    def term_count(self, lang: str) -> int:
        """How many distinct terms the detector matches for ``lang`` (after the allow-list); 0: not covered."""
        return self._lexicon(lang).size

    def _views(self, text: str, lang: str) -> list[tuple[_Lexicon, list[Token], bool]]:
        """Token lists to match, each with the lexicon to match and whether a hit in it counts as obfuscated."""
        lexicon = self._lexicon(lang)
        if lang in self.options.unsegmented_languages:
            return [(lexicon, aligned_pieces(normalised_chars(text, False), self._tokenize), False)]
        plain = word_tokens(text)
        views = [(lexicon, plain, False)]
        if self.options.deobfuscate:
            views.append((lexicon, word_tokens(text, deobfuscate=True), True))
        stemmer = self._stemmer(lang)
        if stemmer is not None:
            stemmed = [Token(stemmer.stem(t.text), t.start, t.end) for t in plain]
            views.append((self._stemmed[lang], stemmed, False))
        elif self._trims(lang):
            for k in range(1, self.options.suffix_letters + 1):
                views.append((self._stemmed[lang], [Token(trimmed(t.text, k), t.start, t.end) for t in plain], False))
        return views

    def detect(self, text: str, lang: str) -> ToxicityReport:
        """Toxic terms in ``text`` (SeamlessM4T code ``lang``); nested matches are reported once, as the longest."""
        found: dict[tuple[int, int], ToxicMatch] = {}
        joiner = "" if lang in self.options.unsegmented_languages else " "
        for lexicon, tokens, deobfuscated in self._views(text, lang):
            for hit in lexicon.find(tokens):
                start, end = tokens[hit.first].start, tokens[hit.last].end
                if (start, end) not in found:
                    obfuscated = deobfuscated or hit.stretched
                    term = joiner.join(hit.term).replace(STEM, "")
                    found[start, end] = ToxicMatch(term, start, end, text[start:end], obfuscated)
        kept: list[ToxicMatch] = []
        for match in sorted(found.values(), key=lambda m: (m.start, m.start - m.end)):
            if not any(k.start <= match.start and match.end <= k.end for k in kept):
                kept.append(match)
        return ToxicityReport(lang, tuple(kept), covered=self._lexicon(lang).size > 0)

    def added_toxicity(self, source_text: str, src_lang: str, target_text: str, tgt_lang: str) -> AddedToxicityReport:
        """Compare the toxicity of a translation with that of its source (for speech, the model's own transcript)."""
        return AddedToxicityReport(self.detect(source_text, src_lang), self.detect(target_text, tgt_lang))
