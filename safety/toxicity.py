"""Toxicity detection on word lists, added-toxicity reports and the helpers MinTox mitigation needs.

Matching follows ETOX (Costa-jussà et al., 2023, "Toxicity in Multilingual Machine Translation at Scale"): lowercase,
punctuation to spaces, then whole-word / whole-phrase matches for space-delimited scripts and contiguous token
sequences of the model's own tokenizer for unsegmented scripts (Chinese, Japanese, Thai, ...). On top of ETOX a
second, de-obfuscated view of the text catches look-alike characters (``@ss``, ``fuсk`` with a Cyrillic ``с``),
stretched letters (``fuuuuck``), masked letters (``f*ck``) and spelled-out words (``f.u.c.k``), so a speaker typing
around a filter is not mistaken for toxicity the translation added.

Word lists come from two places, loaded lazily per language and cached per detector:

* the lists bundled with the ``glin-profanity`` package (about 25 languages), read through the installed package;
* NLLB Toxicity-200 lists from a folder the user points to (``PARLEY_TOXICITY_DIR`` or ``ToxicityOptions``): one
  word or phrase per line, one file per language (``eng_Latn_twl.txt``, ``spa.txt``), optionally rot13-encoded.

Added toxicity compares counts, as ETOX and MinTox (Tan et al., 2023, "Added Toxicity Mitigation at Inference Time
for Multimodal and Massively Multilingual Translation") do: the source and the translation are in different languages,
so their terms cannot be paired, only counted.
"""

from __future__ import annotations

import codecs
import logging
import os
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import groupby
from pathlib import Path

log = logging.getLogger(__name__)

#: A tokenizer for unsegmented scripts: text in, pieces out (SentencePiece's ``▁`` marks are ignored).
Tokenize = Callable[[str], list[str]]

TOXICITY_DIR_ENV = "PARLEY_TOXICITY_DIR"

#: Scripts written without spaces between words; ETOX matches these on tokenizer pieces instead of words.
UNSEGMENTED_LANGUAGES = frozenset({"cmn", "cmn_Hant", "yue", "jpn", "tha", "khm", "lao", "mya"})

#: glin-profanity's list names (its ``DictionaryLoader.LANGUAGE_FILES`` keys) to SeamlessM4T codes. Esperanto has
#: no SeamlessM4T code and is left out.
GLIN_LANGUAGES = {
    "arabic": "arb",
    "chinese": "cmn",
    "czech": "ces",
    "danish": "dan",
    "dutch": "nld",
    "english": "eng",
    "finnish": "fin",
    "french": "fra",
    "german": "deu",
    "hindi": "hin",
    "hungarian": "hun",
    "italian": "ita",
    "japanese": "jpn",
    "korean": "kor",
    "norwegian": "nob",
    "persian": "pes",
    "polish": "pol",
    "portuguese": "por",
    "russian": "rus",
    "spanish": "spa",
    "swedish": "swe",
    "thai": "tha",
    "turkish": "tur",
}
#: glin-profanity keeps one Chinese list; the traditional-script and Cantonese outputs use it too.
GLIN_EXTRA_CODES = {"cmn_Hant": "chinese", "yue": "chinese"}

#: File-name codes that are not SeamlessM4T codes: NLLB/ISO 639-3 macrolanguages and common ISO 639-1 codes.
CODE_ALIASES = {
    "zho": "cmn", "ara": "arb", "fas": "pes", "per": "pes", "msa": "zsm", "nor": "nob",
    "ar": "arb", "bn": "ben", "cs": "ces", "da": "dan", "de": "deu", "el": "ell", "en": "eng", "es": "spa",
    "et": "est", "fa": "pes", "fi": "fin", "fr": "fra", "he": "heb", "hi": "hin", "hu": "hun", "id": "ind",
    "it": "ita", "ja": "jpn", "km": "khm", "ko": "kor", "lo": "lao", "ms": "zsm", "my": "mya", "nb": "nob",
    "nl": "nld", "no": "nob", "pl": "pol", "pt": "por", "ro": "ron", "ru": "rus", "sv": "swe", "th": "tha",
    "tr": "tur", "uk": "ukr", "ur": "urd", "vi": "vie", "zh": "cmn",
}  # fmt: skip
NLLB_LIST_SUFFIX = "_twl"

