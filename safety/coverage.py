"""Which languages the safety stages cover: toxicity terms, gender lexicon entries, pronoun-neutral or not.

``python -m safety coverage`` prints the table for the 36 speech-output languages, then for the other languages
whose pronouns carry no gender (sources the gender check knows). A language with no toxicity terms is "not
checked" rather than clean (``ToxicityReport.covered``); one with no gender entries is never flagged.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from safety.gender import GenderLexicons
from safety.toxicity import ToxicityDetector

LANGUAGES_TSV = Path(__file__).resolve().parent.parent / "assets" / "languages.tsv"


@dataclass(frozen=True)
class CoverageRow:
    """One language's coverage."""

    lang: str  # SeamlessM4T code
    name: str  # English name
    speech_out: bool  # the model can speak it
    toxicity_terms: int  # distinct list terms after the allow-list
    gender_entries: int  # forms, cues, neutral words, epicene nouns and agreement rules
    pronoun_neutral: bool  # its third-person pronouns carry no gender


def read_languages(path: Path = LANGUAGES_TSV) -> list[dict[str, str]]:
    """Rows of ``assets/languages.tsv`` (code, english, speech_out, ...)."""
    with path.open(encoding="utf-8") as f:
        return list(csv.DictReader((line for line in f if not line.startswith("#")), delimiter="\t"))


def coverage(detector: ToxicityDetector, lexicons: GenderLexicons, path: Path = LANGUAGES_TSV) -> list[CoverageRow]:
    """Speech-output languages first, then the other pronoun-neutral ones, each group in code order."""
    neutral = set(lexicons.pronoun_neutral_languages())
    languages = read_languages(path)
    names = {row["code"]: row["english"] for row in languages}
    speech = sorted(row["code"] for row in languages if row["speech_out"] == "1")
    others = sorted(neutral - set(speech))
    return [
        CoverageRow(
            lang,
            names.get(lang, lang),
            lang in speech,
            detector.term_count(lang),
            lexicons.entry_count(lang),
            lang in neutral,
        )
        for lang in speech + others
    ]


def format_table(rows: Sequence[CoverageRow]) -> str:
    """A plain-text table, one language a line."""
    columns = f"{'speech out':>11}{'toxicity terms':>16}{'gender entries':>16}  pronoun-neutral"
    header = f"{'lang':<6}{'language':<30}{columns}"
    lines = [header, "-" * len(header)]
    for r in rows:
        speech, neutral = "yes" if r.speech_out else "no", "yes" if r.pronoun_neutral else "no"
        lines.append(f"{r.lang:<6}{r.name[:29]:<30}{speech:>11}{r.toxicity_terms:>16}{r.gender_entries:>16}  {neutral}")
    spoken = [r for r in rows if r.speech_out]
    lines.append(
        f"speech-output languages with toxicity terms: {sum(r.toxicity_terms > 0 for r in spoken)}/{len(spoken)}; "
        f"with gender entries: {sum(r.gender_entries > 0 for r in spoken)}/{len(spoken)}"
    )
    return "\n".join(lines)
