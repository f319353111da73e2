"""The source side of the gender check: does a source state a gender, and how to state one for a re-translation."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from safety.gender.lexicons import GenderLexicons
from safety.toxicity import Token, word_tokens

ENGLISH = "eng"
MARKER_NOUN = "noun"
MARKER_PRONOUN = "pronoun"
#: English contractions after a pronoun that a marker template replaces: "I'm" -> "I, a woman, am".
ENGLISH_CONTRACTIONS = {"m": "am", "re": "are", "ve": "have", "ll": "will", "d": "would"}
_CONTRACTION = re.compile(r"^['’](m|re|ve|ll|d)\b", re.IGNORECASE)


def match_case(template: str, model: str) -> str:
    """``template`` in the case pattern of ``model``: ``ÄRZTIN``, ``Ärztin`` or as written."""
    if len(model) > 1 and model.isupper():
        return template.upper()
    if model[:1].isupper():
        return template[:1].upper() + template[1:]
    return template


def replace(text: str, edits: Iterable[tuple[int, int, str]]) -> str:
    """``text`` with non-overlapping (start, end, new) edits applied."""
    for start, end, new in sorted(edits, reverse=True):
        text = text[:start] + new + text[end:]
    return text


def marked_source(lexicons: GenderLexicons, source_text: str, src_lang: str, gender: str) -> str | None:
    """The source with ``gender`` stated, for the model to re-translate; None when it cannot be marked.

    A person noun gets a marker in front (*I am a doctor* -> *I am a female doctor*), which reads naturally and
    translates to the gendered noun. Without one, a pronoun becomes a short apposition (*I'm tired* -> *I, a
    woman, am tired*): less natural, so the pipeline may prefer a swap there.
    """
    tokens = word_tokens(source_text)
    neutral = lexicons.neutral(src_lang)
    markers = lexicons.markers(src_lang)
    for row in (r for r in markers if r["kind"] == MARKER_NOUN):
        for i, token in enumerate(tokens):
            if neutral.get(token.text) == MARKER_NOUN:
                return _insert_marker(source_text, src_lang, tokens, i, row[gender])
    for row in (r for r in markers if r["kind"] == MARKER_PRONOUN):
        for token in tokens:
            if token.text == row["word"]:
                return _replace_pronoun(source_text, src_lang, token, row[gender])
    return None


def _insert_marker(text: str, lang: str, tokens: Sequence[Token], i: int, marker: str) -> str:
    token = tokens[i]
    edits = [(token.start, token.start, marker + " ")]
    before = tokens[i - 1] if i > 0 else None
    if lang == ENGLISH and before is not None and before.text == "an" and marker[:1] not in "aeiou":
        edits.append((before.start, before.end, match_case("a", text[before.start : before.end])))
    return replace(text, edits)


def _replace_pronoun(text: str, lang: str, token: Token, template: str) -> str:
    new, end = match_case(template, text[token.start : token.end]), token.end
    contraction = _CONTRACTION.match(text[end:]) if lang == ENGLISH else None
    if contraction:
        new, end = f"{new} {ENGLISH_CONTRACTIONS[contraction.group(1).lower()]}", end + contraction.end()
    return replace(text, [(token.start, end, new)])