#: Characters people put in place of letters. Applied only inside a word that also holds a real letter, so numbers
#: and prices are never rewritten.
LEET = {"@": "a", "4": "a", "8": "b", "3": "e", "€": "e", "1": "i", "!": "i", "¡": "i", "|": "l", "0": "o",
        "$": "s", "5": "s", "7": "t"}  # fmt: skip
LEET_INTERIOR_ONLY = frozenset("!¡|1")
#: Characters that hide one letter ("sh*t"); between two letter-like characters they match any single letter.
MASKS = frozenset("*#")
#: What a hiding character becomes in the de-obfuscated view: a private-use character no text holds.
WILDCARD = "\ue000"
#: Cyrillic and Greek letters that look like Latin ones. Applied only to words that mix them with Latin letters, so
#: Russian or Greek text is left alone.
HOMOGLYPHS = {"а": "a", "в": "b", "с": "c", "е": "e", "н": "h", "і": "i", "ј": "j", "к": "k", "м": "m", "о": "o",
              "р": "p", "ѕ": "s", "т": "t", "у": "y", "х": "x", "α": "a", "ε": "e", "ι": "i", "κ": "k", "ο": "o",
              "ρ": "p", "τ": "t", "υ": "u", "χ": "x"}  # fmt: skip
#: Arabic short-vowel marks and the tatweel: optional in writing, so dropped before matching.
ARABIC_OPTIONAL = frozenset(chr(c) for c in [*range(0x064B, 0x0653), 0x0670, 0x0640])
SPM_SPACE = "▁"
#: Single letters in a row that are read as one spelled-out word ("f u c k"); two ("a b") are left alone.
MIN_SPELLED_OUT_LETTERS = 3


class ToxicityListError(ValueError):
    """A word list that cannot be read or decoded."""


def _env_toxicity_dir() -> Path | None:
    value = os.environ.get(TOXICITY_DIR_ENV, "").strip()
    return Path(value) if value else None


@dataclass(frozen=True)
class ToxicityOptions:
    """How the detector finds its word lists and how hard it looks for obfuscation."""

    # Use the lists bundled with the glin-profanity package.
    bundled_lists: bool = True
    # Folder of NLLB Toxicity-200 lists; defaults to $PARLEY_TOXICITY_DIR, None for none.
    toxicity_dir: Path | None = field(default_factory=_env_toxicity_dir)
    # Whether those lists are rot13-encoded; None detects it per file.
    rot13: bool | None = None
    # Also match a de-obfuscated view of the text (look-alikes, stretched and spelled-out words).
    deobfuscate: bool = True
    # A run of this many identical letters may stand for a shorter run in a list word ("fuuuck" for "fuck");
    # shorter runs must match exactly, so "cull" never matches "cul".
    min_stretch: int = 3
    # List entries never to flag (false positives in a list), written as they appear in the lists.
    exclude_terms: frozenset[str] = frozenset()
    # Languages matched on tokenizer pieces rather than words.
    unsegmented_languages: frozenset[str] = UNSEGMENTED_LANGUAGES

    def __post_init__(self) -> None:
        if self.toxicity_dir is not None and not Path(self.toxicity_dir).is_dir():
            raise ValueError(f"toxicity_dir {self.toxicity_dir} is not a folder")
        if self.min_stretch < 2:
            raise ValueError(f"min_stretch must be at least 2, got {self.min_stretch}")
        if not self.bundled_lists and self.toxicity_dir is None:
            raise ValueError("no word lists: bundled_lists is off and no toxicity_dir is set")


