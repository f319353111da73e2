"""Latency presets of the live path: how eagerly a streaming session commits, and how it cuts speech into segments."""

from __future__ import annotations

import math
from dataclasses import dataclass

from engine.constants import LIVE_MAX_SEGMENT_S, SEGMENT_PAD_S, WINDOW_S

#: Generous bound on text tokens per second of speech (fluent speech is 3–5 subword tokens/s); it caps runaway
#: decoding (a model that never emits EOS) and keeps each step's cost proportional to its audio.
MAX_TOKENS_PER_S = 8.0
MIN_TOKEN_BUDGET = 8


def token_budget(duration_s: float) -> int:
    """Most text tokens generated for ``duration_s`` of speech (committed prefix included)."""
    return MIN_TOKEN_BUDGET + math.ceil(MAX_TOKENS_PER_S * duration_s)


#: The same bound for text input: tokens generated per source token (special tokens included). Translations between
#: the model's languages rarely need twice their source's tokens, so this only stops a decode that never ends, which
#: would otherwise run to the model's own limit however short the sentence.
MAX_TOKENS_PER_SOURCE_TOKEN = 4


def text_token_budget(source_tokens: int) -> int:
    """Most text tokens generated for a text of ``source_tokens`` tokens."""
    return MIN_TOKEN_BUDGET + MAX_TOKENS_PER_SOURCE_TOKEN * source_tokens


@dataclass(frozen=True)
class LatencyPreset:
    """How eagerly to commit. Durations are rounded to whole 32 ms VAD windows."""

    name: str
    #: Re-translate every this much segment audio; None commits only at segment ends (offline quality).
    step_s: float | None
    #: Hypotheses that must agree before words are committed (LocalAgreement-n).
    agreement_n: int
    #: A pause this long ends a segment.
    pause_s: float
    #: Speech longer than this without a pause is cut at its quietest point.
    max_segment_s: float = LIVE_MAX_SEGMENT_S
    #: Silero speech probability that opens a segment; it closes below threshold - 0.15 (hysteresis).
    vad_threshold: float = 0.5
    #: Audio kept before speech starts and after it ends, so onsets and endings are not clipped.
    pad_s: float = SEGMENT_PAD_S

    def __post_init__(self) -> None:
        if self.step_s is not None and self.step_s < WINDOW_S:
            raise ValueError(f"step_s must be at least one VAD window ({WINDOW_S * 1000:.0f} ms)")
        if self.agreement_n < 1:
            raise ValueError("agreement_n must be at least 1")
        if self.pause_s < WINDOW_S or self.max_segment_s < 2.0 or self.pad_s < 0:
            raise ValueError("pause_s must cover a VAD window, max_segment_s be at least 2 s, pad_s non-negative")
        if not 0.2 <= self.vad_threshold < 1.0:
            raise ValueError("vad_threshold must be in [0.2, 1)")

    def windows(self, seconds: float) -> int:
        return max(1, round(seconds / WINDOW_S))


PRESETS: dict[str, LatencyPreset] = {
    preset.name: preset
    for preset in (
        LatencyPreset("low", step_s=0.512, agreement_n=2, pause_s=0.48),
        LatencyPreset("balanced", step_s=1.024, agreement_n=2, pause_s=0.64),
        LatencyPreset("quality", step_s=1.536, agreement_n=3, pause_s=0.8),
        LatencyPreset("segment", step_s=None, agreement_n=1, pause_s=0.64),
    )
}
