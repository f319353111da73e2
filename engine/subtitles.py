"""SRT and WebVTT subtitles from timed text."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Cue:
    start_s: float
    end_s: float
    text: str


def _timestamp(seconds: float, decimal: str) -> str:
    millis = max(0, round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal}{millis:03d}"


def _clean(text: str) -> str:
    # A blank line ends a cue in both formats, and "-->" inside text would read as a timing line.
    lines = [line.strip() for line in text.replace("-->", "→").splitlines()]
    return "\n".join(line for line in lines if line) or "…"


def to_srt(cues: Sequence[Cue]) -> str:
    blocks = [
        f"{i}\n{_timestamp(c.start_s, ',')} --> {_timestamp(c.end_s, ',')}\n{_clean(c.text)}\n"
        for i, c in enumerate(cues, start=1)
    ]
    return "\n".join(blocks)


def to_vtt(cues: Sequence[Cue]) -> str:
    blocks = [f"{_timestamp(c.start_s, '.')} --> {_timestamp(c.end_s, '.')}\n{_clean(c.text)}\n" for c in cues]
    return "WEBVTT\n\n" + "\n".join(blocks)
