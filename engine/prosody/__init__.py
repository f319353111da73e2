"""Prosody signal processing: analysis (activity, pauses, syllable nuclei, F0, loudness), time-scale modification,
and the expressive stage that transfers the speaker's prosody onto translated speech."""

from engine.prosody.options import ExpressiveOptions
from engine.prosody.transfer import ExpressiveStage

__all__ = ["ExpressiveOptions", "ExpressiveStage"]
