"""The calls an :class:`engine.scheduler.InferenceScheduler` queues, and how a group of them runs.

Speech encodes run batched only for inputs of the same length, and speech synthesis one call at a time:
SeamlessM4T v2's speech encoder, text-to-unit model and vocoder are not invariant to padding (a padded row's
encoder output moves by up to 1.5 and its units and waveform change on the tiny model), and the vocoder's input is
padded even for same-shaped calls, since each row's unit count comes from its own duration prediction. Only
unpadded passes give each row what it would get alone. Those stages are bound by compute on a CPU, where batching
saves little; the bandwidth-bound text decoder is where batching pays, and it batches rows of any shape.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np
import torch

from engine.audio import SAMPLE_RATE_HZ
from engine.batched_decoding import DecodeRow
from engine.translator import HEAD_TOKENS, Encoded, Translator, length_mask


class Kind(enum.Enum):
    """Calls of one kind can share a model pass."""

    ENCODE = "encode"  # payload: (speech features, their mask) from speech_features(), or (text, src_lang)
    CONTINUE = "continue_text"  # payload: (DecodeRow,)
    SPEAK = "speak"  # payload: (Encoded, tgt_lang, full token sequence, new_count, speaker_id)


class Priority(enum.IntEnum):
    """Lower runs first: live steps and text requests (a person waits for both) before file segments."""

    LIVE = 0
    FILE = 1


class SchedulerBusyError(RuntimeError):
    """The scheduler's queue is full; the message is a plain sentence for the person who asked."""


class SchedulerClosedError(RuntimeError):
    """The scheduler was closed before or while the call waited."""


@dataclass(frozen=True)
class CallTiming:
    """How one call went through the scheduler."""

    #: Seconds from submission until the worker started its model pass (the caller's sign of falling behind).
    queue_wait_s: float
    #: Seconds the model pass (or, for decodes, the batch until this row finished) took.
    run_s: float
    #: Rows in the pass this call shared (at its start, for decodes).
    batch_rows: int


@dataclass(eq=False)
class Call:
    """One queued call; mutable only in ``started_s``, which the worker sets."""

    kind: Kind
    payload: tuple
    key: object  # the session (round-robin unit)
    priority: Priority
    enqueued_s: float  # time.perf_counter() at submission
    future: Future
    started_s: float = 0.0

    def shape_key(self) -> object:
        """Calls with equal keys batch without padding."""
        if self.kind is Kind.ENCODE:
            features, other = self.payload
            return ("text", other) if isinstance(features, str) else ("speech", features.shape[1])
        return id(self)  # speech synthesis always runs alone (see the module docstring)


def pick_calls(
    pending: Sequence[Call], decoding: set[Priority], last_served: dict[object, int], limit: int
) -> list[Call]:
    """The next calls to run together, chosen from ``pending`` (oldest first).

    The most urgent priority wins; within it, the session served longest ago (``last_served``: key → turn number;
    never served counts as earliest) picks the kind, and calls of that kind fill up to ``limit`` rows: one per
    session in round-robin order first, then further calls of the same sessions. Decode calls of a priority in
    ``decoding`` (its batch in flight is full) wait until that batch has room.
    """
    ready = [c for c in pending if c.kind is not Kind.CONTINUE or c.priority not in decoding]
    if not ready:
        return []

    def turn(c: Call) -> tuple:
        return (c.priority, last_served.get(c.key, -1), c.enqueued_s)

    first = min(ready, key=turn)
    same = sorted((c for c in ready if c.kind is first.kind and c.priority == first.priority), key=turn)
    chosen, keys = [], set()
    for c in same:
        if c.key not in keys and len(chosen) < limit:
            chosen.append(c)
            keys.add(c.key)
    return chosen + [c for c in same if c not in chosen][: limit - len(chosen)]


