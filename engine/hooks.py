"""Interfaces through which later stages (the safety checks) see the engine's results, without the engine importing
them: the engine calls these protocols, ``safety.pipeline`` implements them, and the edge code (CLI, UI) connects the
two. Data flows engine → stage → engine; no engine module imports ``safety``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from engine.translator import Encoded, TranslationResult


class Report(Protocol):
    """What a check attaches to a result: short plain-language flags for people, and a JSON-ready form for files."""

    @property
    def flags(self) -> tuple[str, ...]: ...

    def as_dict(self) -> dict[str, Any]: ...


class ResultCheck(Protocol):
    """Checks one finished translation (file and text paths)."""

    def check_result(
        self,
        encoded: Encoded,
        result: TranslationResult,
        source_text: str | None,
        src_lang: str | None,
        speaker_id: int | None = None,
    ) -> tuple[TranslationResult, Report]:
        """The result to use (itself, a re-decode from ``encoded`` or a masked copy) and its report.

        ``encoded`` is the encoder output ``result`` came from, batch of one, so a re-decode needs no second encoder
        pass. ``source_text`` is the input text, or for speech the model's own transcript (None: not known).
        """
        ...


class CommitVerdict(Protocol):
    """What a :class:`CommitCheck` decided about tokens a streaming session is about to commit."""

    @property
    def tokens(self) -> tuple[int, ...]:
        """The tokens to commit instead (never empty): the checked ones, or a re-decode in their place."""
        ...

    @property
    def report(self) -> Report: ...

    @property
    def silenced(self) -> bool:
        """True when the speech of these tokens must not be played (it holds words that are masked in the text)."""
        ...

    def shown_text(self, text: str) -> str:
        """``text`` (committed text of the segment, or part of it) as it may be shown: masked where needed."""
        ...


class CommitCheck(Protocol):
    """Checks the tokens a streaming session commits, before their speech is made (live path)."""

    def check_commit(
        self,
        encoded: Encoded,
        tgt_lang: str,
        src_lang: str | None,
        committed: Sequence[int],
        tokens: Sequence[int],
    ) -> CommitVerdict:
        """``committed``: the segment's tokens committed before (no decoder-start or language token); ``tokens``:
        the new ones; ``encoded``: the segment's audio so far, batch of one."""
        ...
