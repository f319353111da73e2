"""LocalAgreement-n: commit what the last n hypotheses agree on (Liu et al., 2020; Macháček et al., 2023).

The streaming decoder re-translates a growing audio buffer at every step. A word is committed once the last ``n``
hypotheses (each conditioned on what is already committed) all begin with it; what they disagree on stays tentative
and is shown as a partial. Commits stop at word boundaries, so speech is never synthesised from half a word.
The class works on plain token lists: no model, no audio.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from typing import Protocol


def common_prefix(hypotheses: Sequence[Sequence[int]]) -> list[int]:
    if not hypotheses:
        return []
    prefix = []
    for tokens in zip(*hypotheses, strict=False):
        if any(t != tokens[0] for t in tokens[1:]):
            break
        prefix.append(tokens[0])
    return prefix


class CommitPolicy(Protocol):
    """Decides, from successive hypotheses (tokens after the committed prefix), what to commit. Built per stream as
    ``policy(n, starts_word)``; another policy is one new class with these three members."""

    def update(self, hypothesis: Sequence[int]) -> list[int]:
        """Add a hypothesis; return the tokens to commit now (maybe none)."""
        ...

    @property
    def tentative(self) -> list[int]:
        """What is shown as unstable text after the committed text."""
        ...

    def reset(self) -> None:
        """Forget the hypotheses (segment end, or the committed text was replaced)."""
        ...


class LocalAgreement:
    """Keeps the last ``n`` hypotheses (tokens after the committed prefix) and decides what to commit.

    ``starts_word(token)`` tells whether a token begins a new word (sentencepiece: it starts with "▁"); a run of
    agreed tokens is committed only up to the last word start that is followed by agreement on a further word
    start, or the end of the hypothesis (``complete=True`` at segment end).
    """

    def __init__(self, n: int, starts_word: Callable[[int], bool]) -> None:
        if n < 1:
            raise ValueError("n must be at least 1")
        self.n = n
        self.starts_word = starts_word
        self._history: deque[list[int]] = deque(maxlen=n)

    def reset(self) -> None:
        self._history.clear()

    def update(self, hypothesis: Sequence[int]) -> list[int]:
        """Add a hypothesis (tokens after the committed prefix); return the tokens to commit now (maybe none)."""
        self._history.append(list(hypothesis))
        if len(self._history) < self.n:
            return []
        agreed = common_prefix(list(self._history))
        latest = self._history[-1]
        # Cut back to a word boundary: the token after the commit must begin a word (or the hypothesis ends).
        cut = len(agreed)
        while cut > 0 and not (cut == len(latest) or self.starts_word(latest[cut])):
            cut -= 1
        commit = agreed[:cut]
        if commit:
            # Hypotheses agreed on the commit, so each still continues past it: keep only the continuations.
            self._history = deque((h[cut:] for h in self._history), maxlen=self.n)
        return commit

    @property
    def tentative(self) -> list[int]:
        """The latest hypothesis beyond what was committed: shown as unstable text."""
        return list(self._history[-1]) if self._history else []
