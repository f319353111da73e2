"""Words a decode must not produce, as token sequences for ``generate(bad_words_ids=...)`` (MinTox's re-decode).

A decoding concern, so it lives with the engine: the safety stage only names the words.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

#: SentencePiece's word-start marker.
SPM_SPACE = "▁"


def _case_variants(word: str) -> list[str]:
    return list(dict.fromkeys((word, word.lower(), word.upper(), word[:1].upper() + word[1:].lower())))


def bad_words_ids(tokenizer: Any, words: Iterable[str]) -> list[list[int]]:
    """Token id sequences that ban ``words`` in ``generate(bad_words_ids=...)``, as MinTox does.

    Each word is banned in lower, upper and capitalised case, both as a word of its own (with the leading space or
    SentencePiece ``▁``) and glued to what precedes it (``¡mierda``), since the model may produce either.
    ``tokenizer`` is a Hugging Face tokenizer; sequences holding the unknown token are dropped (banning ``<unk>``
    would ban every unknown word).
    """
    unk = tokenizer.unk_token_id
    sequences: set[tuple[int, ...]] = set()
    for word in words:
        for variant in _case_variants(word.strip()):
            if not variant:
                continue
            for text in (variant, " " + variant):
                sequences.add(tuple(tokenizer(text, add_special_tokens=False)["input_ids"]))
            pieces = tokenizer.tokenize(variant)
            if pieces and pieces[0].startswith(SPM_SPACE):
                glued = [p for p in [pieces[0].removeprefix(SPM_SPACE), *pieces[1:]] if p]
                sequences.add(tuple(tokenizer.convert_tokens_to_ids(glued)))
    return sorted(list(s) for s in sequences if s and unk not in s)
