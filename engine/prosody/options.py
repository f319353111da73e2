"""The expressive stage's options: one frozen dataclass, validated once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DURATION_FACTORS_TSV = Path(__file__).resolve().parents[2] / "assets" / "expressive" / "duration_factors.tsv"


@dataclass(frozen=True)
class ExpressiveOptions:
    #: Off: the translation is returned untouched and the default vocoder voice is used (neutral voice).
    enabled: bool = True
    #: Silences at least this long inside a segment are pauses that must reappear in the translation.
    min_pause_s: float = 0.2
    #: Playback-speed bounds relative to the neutral rendering (0.6 = up to 1.67× longer, 1.7 = up to 1.7× faster).
    #: With 0.7–1.4 a fast speaker's pace was cut off in most languages (the speed the per-language bench needs runs
    #: to 2.1); 2× broke the watermark of a short tiny-model clip (tests/test_watermark_short.py), 1.7× does not.
    min_speed: float = 0.6
    max_speed: float = 1.7
    #: Pace: 0 makes the speech last as long as the source's × the language's duration factor; 1 makes its syllable
    #: rate the speaker's × the languages' syllable-rate ratio; in between, the geometric blend of the two speeds.
    #: 1 by default: the duration target carries how many syllables each sentence happens to need, which is content,
    #: not pace (benchmark rate correlation at 0.5 / 0.75 / 1: 0.65 / 0.70 / 0.76 on 30 items).
    rate_follow: float = 1.0
    #: Largest pitch change, in semitones, either way. Rubber Band keeps the formants, so an octave is allowed: with
    #: 6 st the bench's F0 median error was 1.85 st and contour correlation 0.61 (a default-voice rendering under a
    #: high voice could not reach it), with 12 st 0.42 st and 0.75.
    max_shift_st: float = 12.0
    #: Fraction of the gap between the translation's and the speaker's median F0 that is closed (0–1).
    pitch_follow: float = 1.0
    #: Intonation: weight of the speaker's phrase contour (declination, question rise, emphasis) against the
    #: translation's own; the translation always keeps its accents (stress, lexical tone): engine/prosody/intonation.py.
    contour_follow: float = 1.0
    #: F0 range (10th–90th percentile span) is scaled toward the speaker's by at most this ratio either way.
    max_range_ratio: float = 2.0
    #: Loudness matching raises the level by at most this much, in dB (so a whisper does not amplify noise);
    #: lowering it is not bounded.
    max_gain_db: float = 24.0
    #: Output peaks stay at or below this (linear full scale): no clipping is ever introduced.
    peak_ceiling: float = 0.97
    #: Measure the source's pauses, pace, pitch and loudness on an RNNoise-denoised copy (engine/prosody/denoise.py);
    #: the model still hears the original. Off by default: it costs ~0.1–0.3 s per second of source on a CPU core.
    denoise_analysis: bool = False
    #: Per-language duration factors and typical syllable rates (code, factor, syllable_rate), see the file's header.
    duration_factors_tsv: Path = DURATION_FACTORS_TSV
    #: Where vocoder voice profiles are cached (one JSON per model); None measures them in every process.
    cache_dir: Path | None = None

    def __post_init__(self) -> None:
        if not 0.05 <= self.min_pause_s <= 2.0:
            raise ValueError("min_pause_s must be between 0.05 and 2 s")
        if not 0.25 <= self.min_speed <= 1.0 <= self.max_speed <= 4.0:
            raise ValueError("speed bounds must satisfy 0.25 <= min_speed <= 1 <= max_speed <= 4")
        if not 0.0 <= self.max_shift_st <= 12.0:
            raise ValueError("max_shift_st must be between 0 and 12 semitones")
        if not all(0.0 <= f <= 1.0 for f in (self.pitch_follow, self.rate_follow, self.contour_follow)):
            raise ValueError("pitch_follow, rate_follow and contour_follow must be between 0 and 1")
        if self.max_range_ratio < 1.0 or self.max_gain_db < 0.0:
            raise ValueError("max_range_ratio must be at least 1 and max_gain_db not negative")
        if not 0.0 < self.peak_ceiling <= 1.0:
            raise ValueError("peak_ceiling must be in (0, 1]")
