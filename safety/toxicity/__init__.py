"""Added-toxicity stage: word lists (:mod:`.lists`), ETOX normalisation (:mod:`.text`), detector (:mod:`.detector`)."""

from safety.toxicity.detector import (
    UNSEGMENTED_LANGUAGES,
    AddedToxicityReport,
    ToxicityDetector,
    ToxicityOptions,
    ToxicityReport,
    ToxicMatch,
)
from safety.toxicity.lists import (
    ALLOW_LIST,
    TOXICITY_ASSETS,
    ToxicityListError,
    bundled_terms,
    looks_rot13,
    nllb_list_files,
    read_allow_list,
    read_nllb_list,
    rot13,
    seamless_code,
)
from safety.toxicity.text import Token, Tokenize, per_character, word_tokens

__all__ = [
    "ALLOW_LIST",
    "TOXICITY_ASSETS",
    "UNSEGMENTED_LANGUAGES",
    "AddedToxicityReport",
    "Token",
    "Tokenize",
    "ToxicMatch",
    "ToxicityDetector",
    "ToxicityListError",
    "ToxicityOptions",
    "ToxicityReport",
    "bundled_terms",
    "looks_rot13",
    "nllb_list_files",
    "per_character",
    "read_allow_list",
    "read_nllb_list",
    "rot13",
    "seamless_code",
    "word_tokens",
]
