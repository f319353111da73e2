"""SeamlessM4T v2 languages: codes, names and what each one supports.

The table lives in ``assets/languages.tsv`` (data, not code) so that the UI, the CLI and the engine all agree on one
list. Codes are the model's own three-letter codes (``eng``, ``cmn_Hant``); lookups also accept English and native
names, any case, and the ``__eng__`` token form, because that is what people type.
"""

from __future__ import annotations

import csv
import difflib
from dataclasses import dataclass
from enum import Enum
from functools import lru_cache
from pathlib import Path

from engine.constants import UNSEGMENTED_LANGUAGES

LANGUAGES_TSV = Path(__file__).resolve().parent.parent / "assets" / "languages.tsv"


class Capability(str, Enum):
    """What a language must support for a given use."""

    SPEECH_INPUT = "speech input"
    TEXT = "text"
    SPEECH_OUTPUT = "speech output"


@dataclass(frozen=True)
class Language:
    code: str
    script: str
    english_name: str
    native_name: str
    speech_input: bool
    text: bool
    speech_output: bool

    @property
    def unsegmented(self) -> bool:
        """True for languages written without spaces between words (Chinese, Japanese, Thai, …)."""
        return self.code in UNSEGMENTED_LANGUAGES

    def supports(self, capability: Capability) -> bool:
        return {
            Capability.SPEECH_INPUT: self.speech_input,
            Capability.TEXT: self.text,
            Capability.SPEECH_OUTPUT: self.speech_output,
        }[capability]

    @property
    def label(self) -> str:
        """Human label for menus: English name, native name when it differs, and the code."""
        if self.native_name and self.native_name != self.english_name:
            return f"{self.english_name} — {self.native_name} ({self.code})"
        return f"{self.english_name} ({self.code})"


class UnknownLanguageError(ValueError):
    """A language code or name that the model does not know, or that lacks the capability asked for."""


@lru_cache(maxsize=1)
def all_languages() -> tuple[Language, ...]:
    """Every SeamlessM4T v2 language, in table order (read once, then cached)."""
    with LANGUAGES_TSV.open(encoding="utf-8") as f:
        rows = csv.DictReader((line for line in f if not line.startswith("#")), delimiter="\t")
        return tuple(
            Language(
                code=row["code"],
                script=row["script"],
                english_name=row["english"],
                native_name=row["native"],
                speech_input=row["speech_in"] == "1",
                text=row["text"] == "1",
                speech_output=row["speech_out"] == "1",
            )
            for row in rows
        )


def languages_with(capability: Capability) -> list[Language]:
    return [lang for lang in all_languages() if lang.supports(capability)]


@lru_cache(maxsize=1)
def _index() -> dict[str, Language]:
    index: dict[str, Language] = {}
    for lang in all_languages():
        for key in (lang.code, lang.english_name, lang.native_name, lang.label):
            index.setdefault(key.casefold(), lang)
    return index


def _normalise(query: str) -> str:
    return query.strip().strip("_").casefold()


def nearest_codes(query: str, limit: int = 3, capability: Capability | None = None) -> list[str]:
    """Codes whose code or names are closest to ``query`` (for "did you mean" messages)."""
    candidates = [lang for lang in all_languages() if capability is None or lang.supports(capability)]
    keys = {}
    for lang in candidates:
        for key in (lang.code, lang.english_name.casefold(), lang.native_name.casefold()):
            keys.setdefault(key, lang.code)
    close = difflib.get_close_matches(_normalise(query), list(keys), n=limit * 3, cutoff=0.4)
    codes: list[str] = []
    for key in close:
        if keys[key] not in codes:
            codes.append(keys[key])
    if not codes:  # fall back to a prefix match so "zz" still gets a useful hint
        codes = [lang.code for lang in candidates if lang.code[:1] == _normalise(query)[:1]]
    return codes[:limit]


def get_language(query: str, capability: Capability | None = None) -> Language:
    """Resolve a code or a name to a :class:`Language`, optionally requiring a capability.

    Raises :class:`UnknownLanguageError` with a message that names the nearest valid choices.
    """
    lang = _index().get(_normalise(query))
    if lang is None:
        hint = ", ".join(nearest_codes(query, capability=capability))
        raise UnknownLanguageError(f"Unknown language '{query}'." + (f" Did you mean: {hint}?" if hint else ""))
    if capability is not None and not lang.supports(capability):
        fallback = ""
        if capability is Capability.SPEECH_OUTPUT and lang.text:
            fallback = " It can still be translated to text."
        elif capability is Capability.TEXT and lang.speech_input:
            fallback = " It can be used as spoken input."
        raise UnknownLanguageError(
            f"{lang.english_name} ({lang.code}) is not supported for {capability.value}.{fallback}"
        )
    return lang
