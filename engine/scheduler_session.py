"""One session's view of the shared :class:`engine.scheduler.InferenceScheduler`: a ``StreamingBackend`` that knows
who is asking (the round-robin unit), how urgent it is, and how long its calls waited in the queue."""

from __future__ import annotations

import collections
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from engine.batched_decoding import DecodeRow
from engine.languages import UnknownLanguageError
from engine.scheduler_calls import CallTiming, Kind, Priority, speech_features
from engine.tasks import Task
from engine.translator import HEAD_TOKENS, Encoded, TranslationResult

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

    # ---- whole inputs ---------------------------------------------------------------------------------------------

    def translate_one(
        self,
        item: np.ndarray | str,
        task: Task,
        tgt_lang: str,
        src_lang: str | None = None,
        speaker_id: int | None = None,
        banned_words: Sequence[str] = (),
    ) -> TranslationResult:
        """One input as :meth:`Translator.translate` treats it alone (greedy), each step through the queue."""
        if task is Task.ASR:
            if src_lang is None:
                raise UnknownLanguageError("Speech recognition needs the spoken language (src_lang).")
            tgt_lang = src_lang
        tgt = self._translator.check_target(tgt_lang, task.speech_output)
        if task.speech_input:
            encoded = self.encode(item)
        else:
            src = self._translator.check_source_text(src_lang)
            encoded = self._submit(Kind.ENCODE, (str(item), src))
        budget = self._translator.options.max_new_tokens or self._gen.max_new_tokens
        new = self._decode(encoded, tgt, (), budget or self._gen.max_length - HEAD_TOKENS, banned_words)
        sequence = (*self._translator.decoder_head(tgt), *new)
        waveform = units = None
        if task.speech_output:
            payload = (encoded, tgt, sequence, len(sequence) - 1 - HEAD_TOKENS, speaker_id)
            waveform, units = self._submit(Kind.SPEAK, payload)
        text = self._translator.loaded.tokenizer.decode(list(sequence), skip_special_tokens=True).strip()
        return TranslationResult(task, tgt, text, sequence, waveform, units)

    def _decode(self, state: Encoded, tgt_lang: str, prefix, max_new_tokens: int, banned_words) -> list[int]:
        if max_new_tokens <= 0:
            return []
        bans = tuple(tuple(b) for b in self._translator.banned_ids(banned_words)) if banned_words else ()
        mask = state.attention_mask
        frames = state.hidden_states.shape[1] if mask is None else int(mask[0].sum())
        row = DecodeRow(state.hidden_states[0, :frames], tgt_lang, tuple(prefix), max_new_tokens, bans)
        return list(self._submit(Kind.CONTINUE, (row,)))
