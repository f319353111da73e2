"""One session's view of the shared :class:`engine.scheduler.InferenceScheduler`: a ``StreamingBackend`` that knows
who is asking (the round-robin unit), how urgent it is, and how long its calls waited in the queue."""

from __future__ import annotations

import collections
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from engine.scheduler_calls import CallTiming, Kind, Priority, decode_row, speech_features
from engine.translator import Encoded

if TYPE_CHECKING:
    from engine.scheduler import InferenceScheduler

#: How many recent calls :attr:`SessionBackend.recent_queue_wait_s` looks at.
RECENT_CALLS = 8


class SessionBackend:
    """:class:`engine.backend.StreamingBackend` for one session (one per live stream, upload or text request)."""

    def __init__(self, scheduler: InferenceScheduler, key: object, priority: Priority = Priority.LIVE) -> None:
        self._scheduler, self._key, self._priority = scheduler, key, priority
        self._translator = scheduler.translator
        self._gen = scheduler.translator.loaded.model.generation_config
        self._timings: collections.deque[CallTiming] = collections.deque(maxlen=RECENT_CALLS)

    @property
    def last_timing(self) -> CallTiming | None:
        return self._timings[-1] if self._timings else None

    @property
    def recent_queue_wait_s(self) -> float:
        """Longest queue wait among this session's last calls: above a step's own length, the session falls behind
        and should take coarser steps (fewer, longer) instead of queueing more."""
        return max((t.queue_wait_s for t in self._timings), default=0.0)

    def _submit(self, kind: Kind, payload: tuple):
        result, timing = self._scheduler.submit(kind, payload, self._key, self._priority)
        self._timings.append(timing)
        return result

    # ---- StreamingBackend ---------------------------------------------------------------------------------------

    def encode(self, audio: np.ndarray) -> Encoded:
        return self._submit(Kind.ENCODE, speech_features(self._translator, audio))

    def continue_text(
        self,
        state: Encoded,
        tgt_lang: str,
        prefix: Sequence[int],
        max_new_tokens: int,
        banned_words: Sequence[str] = (),
    ) -> list[int]:
        return self._translator.without_trailing_specials(
            self._decode(state, tgt_lang, prefix, max_new_tokens, banned_words)
        )

    def speak(
        self, state: Encoded, tgt_lang: str, committed: Sequence[int], new_count: int, speaker_id: int | None
    ) -> np.ndarray:
        full = (*self._translator.decoder_head(tgt_lang), *committed, self._gen.eos_token_id)
        return self._submit(Kind.SPEAK, (state, tgt_lang, full, new_count, speaker_id))[0]

    def starts_word(self, token_id: int) -> bool:
        return self._translator.starts_word(token_id)

    def detokenize(self, tokens: Sequence[int]) -> str:
        return self._translator.detokenize(tokens)

    def _decode(self, state: Encoded, tgt_lang: str, prefix, max_new_tokens: int, banned_words) -> list[int]:
        if max_new_tokens <= 0:
            return []
        bans = tuple(tuple(b) for b in self._translator.banned_ids(banned_words)) if banned_words else ()
        return list(self._submit(Kind.CONTINUE, (decode_row(state, tgt_lang, prefix, max_new_tokens, bans),)))