# --- language codes and list files ------------------------------------------------------------------------------


def seamless_code(name: str) -> str:
    """SeamlessM4T code for a list name: ``eng_Latn_twl`` -> ``eng``, ``zho_Hant`` -> ``cmn_Hant``, ``es`` -> ``spa``.

    Unknown codes come back as given (lower-cased): a list for a language the model cannot produce never matches.
    """
    parts = name.lower().removesuffix(NLLB_LIST_SUFFIX).split("_")
    code = CODE_ALIASES.get(parts[0], parts[0])
    script = parts[1] if len(parts) > 1 else ""
    return f"{code}_Hant" if code == "cmn" and script == "hant" else code


def rot13(text: str) -> str:
    return codecs.encode(text, "rot13")


def looks_rot13(lines: Sequence[str]) -> bool:
    """Guess whether Latin-script lines are rot13-encoded.

    Vowels are about 40 % of the letters of words in Latin-script languages; rot13 turns them into n, r, v, b, h
    (about 20 %). Whichever reading has more vowels is the plain one. Lines without Latin letters give False.
    """
    text = "".join(lines).lower()
    plain_vowels = sum(text.count(v) for v in "aeiou")
    decoded_vowels = sum(rot13(text).count(v) for v in "aeiou")
    return decoded_vowels > plain_vowels


