"""The engine's side of the judge's other-gender alternative: it makes the decode the verdict asks for.

A judge that finds a translation committed to a gender the source did not state asks for one of two decodes
(:class:`engine.hooks.Verdict`): the translation of a gender-marked source, or a re-decode of the same encoder
output with the start of the translation forced, its first gendered pronoun swapped (*She* -> *He*). The forced
prefix lets the model write the rest in the other gender itself, so English *her* becomes *him* or *his* by the
model's choice rather than by a rule; the judge falls back to its rule when the result does not use that gender.
"""

from __future__ import annotations

from engine.hooks import Judge, Verdict
from engine.tasks import Task
from engine.translator import Encoded, TranslationResult, Translator


def prefix_ids(translator: Translator, text: str) -> list[int]:
    """Target-side token ids of ``text``: ordinary tokens only, as ``continue_text`` takes a forced prefix."""
    return list(translator.loaded.tokenizer(text, add_special_tokens=False)["input_ids"])


def redecode_with_prefix(translator: Translator, encoded: Encoded, result: TranslationResult, prefix: str) -> str:
    """The text the model writes from ``encoded`` after the forced ``prefix`` (the prefix included). Its budget is
    the first decode's length, which a translation differing in one pronoun needs at most."""
    forced = prefix_ids(translator, prefix)
    rest = translator.continue_text(encoded, result.tgt_lang, forced, max_new_tokens=len(result.token_ids))
    return translator.detokenize([*forced, *rest]).strip()


def offer_alternative(
    translator: Translator,
    judge: Judge,
    verdict: Verdict,
    encoded: Encoded,
    result: TranslationResult,
    src_lang: str | None,
) -> Verdict:
    """``verdict`` with its other-gender alternative, after the decode it asks for (unchanged when it asks none).
    ``encoded`` is the encoder output ``result`` was decoded from."""
    if verdict.alternative_prefix is not None:
        translated = redecode_with_prefix(translator, encoded, result, verdict.alternative_prefix)
    elif verdict.alternative_source is not None and src_lang is not None:
        source = [verdict.alternative_source]
        translated = translator.translate(source, Task.T2TT, result.tgt_lang, src_lang=src_lang)[0].text
    else:
        return verdict
    return judge.with_alternative(verdict, translated, result.text, result.tgt_lang)
