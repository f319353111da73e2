"""Prosody analysis: what a stretch of speech does (activity and pauses, syllable nuclei, F0, loudness), measured
the same way by the expressive stage and by the expressivity metrics. 16 kHz mono float32 in, 10 ms hops out."""

from engine.prosody.analysis.activity import PauseLayout, activity, pause_layout
from engine.prosody.analysis.frames import HOP_S, HOP_SAMPLES, frame_levels_db
from engine.prosody.analysis.loudness import loudness_lufs
from engine.prosody.analysis.pitch import PitchProfile, track_f0
from engine.prosody.analysis.syllables import count_syllables, syllable_nuclei, syllable_rate

__all__ = [
    "HOP_S",
    "HOP_SAMPLES",
    "PauseLayout",
    "PitchProfile",
    "activity",
    "count_syllables",
    "frame_levels_db",
    "loudness_lufs",
    "pause_layout",
    "syllable_nuclei",
    "syllable_rate",
    "track_f0",
]
