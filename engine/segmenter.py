"""Live segmentation: 32 ms windows in, "step" and "close" decisions out, with Silero VAD and hysteresis.

Speech opens a segment (with ``pad_s`` of the audio before it); a pause of ``pause_s`` closes it (keeping ``pad_s`` of
the pause); speech longer than ``max_segment_s`` without a pause is cut after the quietest window of its second half,
and the rest carries on as the next segment. Every ``step_s`` of an open segment asks for a re-translation. Nothing
here knows about models or text, so it is tested on plain arrays.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from engine.constants import SAMPLE_RATE_HZ, WINDOW_SAMPLES
from engine.presets import LatencyPreset

#: Below ``vad_threshold`` minus this, a window counts as silence inside a segment (Silero's own hysteresis).
HYSTERESIS = 0.15


class SpeechProbability(Protocol):
    """Speech probability of one 32 ms window (:class:`engine.vad.StreamingVad`)."""

    def probability(self, window: np.ndarray) -> float: ...


@dataclass
class SegmentAudio:
    """A segment's audio so far: whole windows from ``start_sample`` (16 kHz samples since the stream began)."""

    start_sample: int
    windows: list[np.ndarray] = field(default_factory=list)

    @property
    def audio(self) -> np.ndarray:
        return np.concatenate(self.windows)

    @property
    def end_sample(self) -> int:
        return self.start_sample + len(self.windows) * WINDOW_SAMPLES

    @property
    def duration_s(self) -> float:
        return len(self.windows) * WINDOW_SAMPLES / SAMPLE_RATE_HZ


@dataclass(frozen=True)
class SegmentStep:
    """Translate ``segment`` as it stands; ``final``: it is closed, commit everything."""

    segment: SegmentAudio
    final: bool


class StreamSegmenter:
    """One per stream. Feed windows in order; each may yield one decision."""

    def __init__(self, vad: SpeechProbability, preset: LatencyPreset) -> None:
        self._vad = vad
        self._preset = preset
        self._preroll: deque[np.ndarray] = deque(maxlen=preset.windows(preset.pad_s))
        self._segment: SegmentAudio | None = None
        self._silence_run = 0
        self.samples_read = 0  # 16 kHz samples seen since the stream began
        #: Ask for a step every ``step_stride`` preset steps (a session that trails the speaker coarsens its steps).
        self.step_stride = 1

    def push(self, window: np.ndarray) -> SegmentStep | None:
        preset = self._preset
        probability = self._vad.probability(window)
        self.samples_read += WINDOW_SAMPLES
        segment = self._segment
        if segment is None:
            if probability < preset.vad_threshold:
                self._preroll.append(window)
                return None
            start = self.samples_read - WINDOW_SAMPLES * (len(self._preroll) + 1)
            self._segment = SegmentAudio(start, [*self._preroll, window])
            self._preroll.clear()
            self._silence_run = 0
            return None
        segment.windows.append(window)
        self._silence_run = self._silence_run + 1 if probability < preset.vad_threshold - HYSTERESIS else 0
        if self._silence_run >= preset.windows(preset.pause_s):
            return self._close_at_pause(segment)
        if len(segment.windows) >= preset.windows(preset.max_segment_s):
            return self._cut_at_quietest(segment)
        if preset.step_s is not None and len(segment.windows) % (preset.windows(preset.step_s) * self.step_stride) == 0:
            return SegmentStep(segment, final=False)
        return None

    def flush(self) -> SegmentStep | None:
        """End of stream: close the open segment, if any."""
        segment, self._segment = self._segment, None
        return None if segment is None else SegmentStep(segment, final=True)

    def _close_at_pause(self, segment: SegmentAudio) -> SegmentStep:
        """Drop the pause (but ``pad_s`` of it) from the segment and keep the pause's tail as preroll."""
        keep = len(segment.windows) - self._silence_run + self._preset.windows(self._preset.pad_s)
        self._preroll.extend(segment.windows[keep:])
        segment.windows = segment.windows[:keep]
        self._segment = None
        return SegmentStep(segment, final=True)

    def _cut_at_quietest(self, segment: SegmentAudio) -> SegmentStep:
        """Speech without a pause: cut after the lowest-energy window of the second half, carry on with the rest."""
        half = len(segment.windows) // 2
        energies = [float(np.dot(w, w)) for w in segment.windows[half:]]
        cut = half + int(np.argmin(energies)) + 1
        tail = segment.windows[cut:]
        segment.windows = segment.windows[:cut]
        self._segment = SegmentAudio(segment.end_sample, tail)
        self._silence_run = 0
        return SegmentStep(segment, final=True)
