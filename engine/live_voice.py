"""Per-stream bookkeeping of the expressive stage on the live path: each segment's voice, and which source audio
each speech chunk's prosody comes from (what was heard since the previous chunk: no look-ahead).

The voice by timbre needs a speaker embedding of the source (~0.2 s on a CPU core): too slow for a live commit. So
the first segment's first speech chunk takes the voice nearest by pitch (a few milliseconds) and starts the timbre
choice on that segment's audio in the background; every later segment speaks in the voice it found (by pitch after
all when that audio was too short to embed). A later segment's first chunk waits for that choice if it is still
running (it started a whole segment earlier, so it normally is not): the same audio then always gets the same voices,
however busy the machine. The voice never changes inside a segment.
"""

from __future__ import annotations

import threading
from typing import Protocol

import numpy as np


class ProsodyStage(Protocol):
    """The expressive stage as the live path uses it (``engine.prosody``'s ``ExpressiveStage``)."""

    @property
    def enabled(self) -> bool: ...

    def speaker_for(self, audio: np.ndarray, timbre: bool = True) -> int | None:
        """The vocoder voice nearest to the speaker of ``audio``, by timbre or (not ``timbre``) by pitch alone;
        None: no opinion."""
        ...

    def apply(
        self, heard: np.ndarray, speech: np.ndarray, tgt_lang: str, src_lang: str | None, live: bool
    ) -> np.ndarray:
        """``speech`` with the pauses, pace, pitch and loudness of ``heard`` (``live``: its faster live settings)."""
        ...


class TimbreChoice:
    """The voice by timbre for one stream, chosen once on a background thread."""

    def __init__(self) -> None:
        self.voice: int | None = None  # set when found; a plain assignment, read by the stream's thread
        self._thread: threading.Thread | None = None

    def start(self, stage: ProsodyStage, audio: np.ndarray) -> None:
        """Choose from ``audio`` in the background, unless a choice is running or was made."""
        if self.voice is not None or (self._thread is not None and self._thread.is_alive()):
            return
        audio = np.array(audio, dtype=np.float32)  # the segment's buffer keeps growing: embed what was heard

        def choose() -> None:
            self.voice = stage.speaker_for(audio, timbre=True)

        self._thread = threading.Thread(target=choose, name="timbre-choice", daemon=True)
        self._thread.start()

    def join(self, timeout_s: float | None = None) -> None:
        """Wait for a running choice (a later segment's first chunk, tests and benchmarks)."""
        if self._thread is not None:
            self._thread.join(timeout_s)


class LiveVoice:
    """One per stream. Without an enabled stage it speaks in ``default_voice`` and leaves the speech as it is."""

    def __init__(self, stage: ProsodyStage | None, default_voice: int | None) -> None:
        self._stage = stage if stage is not None and stage.enabled else None
        self._default = default_voice
        self._voice: int | None = None
        self._spoken_samples = 0  # segment audio already matched to a speech chunk
        self.timbre = TimbreChoice()

    def start_segment(self) -> None:
        self._voice, self._spoken_samples = None, 0

    def voice(self, segment_audio: np.ndarray) -> int | None:
        """The segment's voice, chosen at its first speech chunk: by pitch in the first segment (which starts the
        timbre choice), by the timbre choice's voice after it."""
        if self._stage is None:
            return self._default
        if self._voice is None:
            self.timbre.join()
            self._voice = self.timbre.voice
            if self._voice is None:
                self._voice = self._stage.speaker_for(segment_audio, timbre=False)
                self.timbre.start(self._stage, segment_audio)
        return self._default if self._voice is None else self._voice

    def shape(self, segment_audio: np.ndarray, speech: np.ndarray, tgt_lang: str, src_lang: str | None) -> np.ndarray:
        if self._stage is None:
            return speech
        heard = segment_audio[self._spoken_samples :]
        self._spoken_samples = segment_audio.shape[0]
        return self._stage.apply(heard, speech, tgt_lang, src_lang, live=True)