def speech_features(translator: Translator, audio: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """One 16 kHz waveform → its (1, frames, 160) features and (1, frames) mask, as ``Translator.encode_speech``
    computes them. Numpy work: the caller's thread does it, so the worker only runs the model."""
    features = translator.loaded.feature_extractor(
        [np.asarray(audio, dtype=np.float32)], sampling_rate=SAMPLE_RATE_HZ, return_tensors="pt", padding=True
    )
    return features["input_features"], features["attention_mask"]


def decode_row(
    state: Encoded, tgt_lang: str, prefix: Sequence[int], max_new_tokens: int, banned_ids: tuple[tuple[int, ...], ...]
) -> DecodeRow:
    """The decode row for one encoder output of batch size one (its own frames only)."""
    mask = state.attention_mask
    frames = state.hidden_states.shape[1] if mask is None else int(mask[0].sum())
    return DecodeRow(state.hidden_states[0, :frames], tgt_lang, tuple(prefix), max_new_tokens, banned_ids)


@torch.inference_mode()
def run_encode_group(translator: Translator, payloads: Sequence[tuple]) -> list[Encoded]:
    """Same-length speech features (or same-language texts) → one :class:`Encoded` per row, of batch size one."""
    if isinstance(payloads[0][0], str):
        encoded = translator.encode_text([p[0] for p in payloads], payloads[0][1])
        return [_row(encoded, i) for i in range(len(payloads))]
    started = time.perf_counter()
    loaded, model = translator.loaded, translator.loaded.model
    features = torch.cat([p[0] for p in payloads]).to(loaded.device, loaded.dtype)
    mask = torch.cat([p[1] for p in payloads]).to(loaded.device)
    hidden = model.speech_encoder(input_features=features, attention_mask=mask).last_hidden_state
    lengths = model._compute_sub_sample_lengths_from_attention_mask(mask)
    seconds = time.perf_counter() - started
    return [_row(Encoded(hidden, length_mask(hidden, lengths), seconds), i) for i in range(len(payloads))]


def _row(encoded: Encoded, i: int) -> Encoded:
    """Row ``i`` of a batch, cut to its own frames (what encoding it alone returns)."""
    mask = encoded.attention_mask
    frames = encoded.hidden_states.shape[1] if mask is None else int(mask[i].sum())
    hidden = encoded.hidden_states[i : i + 1, :frames]
    row_mask = None if mask is None else mask[i : i + 1, :frames]
    return Encoded(hidden, row_mask, encoded.seconds)


def run_speak_group(translator: Translator, payloads: Sequence[tuple]) -> list[tuple[np.ndarray, tuple[int, ...]]]:
    """Speak calls of the same shape (encoder frames, target, lengths, voice) → (16 kHz waveform, units) per row.

    ``full`` is a decoded sequence (``[start, lang, *committed, eos]`` when streaming); the phrase spoken is its
    last ``new_count`` tokens before the final one, read from decoder states that saw everything before them (as
    :meth:`Translator.speak`). With ``new_count = len(full) - 3`` it is the whole text (as
    :meth:`Translator.decode`).
    """
    _, tgt_lang, _, new_count, speaker_id = payloads[0]
    device = payloads[0][0].hidden_states.device
    full = torch.tensor([p[2] for p in payloads], device=device)
    masks = [p[0].attention_mask for p in payloads]
    stacked = Encoded(
        torch.cat([p[0].hidden_states for p in payloads]),
        None if any(m is None for m in masks) else torch.cat(masks),
        0.0,
    )
    states = translator.decoder_states(stacked, full)
    first = full.shape[1] - 1 - new_count
    phrase_states = torch.cat([states[:, :HEAD_TOKENS], states[:, first:]], dim=1)
    phrase = torch.cat([full[:, :HEAD_TOKENS], full[:, first:]], dim=1)
    speech = translator.synthesize(phrase_states, phrase, tgt_lang, speaker_id)
    return list(zip(speech.waveforms, speech.units, strict=True))
