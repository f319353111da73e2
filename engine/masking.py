"""Masking text: the one place where words a check asked to hide are replaced, for captions and saved files alike."""

from __future__ import annotations

from collections.abc import Iterable


def mask(text: str, spans: Iterable[tuple[int, int]], fill: str = "*") -> str:
    """``text`` with every non-space character inside ``spans`` (start, exclusive end) replaced by ``fill``."""
    chars = list(text)
    for start, end in spans:
        if not 0 <= start <= end <= len(text):
            raise ValueError(f"span ({start}, {end}) is outside a text of {len(text)} characters")
        for i in range(start, end):
            if not chars[i].isspace():
                chars[i] = fill
    return "".join(chars)
