"""Whole inputs through the shared :class:`engine.scheduler.InferenceScheduler`: file uploads and text requests.

Why: the file and text paths (``engine.file_translation``, ``engine.mitigation``) call the translator's batch API
(encode, decode, translate). :class:`ScheduledTranslator` offers that API with every model pass queued on the
scheduler, so an upload or a text request waits for its turn among live streams instead of running beside them on
the same cores, and the sentences of one request decode as rows of one batch. Each row gets what it would get
alone (greedy), as for live steps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from engine.scheduler_calls import CallTiming, Kind, Priority, decode_row, speech_features
from engine.tasks import Task
from engine.translator import HEAD_TOKENS, Encoded, TranslationResult, run_task

if TYPE_CHECKING:
    from engine.scheduler import InferenceScheduler


class ScheduledTranslator:
    """The part of :class:`engine.translator.Translator` the file and text paths use, through the scheduler, as
    one session (``key``) of ``priority``. One per request; it holds no model state."""

    def __init__(self, scheduler: InferenceScheduler, key: object, priority: Priority) -> None:
        self._scheduler, self._key, self._priority = scheduler, key, priority
        self._translator = scheduler.translator

    # ---- no model call: the translator's own --------------------------------------------------------------------

    def check_target(self, tgt_lang: str, speech_output: bool) -> str:
        return self._translator.check_target(tgt_lang, speech_output)

    def check_source_text(self, src_lang: str) -> str:
        return self._translator.check_source_text(src_lang)

    def banned_ids(self, words: Sequence[str]) -> list[list[int]]:
        return self._translator.banned_ids(words)

    # ---- model calls, queued ------------------------------------------------------------------------------------

    def encode_speech(self, waveforms: Sequence[np.ndarray]) -> Encoded:
        payloads = [speech_features(self._translator, w) for w in waveforms]
        return stack([encoded for encoded, _ in self._submit(Kind.ENCODE, payloads)])

    def encode_text(self, texts: Sequence[str], src_lang: str) -> Encoded:
        return stack([encoded for encoded, _ in self._submit(Kind.ENCODE, [(str(t), src_lang) for t in texts])])

    def decode(
        self,
        encoded: Encoded,
        task: Task,
        tgt_lang: str,
        speaker_id: int | None = None,
        bad_words_ids: Sequence[Sequence[int]] = (),
    ) -> list[TranslationResult]:
        """:meth:`Translator.decode` for greedy decoding: the rows decode in one batch; speech is made per row."""
        items = [encoded.item(i) for i in range(encoded.hidden_states.shape[0])]
        budgets = self._translator.token_budgets(encoded, task)
        bans = tuple(tuple(b) for b in bad_words_ids)
        rows = [(decode_row(item, tgt_lang, (), budget, bans),) for item, budget in zip(items, budgets, strict=True)]
        head = tuple(self._translator.decoder_head(tgt_lang))
        decoded = self._submit(Kind.CONTINUE, rows)
        timings = {
            "encoder": encoded.seconds,
            "text_decoder": max(t.run_s for _, t in decoded),
            "queue": max(t.queue_wait_s for _, t in decoded),
        }
        decode = self._translator.loaded.tokenizer.decode
        results = [
            TranslationResult(task, tgt_lang, decode(list(s), skip_special_tokens=True).strip(), s, timings_s=timings)
            for s in ((*head, *new) for new, _ in decoded)
        ]
        return self.speak_decoded(encoded, results, speaker_id) if task.speech_output else results

    def speak_decoded(
        self, encoded: Encoded, results: Sequence[TranslationResult], speaker_id: int | None = None
    ) -> list[TranslationResult]:
        """:meth:`Translator.speak_decoded`, one queued speech call per row."""
        items = [encoded.item(i) for i in range(encoded.hidden_states.shape[0])]
        payloads = [
            (item, r.tgt_lang, r.token_ids, len(r.token_ids) - 1 - HEAD_TOKENS, speaker_id)
            for item, r in zip(items, results, strict=True)
        ]
        spoken = self._submit(Kind.SPEAK, payloads)
        spent = {"speech": sum(t.run_s for _, t in spoken), "speech_queue": max(t.queue_wait_s for _, t in spoken)}
        return [
            replace(r, waveform=wave, units=units, timings_s=r.timings_s | spent)
            for r, ((wave, units), _) in zip(results, spoken, strict=True)
        ]

    def translate(
        self,
        inputs: Sequence[np.ndarray | str],
        task: Task,
        tgt_lang: str,
        src_lang: str | None = None,
        speaker_id: int | None = None,
    ) -> list[TranslationResult]:
        """:meth:`Translator.translate` (greedy), each input as it would be alone."""
        return run_task(self, inputs, task, tgt_lang, src_lang, speaker_id)

    def _submit(self, kind: Kind, payloads: Sequence[tuple]) -> list[tuple[object, CallTiming]]:
        return self._scheduler.submit_many(kind, payloads, self._key, self._priority)


def stack(rows: Sequence[Encoded]) -> Encoded:
    """Encoder outputs of batch size one → one zero-padded batch with its mask, as the translator's encoders return
    several inputs; :meth:`Encoded.item` gives each row back unchanged."""
    frames = max(r.hidden_states.shape[1] for r in rows)
    hidden, masks = [], []
    for r in rows:
        missing = frames - r.hidden_states.shape[1]
        mask = r.attention_mask
        if mask is None:
            mask = torch.ones(r.hidden_states.shape[:2], dtype=r.hidden_states.dtype, device=r.hidden_states.device)
        hidden.append(F.pad(r.hidden_states, (0, 0, 0, missing)))
        masks.append(F.pad(mask, (0, missing)))
    return Encoded(torch.cat(hidden), torch.cat(masks), max(r.seconds for r in rows))
