"""Long text for the Text tab, cut into sentences and batches the model translates well.

SeamlessM4T translates a sentence or two at a time best, and one request's cost grows with its longest input: a
page of text is cut into sentences (kept in their paragraphs, so the translation keeps the paragraph breaks) and
translated a batch at a time, each batch one call.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: Sentences translated in one model call: big enough to batch, small enough that progress moves.
BATCH_SENTENCES = 8

#: A sentence: up to . ! ? … (or the Devanagari and Arabic stops) and any closing quotes before a space or the end,
#: or up to a CJK full stop (no space follows those), or the paragraph's end.
_SENTENCE = re.compile(r"\S.*?(?:[.!?…।؟]+[\"'”’)\]]*(?=\s|$)|[。！？]+[\"'”’」』)\]]*|$)")


@dataclass(frozen=True)
class Sentence:
    text: str
    paragraph: int  # index of the paragraph it belongs to


def split_sentences(text: str) -> list[Sentence]:
    """Non-empty sentences of ``text`` in order, each with its paragraph (paragraphs are separated by newlines)."""
    paragraphs = [p.strip() for p in text.splitlines() if p.strip()]
    return [
        Sentence(piece.strip(), index)
        for index, paragraph in enumerate(paragraphs)
        for piece in _SENTENCE.findall(paragraph)
        if piece.strip()
    ]


def batches(sentences: list[Sentence], size: int = BATCH_SENTENCES) -> list[list[Sentence]]:
    return [sentences[i : i + size] for i in range(0, len(sentences), size)]


def join_paragraphs(sentences: list[Sentence], translations: list[str]) -> str:
    """The translations laid out like the source: sentences of a paragraph on one line, one line per paragraph."""
    lines: dict[int, list[str]] = {}
    for sentence, translation in zip(sentences, translations, strict=True):
        lines.setdefault(sentence.paragraph, []).append(translation.strip())
    return "\n".join(" ".join(part for part in parts if part) for parts in lines.values())
