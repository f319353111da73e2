"""Numbers the whole product agrees on, each defined once: the model's sample rate, the VAD window, segment limits.

``safety`` may read this module (it is plain data); everything else about the engine stays behind its interfaces.
"""

from __future__ import annotations

#: SeamlessM4T v2 hears and speaks 16 kHz mono.
SAMPLE_RATE_HZ = 16_000
#: Silero VAD scores 512-sample (32 ms) windows at 16 kHz; live decisions happen on these boundaries.
WINDOW_SAMPLES = 512
WINDOW_S = WINDOW_SAMPLES / SAMPLE_RATE_HZ
#: Longest live segment: speech without a pause is cut at its quietest point after this long, so a step's work stays
#: bounded (minute 10 of a stream costs what minute 1 does).
LIVE_MAX_SEGMENT_S = 15.0
#: Longest utterance of a file sent to the model at once; longer speech is cut at its longest pause.
FILE_MAX_SEGMENT_S = 20.0
#: Audio kept before a live segment's speech starts and after it ends, so onsets and endings are not clipped.
SEGMENT_PAD_S = 0.096
#: Languages written without spaces between words (ISO 639-3 codes as the model names them): words are matched on
#: the model's own tokens there, and any token may end a word.
UNSEGMENTED_LANGUAGES = frozenset({"cmn", "cmn_Hant", "yue", "jpn", "tha", "khm", "lao", "mya"})
