"""Writing what people take away: plain text, SRT and WebVTT from cues, in one place for every front end."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from engine.subtitles import Cue, to_srt, to_vtt


def write_cues(folder: Path, stem: str, cues: Sequence[Cue], plain_text: bool = True) -> list[Path]:
    """``<stem>.txt`` (one cue per line, unless ``plain_text`` is off), ``<stem>.srt`` and ``<stem>.vtt``; nothing
    when there are no cues."""
    if not cues:
        return []
    folder.mkdir(parents=True, exist_ok=True)
    contents = {f"{stem}.srt": to_srt(cues), f"{stem}.vtt": to_vtt(cues)}
    if plain_text:
        contents = {f"{stem}.txt": "\n".join(c.text for c in cues) + "\n", **contents}
    written = []
    for name, content in contents.items():
        path = folder / name
        path.write_text(content, encoding="utf-8")
        written.append(path)
    return written
