"""Marking what Parley says: every synthetic sample goes through a :class:`SpeechMarker` before anyone hears it.

The payload says where the speech came from: a 16-bit deployment id (who runs this server) and a 16-bit session id
derived from the browser session or run, so a recording found later can be traced to a deployment and a session
without storing anything about the person.

Live speech comes in pieces of a second or two, shorter than the built-in watermark's period (1.92 s carries one
payload). Marked each on its own, every piece would start the period afresh and no piece would hold the whole
payload. So each piece is marked at its position on the timeline of the output it goes to (a saved file, a
speaker, a player): pieces of one output then carry one continuous mark, gaps or not, and a recording of that
output yields the payload wherever about two seconds of speech fall in it, in one piece or in several.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from safety.watermark import SpreadSpectrumWatermarker, Watermarker, make_payload

SAMPLE_RATE_HZ = 16_000


def session_id(session_key: str) -> int:
    """A stable 16-bit id for a session key (not reversible to the key)."""
    return int.from_bytes(hashlib.blake2b(session_key.encode(), digest_size=2).digest(), "big")


@dataclass(frozen=True)
class SpeechMarker:
    """Embeds one payload into every piece of 16 kHz synthetic speech it is given."""

    watermarker: Watermarker
    payload: int

    @classmethod
    def for_session(cls, watermarker: Watermarker, deployment_id: int, session_key: str) -> SpeechMarker:
        return cls(watermarker, make_payload(deployment_id, session_id(session_key)))

    def __call__(self, audio: np.ndarray, at_sample: int = 0) -> np.ndarray:
        """Mark 16 kHz ``audio`` that starts ``at_sample`` samples into its output's timeline.

        The built-in watermark's pattern repeats every period; marking the piece behind that many samples of
        digital silence (which the watermark leaves silent) puts the piece in phase with everything else on the
        timeline. Backends without a repeating pattern ignore the position.
        """
        if audio.size == 0:
            return audio
        lead = at_sample % self.period_samples if self.period_samples else 0
        host = np.concatenate([np.zeros(lead, dtype=np.float32), np.asarray(audio, dtype=np.float32)])
        return self.watermarker.embed(host, SAMPLE_RATE_HZ, self.payload)[lead:].astype(np.float32)

    @property
    def period_samples(self) -> int:
        """16 kHz samples after which the watermark's pattern repeats (0: it has none that positions must keep)."""
        if isinstance(self.watermarker, SpreadSpectrumWatermarker):
            options = self.watermarker.options
            return options.period_columns * options.column_samples
        return 0


class MarkedTimeline:
    """Translated speech laid out for one saved file: each piece starts at the source time it belongs to (or when
    the previous piece ends, if that is later, so pieces never overlap and audio lines up with subtitles), and is
    marked at that position."""

    def __init__(self, mark: Callable[[np.ndarray, int], np.ndarray]) -> None:
        """``mark`` is a :class:`SpeechMarker` (or, in tests, anything called the same way)."""
        self._mark = mark
        self._pieces: list[np.ndarray] = []  # marked, with the silence before each
        self._cursor = 0  # samples laid out so far
        self.speech_samples = 0  # samples of speech placed (the silence between pieces not counted)

    def add(self, source_time_s: float, audio: np.ndarray) -> None:
        """Place a 16 kHz piece."""
        start = max(self._cursor, round(source_time_s * SAMPLE_RATE_HZ))
        self._pieces += [np.zeros(start - self._cursor, dtype=np.float32), self._mark(audio, start)]
        self._cursor = start + audio.shape[0]
        self.speech_samples += audio.shape[0]

    def __bool__(self) -> bool:
        return self._cursor > 0

    def audio(self) -> np.ndarray:
        """The whole timeline so far."""
        return np.concatenate(self._pieces) if self._pieces else np.zeros(0, dtype=np.float32)
