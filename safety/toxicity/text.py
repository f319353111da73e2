"""ETOX text normalisation: words (or model-tokenizer pieces) with their character spans in the original text.

ETOX (Costa-jussà et al., 2023, "Toxicity in Multilingual Machine Translation at Scale") lowercases, turns
punctuation into spaces, and matches whole words; unsegmented scripts are matched on the model's own tokenizer
pieces. On top of that, a de-obfuscated view of a word undoes look-alike characters (``@ss``, ``fuсk`` with a
Cyrillic ``с``), masked letters (``f*ck``) and spelled-out words (``f.u.c.k``), so a speaker typing around a filter
is not mistaken for toxicity the translation added. The gender stage uses the same words (:func:`word_tokens`).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import groupby

#: A tokenizer for unsegmented scripts: text in, pieces out (SentencePiece's ``▁`` marks are ignored).
Tokenize = Callable[[str], list[str]]

#: Characters people put in place of letters. Applied only inside a word that also holds a real letter, so numbers
#: and prices are never rewritten.
LEET = {"@": "a", "4": "a", "8": "b", "3": "e", "€": "e", "1": "i", "!": "i", "¡": "i", "|": "l", "0": "o",
        "$": "s", "5": "s", "7": "t"}  # fmt: skip
LEET_INTERIOR_ONLY = frozenset("!¡|1")
#: Characters that hide one letter ("sh*t"); between two letter-like characters they match any single letter.
MASKS = frozenset("*#")
#: What a hiding character becomes in the de-obfuscated view: a private-use character no text holds.
WILDCARD = "\ue000"
#: Marks the open end of a list stem (``курв*`` in a list): any letters may follow (or precede) it there.
STEM = "\ue001"
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


# --- -------------------------------------------------------------------------------------------


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


def normalised_chars(text: str, deobfuscate: bool) -> list[_Char]:
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


def split_words(chars: list[_Char]) -> list[Token]:
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


def aligned_pieces(chars: list[_Char], tokenize: Tokenize) -> list[Token]:
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
    tokens = split_words(normalised_chars(text, deobfuscate))
    return _join_spelled_out(tokens) if deobfuscate else tokens
