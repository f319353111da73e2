"""Voice activity detection with Silero VAD: where the speech is, and where to cut a long recording.

The Silero model ships inside the ``silero-vad`` wheel, so nothing is downloaded. Cutting happens at pauses; an
utterance longer than ``max_segment_s`` is split at its longest internal silence (Silero's own rule), so the model
never sees more than it translates well.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from engine.constants import FILE_MAX_SEGMENT_S, SAMPLE_RATE_HZ


@dataclass(frozen=True)
class VadOptions:
    #: Speech probability above which a 32 ms window counts as speech.
    threshold: float = 0.5
    #: A pause must last this long to end an utterance.
    min_silence_s: float = 0.3
    #: Speech bursts shorter than this are ignored (clicks, coughs).
    min_speech_s: float = 0.25
    #: Padding kept on both sides of each utterance so word onsets and endings are not clipped.
    pad_s: float = 0.1
    #: Longest utterance; longer speech is split at its quietest pause.
    max_segment_s: float = FILE_MAX_SEGMENT_S

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold < 1.0:
            raise ValueError("threshold must be between 0 and 1")
        if min(self.min_silence_s, self.min_speech_s, self.pad_s) < 0 or self.max_segment_s <= 1.0:
            raise ValueError("durations must be non-negative and max_segment_s above 1 s")


@dataclass(frozen=True)
class Segment:
    """An utterance, in samples at 16 kHz; ``end`` is exclusive."""

    start: int
    end: int

    @property
    def start_s(self) -> float:
        return self.start / SAMPLE_RATE_HZ

    @property
    def end_s(self) -> float:
        return self.end / SAMPLE_RATE_HZ

    @property
    def duration_s(self) -> float:
        return (self.end - self.start) / SAMPLE_RATE_HZ


def load_vad_model() -> torch.nn.Module:
    """The Silero VAD network (TorchScript, bundled in the wheel). Load once; pass it to each :class:`Segmenter`."""
    from silero_vad import load_silero_vad

    return load_silero_vad(onnx=False)


class Segmenter:
    """Splits a whole recording into utterances."""

    def __init__(self, vad_model: torch.nn.Module, options: VadOptions | None = None) -> None:
        self.vad_model = vad_model
        self.options = options or VadOptions()

    def segments(self, audio: np.ndarray) -> list[Segment]:
        """Utterances of a 16 kHz mono recording, in order, not overlapping."""
        from silero_vad import get_speech_timestamps

        opts = self.options
        stamps = get_speech_timestamps(
            torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32)),
            self.vad_model,
            threshold=opts.threshold,
            sampling_rate=SAMPLE_RATE_HZ,
            min_speech_duration_ms=int(opts.min_speech_s * 1000),
            max_speech_duration_s=opts.max_segment_s,
            min_silence_duration_ms=int(opts.min_silence_s * 1000),
            speech_pad_ms=int(opts.pad_s * 1000),
        )
        self.vad_model.reset_states()
        return [Segment(int(s["start"]), int(s["end"])) for s in stamps]


class StreamingVad:
    """Speech probability for each 32 ms window of a live stream.

    Silero keeps a recurrent state inside the network object, so every stream needs its own copy: build one per
    session with :meth:`for_new_stream` from a prototype loaded once.
    """

    def __init__(self, vad_model: torch.nn.Module) -> None:
        self._model = vad_model
        self._model.reset_states()

    @classmethod
    def for_new_stream(cls, prototype: torch.nn.Module) -> StreamingVad:
        import copy

        return cls(copy.deepcopy(prototype))

    @torch.inference_mode()
    def probability(self, window: np.ndarray) -> float:
        """Speech probability of one window of exactly :data:`WINDOW_SAMPLES` samples."""
        return float(self._model(torch.from_numpy(np.ascontiguousarray(window, dtype=np.float32)), SAMPLE_RATE_HZ))
