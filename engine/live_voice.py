"""Per-stream bookkeeping of the expressive stage on the live path: each segment's voice, and which source audio
each speech chunk's prosody comes from (what was heard since the previous chunk: no look-ahead)."""

from __future__ import annotations

from typing import Protocol

import numpy as np


class ProsodyStage(Protocol):
    """The expressive stage as the live path uses it (``engine.prosody``'s ``ExpressiveStage``)."""

    @property
    def enabled(self) -> bool: ...

    def speaker_for(self, audio: np.ndarray) -> int | None:
        """The vocoder voice nearest to the speaker of ``audio`` (None: no opinion)."""
        ...

    def apply(
        self, heard: np.ndarray, speech: np.ndarray, tgt_lang: str, src_lang: str | None, live: bool
    ) -> np.ndarray:
        """``speech`` with the pauses, pace, pitch and loudness of ``heard`` (``live``: its faster live settings)."""
        ...


class LiveVoice:
    """One per stream. Without an enabled stage it speaks in ``default_voice`` and leaves the speech as it is."""

    def __init__(self, stage: ProsodyStage | None, default_voice: int | None) -> None:
        self._stage = stage if stage is not None and stage.enabled else None
        self._default = default_voice
        self._voice: int | None = None
        self._spoken_samples = 0  # segment audio already matched to a speech chunk

    def start_segment(self) -> None:
        self._voice, self._spoken_samples = None, 0

    def voice(self, segment_audio: np.ndarray) -> int | None:
        """The segment's voice, chosen from the segment's audio at its first speech chunk."""
        if self._stage is None:
            return self._default
        if self._voice is None:
            self._voice = self._stage.speaker_for(segment_audio)
        return self._default if self._voice is None else self._voice

    def shape(self, segment_audio: np.ndarray, speech: np.ndarray, tgt_lang: str, src_lang: str | None) -> np.ndarray:
        if self._stage is None:
            return speech
        heard = segment_audio[self._spoken_samples :]
        self._spoken_samples = segment_audio.shape[0]
        return self._stage.apply(heard, speech, tgt_lang, src_lang, live=True)
