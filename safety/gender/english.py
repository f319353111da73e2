"""English pronouns: which masculine form stands for *her*, and the singular-*they* version of a translation.

English marks gender only on third-person pronouns and a few nouns, so a translation from a language whose
pronouns carry none (Turkish *o*, Finnish *hän*) must pick *he* or *she*: the case Multilingual HolisticBias
(Costa-jussà et al., 2023) measures. Swapping *she* for *he* is one-to-one, but *her* is either the object (*I saw
her* -> *him*) or the possessive (*her book* -> *his*), and *his* is either the possessive or the standalone
*hers*. Without a parser the word after decides: a content word after *her* makes it a possessive. This is the rule
fallback; the model's own re-decode with the other pronoun forced as a prefix (:meth:`GenderBiasChecker.
alternative_prefix`) needs no rule.
"""

from __future__ import annotations

from collections.abc import Sequence

from safety.toxicity import Token

ENGLISH = "eng"

#: Words after which *her* is an object and *his* stands alone: function words, adverbs, particles.
FUNCTION_WORDS = frozenset({
    "a", "an", "the", "this", "that", "these", "those", "my", "your", "our", "their", "its", "his", "her", "him",
    "them", "me", "us", "it", "some", "any", "no", "every", "each", "and", "or", "but", "so", "because", "if",
    "when", "while", "than", "then", "as", "to", "of", "in", "on", "at", "by", "for", "with", "from", "into", "onto",
    "about", "after", "before", "over", "under", "up", "down", "out", "off", "again", "away", "back", "there",
    "here", "now", "today", "yesterday", "tomorrow", "tonight", "very", "too", "also", "still", "just", "really",
    "always", "never", "often", "already", "yet", "ever", "only", "even", "not", "is", "are", "was", "were", "be",
    "been", "am", "has", "have", "had", "do", "does", "did", "will", "would", "can", "could", "should", "may",
    "might", "must", "who", "which", "what", "where", "how", "why", "all", "both", "much", "more", "most", "less",
    "well", "home", "last", "next",
})  # fmt: skip

#: Subject pronouns and the verb forms that change with singular *they*.
SUBJECTS = frozenset({"he", "she"})
THEY_VERBS = {"is": "are", "was": "were", "has": "have", "does": "do", "isn": "aren", "wasn": "weren",
              "doesn": "don", "s": "re"}  # fmt: skip
#: Adverbs between a subject and its verb ("she always works").
ADVERBS = frozenset({"always", "never", "often", "also", "usually", "sometimes", "still", "really", "just", "only"})
#: Words that end in -s but are not third-person verbs.
NOT_VERBS_IN_S = frozenset({"is", "was", "has", "does", "this", "us", "as", "yes", "less", "always", "sometimes"})
THEY_PRONOUNS = {"he": "they", "she": "they", "him": "them", "himself": "themself", "herself": "themself",
                 "hers": "theirs"}  # fmt: skip


def _next_word(tokens: Sequence[Token], i: int) -> str | None:
    return tokens[i + 1].text if i + 1 < len(tokens) else None


def is_possessive(tokens: Sequence[Token], i: int) -> bool:
    """Whether *her* or *his* at token ``i`` is followed by the noun it possesses (*her book*, not *saw her*)."""
    following = _next_word(tokens, i)
    return following is not None and following not in FUNCTION_WORDS


def counterpart(tokens: Sequence[Token], i: int, default: str) -> str:
    """The other gender's form of the pronoun at token ``i``: *her* -> *his* or *him*, *his* -> *her* or *hers*."""
    word = tokens[i].text
    if word == "her":
        return "his" if is_possessive(tokens, i) else "him"
    if word == "his":
        return "her" if is_possessive(tokens, i) else "hers"
    return default


def _plain_verb(verb: str) -> str:
    """The form after *they* of a third-person verb: *works* -> *work*, *studies* -> *study*, *watches* -> *watch*."""
    if verb in THEY_VERBS:
        return THEY_VERBS[verb]
    if verb.endswith("ies") and len(verb) > 4:
        return verb[:-3] + "y"
    if verb.endswith(("ches", "shes", "sses", "xes", "oes")):
        return verb[:-2]
    return verb[:-1]


def they_edits(tokens: Sequence[Token], indices: Sequence[int]) -> list[tuple[int, str]]:
    """(token index, new word) edits that turn the gendered pronouns at ``indices`` into singular *they*."""
    edits: list[tuple[int, str]] = []
    for i in indices:
        word = tokens[i].text
        if word in ("her", "his"):
            possessive = is_possessive(tokens, i)
            edits.append((i, "their" if possessive else ("them" if word == "her" else "theirs")))
            continue
        if word not in THEY_PRONOUNS:
            continue
        edits.append((i, THEY_PRONOUNS[word]))
        if word in SUBJECTS:
            j = i + 1
            while j < len(tokens) and tokens[j].text in ADVERBS:
                j += 1
            verb = tokens[j].text if j < len(tokens) else ""
            if verb in THEY_VERBS or (verb.endswith("s") and verb not in NOT_VERBS_IN_S and len(verb) > 2):
                edits.append((j, _plain_verb(verb)))
    return edits
