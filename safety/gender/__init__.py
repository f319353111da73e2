"""Gender-bias stage: lexicons (:mod:`.lexicons`), the checker (:mod:`.checker`), English pronouns (:mod:`.english`)
and the source side (:mod:`.sources`)."""

from safety.gender.checker import GenderBiasChecker, GenderOptions, GenderReport, GenderSpan, other, summarise
from safety.gender.lexicons import (
    EVIDENCE_KINDS,
    FEMININE,
    GENDER_DIR,
    GENDERS,
    MASCULINE,
    MIXED,
    Gender,
    GenderLexiconError,
    GenderLexicons,
    GenderSummary,
)

__all__ = [
    "EVIDENCE_KINDS",
    "FEMININE",
    "GENDERS",
    "GENDER_DIR",
    "MASCULINE",
    "MIXED",
    "Gender",
    "GenderBiasChecker",
    "GenderLexiconError",
    "GenderLexicons",
    "GenderOptions",
    "GenderReport",
    "GenderSpan",
    "GenderSummary",
    "other",
    "summarise",
]
