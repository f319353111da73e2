"""What the engine asks of a judge (the safety stage) without importing it.

The engine owns every decode; a :class:`Judge` only reads texts and says what is wrong. ``safety.judge`` implements
these protocols and the composition root connects the two, so data flows engine → judge → engine and no engine
module imports ``safety``.
"""

from __future__ import annotations

from typing import Any, Protocol


class Report(Protocol):
    """What a judge attaches to a result: short plain-language flags for people, and a JSON-ready form for files."""

    @property
    def flags(self) -> tuple[str, ...]: ...

    def as_dict(self) -> dict[str, Any]: ...


class Verdict(Protocol):
    """A judge's decision about one text."""

    @property
    def report(self) -> Report: ...

    @property
    def words_to_ban(self) -> tuple[str, ...]:
        """Non-empty: decode again once with these words banned, and judge the new text with ``first=`` this."""
        ...

    @property
    def mask_spans(self) -> tuple[tuple[int, int], ...]:
        """(start, exclusive end) character spans of the judged text to show masked."""
        ...

    @property
    def silenced(self) -> bool:
        """The speech must not be played (it holds words that are masked in the text)."""
        ...

    @property
    def alternative_source(self) -> str | None:
        """A gender-marked source: translate it and pass the result to :meth:`Judge.with_alternative`."""
        ...

    @property
    def alternative_prefix(self) -> str | None:
        """The translation up to its first gendered pronoun, that pronoun in the other gender: decode again from the
        same encoder output with it forced as the prefix, and pass the result to :meth:`Judge.with_alternative`."""
        ...


class Judge(Protocol):
    def needs_source(self, text: str, tgt_lang: str, start: int = 0) -> bool:
        """Whether judging the part of ``text`` after character ``start`` needs the source text (the live path then
        decodes a transcript from the same encoder output)."""
        ...

    def judge(
        self,
        source_text: str | None,
        src_lang: str | None,
        text: str,
        tgt_lang: str,
        *,
        start: int = 0,
        first: Verdict | None = None,
        redecoded: bool = False,
        transcription: bool = False,
        alternatives: bool = False,
    ) -> Verdict: ...

    def with_alternative(self, verdict: Verdict, translated: str | None, text: str, tgt_lang: str) -> Verdict: ...