def read_nllb_list(path: Path, rot13_encoded: bool | None = None) -> list[str]:
    """Entries of one NLLB Toxicity-200 list file: one word or phrase per line, blank lines and ``#`` comments skipped.

    ``rot13_encoded=None`` guesses the encoding with :func:`looks_rot13`.
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise ToxicityListError(f"cannot read toxicity list {path}: {e}") from e
    entries = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if rot13_encoded is None:
        rot13_encoded = looks_rot13(entries)
    return [rot13(entry) for entry in entries] if rot13_encoded else entries


def nllb_list_files(folder: Path) -> dict[str, list[Path]]:
    """The ``*.txt`` list files of a folder, grouped by SeamlessM4T code."""
    files: dict[str, list[Path]] = {}
    for path in sorted(folder.glob("*.txt")):
        files.setdefault(seamless_code(path.stem), []).append(path)
    return files


def bundled_terms(lang: str) -> list[str]:
    """The glin-profanity list for a SeamlessM4T code (empty when the package has none)."""
    from glin_profanity.data.dictionary import DictionaryLoader

    names = {code: name for name, code in GLIN_LANGUAGES.items()} | GLIN_EXTRA_CODES
    name = names.get(lang)
    return DictionaryLoader().get_words(name) if name else []


# --- text normalisation -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Token:
    """A word or tokenizer piece of normalised text, with its character span in the original text."""

    text: str
    start: int
    end: int


# One normalised character and the span of original characters it came from.
_Char = tuple[str, int, int]


def _clusters(text: str) -> Iterable[tuple[int, int]]:
    """Spans of base characters with their combining marks, so NFKC can compose them without losing offsets."""
    start = 0
    for i in range(1, len(text) + 1):
        if i == len(text) or not unicodedata.combining(text[i]):
            yield start, i
            start = i


def _is_separator(ch: str) -> bool:
    return ch != WILDCARD and (ch.isspace() or unicodedata.category(ch)[0] in "PSZC")


def _deobfuscate_word(word: list[_Char]) -> list[_Char]:
    """Undo leetspeak and look-alike letters inside one whitespace-delimited word.

    Characters that also end sentences ("!", "1", "|") count as letters only between two letter-like characters,
    so "bitch!" stays "bitch" while "b!tch" becomes "bitch"; so do the masks of "sh*t", which become wildcards.
    """
    chars = [ch for ch, _, _ in word]
    if not any(ch.isalpha() for ch in chars):
        return word
    latin = any("a" <= ch <= "z" for ch in chars)

    def letter_like(k: int) -> bool:
        return 0 <= k < len(chars) and (chars[k].isalnum() or chars[k] in LEET or chars[k] in MASKS)

    mapped = []
    for k, (ch, start, end) in enumerate(word):
        interior = letter_like(k - 1) and letter_like(k + 1)
        if latin and ch in HOMOGLYPHS:
            ch = HOMOGLYPHS[ch]
        elif ch in MASKS and interior:
            ch = WILDCARD
        elif ch in LEET and (ch not in LEET_INTERIOR_ONLY or interior):
            ch = LEET[ch]
        mapped.append((ch, start, end))
    return mapped


def _normalised_chars(text: str, deobfuscate: bool) -> list[_Char]:
    """NFKC, lower case, Arabic optional marks dropped, separators to spaces; each char keeps its original span."""
    chars: list[_Char] = []
    for start, end in _clusters(text):
        for ch in unicodedata.normalize("NFKC", text[start:end]).lower():
            if ch not in ARABIC_OPTIONAL:
                chars.append((" " if ch.isspace() else ch, start, end))
    if deobfuscate:
        words = [list(group) for _, group in groupby(chars, key=lambda c: c[0] == " ")]
        chars = [c for word in words for c in _deobfuscate_word(word)]
    return [(" " if _is_separator(ch) else ch, start, end) for ch, start, end in chars]


def _split_words(chars: list[_Char]) -> list[Token]:
    tokens = []
    for is_space, group in groupby(chars, key=lambda c: c[0] == " "):
        if not is_space:
            word = list(group)
            tokens.append(Token("".join(c[0] for c in word), word[0][1], word[-1][2]))
    return tokens


def _join_spelled_out(tokens: list[Token]) -> list[Token]:
    """Merge runs of single letters ("f u c k", "f.u.c.k") into one word."""
    merged: list[Token] = []
    for single, group in groupby(tokens, key=lambda t: len(t.text) == 1 and t.text.isalpha()):
        run = list(group)
        if single and len(run) >= MIN_SPELLED_OUT_LETTERS:
            merged.append(Token("".join(t.text for t in run), run[0].start, run[-1].end))
        else:
            merged.extend(run)
    return merged


def _aligned_pieces(chars: list[_Char], tokenize: Tokenize) -> list[Token]:
    """Tokenizer pieces of the normalised text, located in it to recover their original spans.

    A piece the tokenizer rewrote (so it cannot be found) is kept with an empty span at the cursor: matching still
    works, only the reported span is shorter.
    """
    normalised = "".join(c[0] for c in chars)
    tokens, cursor = [], 0
    for piece in tokenize(normalised):
        piece = piece.replace(SPM_SPACE, " ").strip()
        if not piece:
            continue
        at = normalised.find(piece, cursor)
        if at < 0:
            origin = chars[min(cursor, len(chars) - 1)][1] if chars else 0
            tokens.append(Token(piece, origin, origin))
            continue
        tokens.append(Token(piece, chars[at][1], chars[at + len(piece) - 1][2]))
        cursor = at + len(piece)
    return tokens


def per_character(text: str) -> list[str]:
    """Fallback tokenizer for unsegmented scripts: every non-space character is a piece."""
    return [ch for ch in text if not ch.isspace()]


def word_tokens(text: str, *, deobfuscate: bool = False) -> list[Token]:
    """ETOX words of a space-delimited text: lower-cased, punctuation as spaces, with original character spans."""
    tokens = _split_words(_normalised_chars(text, deobfuscate))
    return _join_spelled_out(tokens) if deobfuscate else tokens


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


class _Lexicon:
    """The terms of one language as unit tuples, indexed by the letter skeleton of their first unit."""

    def __init__(self, terms: Iterable[tuple[str, ...]], min_stretch: int) -> None:
        self._min_stretch = min_stretch
        self._index: dict[str, list[tuple[str, ...]]] = {}
        self.size = 0
        for term in dict.fromkeys(terms):  # list order, so a masked word always reports the same term
            self._index.setdefault(_skeleton(term[0]), []).append(term)
            self.size += 1

    def _unit_matches(self, token: str, unit: str) -> bool | None:
        """True on an exact match, False on a stretched or masked one, None on no match."""
        if token == unit:
            return True
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
        return self._index.get(_skeleton(first_token), ())

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
        self._nllb_files: dict[str, list[Path]] | None = None

    def _list_entries(self, lang: str) -> list[str]:
        entries = bundled_terms(lang) if self.options.bundled_lists else []
        if self.options.toxicity_dir is not None:
            if self._nllb_files is None:
                self._nllb_files = nllb_list_files(Path(self.options.toxicity_dir))
            for path in self._nllb_files.get(lang, []):
                entries.extend(read_nllb_list(path, self.options.rot13))
        return entries

    def _units(self, text: str, lang: str) -> tuple[str, ...]:
        """A list entry or an excluded term as the units the text is matched on."""
        if lang in self.options.unsegmented_languages:
            return tuple(t.text for t in _aligned_pieces(_normalised_chars(text, False), self._tokenize))
        words = tuple(t.text for t in _split_words(_normalised_chars(text, self.options.deobfuscate)))
        letters = "".join(words)
        if WILDCARD in letters or not any(ch.isalpha() for ch in letters):
            return ()  # masked entries ("f*ck") are covered by wildcards; "31", "18+" would flag numbers
        return words

    def _lexicon(self, lang: str) -> _Lexicon:
        if lang not in self._lexicons:
            excluded = {self._units(term, lang) for term in self.options.exclude_terms}
            units = (self._units(entry, lang) for entry in self._list_entries(lang))
            lexicon = _Lexicon((u for u in units if u and u not in excluded), self.options.min_stretch)
            log.info("Toxicity list for %s: %d terms", lang, lexicon.size)
            self._lexicons[lang] = lexicon
        return self._lexicons[lang]

    def _views(self, text: str, lang: str) -> list[tuple[list[Token], bool]]:
        """Token lists to match, each with whether a hit in it counts as obfuscated."""
        if lang in self.options.unsegmented_languages:
            return [(_aligned_pieces(_normalised_chars(text, False), self._tokenize), False)]
        views = [(word_tokens(text), False)]
        if self.options.deobfuscate:
            views.append((word_tokens(text, deobfuscate=True), True))
        return views

    def detect(self, text: str, lang: str) -> ToxicityReport:
        """Toxic terms in ``text`` (SeamlessM4T code ``lang``); nested matches are reported once, as the longest."""
        lexicon = self._lexicon(lang)
        found: dict[tuple[int, int], ToxicMatch] = {}
        joiner = "" if lang in self.options.unsegmented_languages else " "
        for tokens, deobfuscated in self._views(text, lang):
            for hit in lexicon.find(tokens):
                start, end = tokens[hit.first].start, tokens[hit.last].end
                if (start, end) not in found:
                    obfuscated = deobfuscated or hit.stretched
                    term = joiner.join(hit.term)
                    found[start, end] = ToxicMatch(term, start, end, text[start:end], obfuscated)
        kept: list[ToxicMatch] = []
        for match in sorted(found.values(), key=lambda m: (m.start, m.start - m.end)):
            if not any(k.start <= match.start and match.end <= k.end for k in kept):
                kept.append(match)
        return ToxicityReport(lang, tuple(kept), covered=lexicon.size > 0)

    def added_toxicity(self, source_text: str, src_lang: str, target_text: str, tgt_lang: str) -> AddedToxicityReport:
        """Compare the toxicity of a translation with that of its source (for speech, the model's own transcript)."""
        return AddedToxicityReport(self.detect(source_text, src_lang), self.detect(target_text, tgt_lang))
