"""Greedy text decoding for a batch of rows that each have their own encoder output, target, prefix, budget and bans.

``transformers``' ``generate`` forces one prompt (``[start, lang, *prefix]``) length per batch and one set of
logits processors, so rows of different streams cannot share it. :class:`GreedyBatch` runs the text decoder's
layers itself with a KV cache: prompts are left-padded, each row's positions count from its own first real token,
padded keys and padded encoder frames are masked out, and each row's logits go through the processors that
``generate`` would build for that row alone (``no_repeat_ngram_size``, ``bad_words_ids``, suppressed tokens, …).
Rows drop out of the batch as they finish, so a long row does not make short ones pay for its steps.

It decodes step by step (:meth:`GreedyBatch.step`), so a scheduler can interleave several batches (live rows are not
stuck behind a long file segment). The result per row equals ``generate(num_beams=1)`` on that row alone;
``tests/test_scheduler.py`` checks it on the tiny model.
"""

from __future__ import annotations

import copy
import weakref
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers.cache_utils import DynamicCache, EncoderDecoderCache
from transformers.generation import GenerationConfig, LogitsProcessor, LogitsProcessorList


@dataclass(frozen=True)
class DecodeRow:
    """One row of a batched greedy decode."""

    #: Encoder output of this row alone, (frames, hidden); no padding.
    encoder_states: torch.Tensor
    #: Target-language code (a key of the generation config's ``text_decoder_lang_to_code_id``).
    tgt_lang: str
    #: Ordinary tokens forced after the language token (streaming: what is already committed).
    prefix: tuple[int, ...]
    #: Most tokens to generate after the prefix (EOS included, as in ``generate``).
    max_new_tokens: int
    #: Token sequences this row must never produce (``generate``'s ``bad_words_ids``).
    bad_words_ids: tuple[tuple[int, ...], ...] = ()

    def __post_init__(self) -> None:
        if self.encoder_states.dim() != 2 or self.encoder_states.shape[0] == 0:
            raise ValueError("encoder_states must be (frames, hidden) with at least one frame")
        if self.max_new_tokens < 1:
            raise ValueError("max_new_tokens must be at least 1")


def pad_rows(tensors: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """(frames_i, hidden) tensors → zero-padded (batch, max_frames, hidden) and a (batch, max_frames) bool mask."""
    frames = max(t.shape[0] for t in tensors)
    out = tensors[0].new_zeros((len(tensors), frames, tensors[0].shape[1]))
    mask = torch.zeros((len(tensors), frames), dtype=torch.bool, device=tensors[0].device)
    for i, t in enumerate(tensors):
        out[i, : t.shape[0]] = t
        mask[i, : t.shape[0]] = True
    return out, mask


def additive_mask(allowed: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Bool (batch, queries, keys) → the (batch, 1, queries, keys) additive mask the attention layers take."""
    mask = torch.zeros(allowed.shape, dtype=dtype, device=allowed.device)
    return mask.masked_fill(~allowed, torch.finfo(dtype).min)[:, None]


class GreedyBatch:
    """Greedy decoding of several :class:`DecodeRow` at once over a SeamlessM4T v2 model's text decoder."""

    def __init__(self, model: torch.nn.Module, rows: Sequence[DecodeRow]) -> None:
        if not rows:
            raise ValueError("a batch needs at least one row")
        self._model, self._decoder = model, model.text_decoder
        gen = model.generation_config
        self._pad, self._eos = gen.pad_token_id, gen.eos_token_id
        device = rows[0].encoder_states.device
        prompts = [[gen.decoder_start_token_id, gen.text_decoder_lang_to_code_id[r.tgt_lang], *r.prefix] for r in rows]
        #: Every row's tokens so far (prompt + generated), unpadded, as ``generate``'s processors see them.
        self.sequences = [list(p) for p in prompts]
        self._prompt_lengths = [len(p) for p in prompts]
        self._budgets = [r.max_new_tokens for r in rows]
        self._processors = [_row_processors(model, gen, r, len(p)) for r, p in zip(rows, prompts, strict=True)]
        self._active = list(range(len(rows)))  # original indices of the rows still decoding, in batch order
        self._finished = [False] * len(rows)
        self._encoder, encoder_mask = pad_rows([r.encoder_states for r in rows])
        self._cross = encoder_mask
        width = max(self._prompt_lengths)
        self._pads = torch.tensor([width - n for n in self._prompt_lengths], device=device)  # left padding per row
        ids = torch.full((len(rows), width), self._pad, dtype=torch.long, device=device)
        for i, p in enumerate(prompts):
            ids[i, width - len(p) :] = torch.tensor(p, device=device)
        self._valid = torch.arange(width, device=device)[None, :] >= self._pads[:, None]  # real keys, not padding
        self._next_input = ids
        self._cache = EncoderDecoderCache(DynamicCache(), DynamicCache())
        self.steps = 0

    @property
    def done(self) -> bool:
        return not self._active

    @property
    def batch_size(self) -> int:
        """Rows still decoding (the width of the next forward pass)."""
        return len(self._active)

    def finished(self, row: int) -> bool:
        return self._finished[row]

    def new_tokens(self, row: int) -> list[int]:
        """Tokens generated for ``row`` after its prompt (EOS included when it was produced)."""
        return self.sequences[row][self._prompt_lengths[row] :]

    @torch.inference_mode()
    def step(self) -> None:
        """One forward pass for every active row (the first one reads the whole prompts); finished rows leave."""
        if self.done:
            return
        logits = self._forward(self._next_input)
        chosen = []
        for b, row in enumerate(self._active):
            seq = torch.tensor([self.sequences[row]], device=logits.device)
            scores = logits[b : b + 1]
            # Each processor called directly: LogitsProcessorList.__call__ reads every processor's signature on every
            # call (a tenth of an eight-row tiny step); the processors greedy decoding builds take no extra arguments.
            for processor in self._processors[row]:
                scores = processor(seq, scores)
            token = int(scores.argmax(dim=-1))
            self.sequences[row].append(token)
            chosen.append(token)
            if token == self._eos or len(self.new_tokens(row)) >= self._budgets[row]:
                self._finished[row] = True
        self.steps += 1
        self._next_input = torch.tensor(chosen, device=logits.device)[:, None]
        keep = [b for b, row in enumerate(self._active) if not self._finished[row]]
        if not keep:
            self._active = []
        elif len(keep) < len(self._active):
            self._select(keep)

    @torch.inference_mode()
    def absorb(self, other: GreedyBatch) -> int:
        """Take ``other``'s active rows into this batch (continuous batching: rows that arrive while this batch
        decodes join it after their own prompt pass). Both must have stepped at least once. Shorter KV caches are
        left-padded and shorter encoder outputs right-padded, both masked, so each row computes what it did alone.
        Returns the offset of ``other``'s row numbers here (its row ``r`` becomes ``offset + r``)."""
        if self.steps == 0 or other.steps == 0:
            raise ValueError("both batches must have read their prompts")
        offset = len(self.sequences)
        if other.done:
            return offset
        width = max(self._valid.shape[1], other._valid.shape[1])
        frames = max(self._encoder.shape[1], other._encoder.shape[1])
        mine, theirs = self._cache, other._cache
        for a, b in zip(mine.self_attention_cache.layers, theirs.self_attention_cache.layers, strict=True):
            a.keys = torch.cat([_pad_left(a.keys, width, -2), _pad_left(b.keys, width, -2)])
            a.values = torch.cat([_pad_left(a.values, width, -2), _pad_left(b.values, width, -2)])
        for a, b in zip(mine.cross_attention_cache.layers, theirs.cross_attention_cache.layers, strict=True):
            a.keys = torch.cat([_pad_right(a.keys, frames, -2), _pad_right(b.keys, frames, -2)])
            a.values = torch.cat([_pad_right(a.values, frames, -2), _pad_right(b.values, frames, -2)])
        self._pads = torch.cat([self._pads + width - self._valid.shape[1], other._pads + width - other._valid.shape[1]])
        self._valid = torch.cat([_pad_left(self._valid, width, 1), _pad_left(other._valid, width, 1)])
        self._encoder = torch.cat([_pad_right(self._encoder, frames, 1), _pad_right(other._encoder, frames, 1)])
        self._cross = torch.cat([_pad_right(self._cross, frames, 1), _pad_right(other._cross, frames, 1)])
        self._next_input = torch.cat([self._next_input, other._next_input])
        self.sequences += other.sequences
        self._prompt_lengths += other._prompt_lengths
        self._budgets += other._budgets
        self._processors += other._processors
        self._finished += other._finished
        self._active += [offset + r for r in other._active]
        other._active = []
        return offset

    def _forward(self, ids: torch.Tensor) -> torch.Tensor:
        """(active, new) token ids → float32 logits (active, vocab) at the last position."""
        past = self._cache.get_seq_length()
        if past:
            self._valid = torch.cat([self._valid, torch.ones_like(ids, dtype=torch.bool)], dim=1)
        total, new = self._valid.shape[1], ids.shape[1]
        index = torch.arange(total - new, total, device=ids.device)
        causal = torch.arange(total, device=ids.device)[None, :] <= index[:, None]  # (new, total)
        own = torch.arange(total, device=ids.device)[None, :] == index[:, None]  # padded queries see themselves
        allowed = causal[None] & (self._valid[:, None, :] | own[None])
        dtype = self._encoder.dtype
        positions = self._decoder.embed_positions
        position_ids = (index[None, :] - self._pads[:, None]).clamp(min=0) + positions.padding_idx + 1
        position_ids = position_ids.masked_fill(~self._valid[:, total - new :], positions.padding_idx)
        embeds = self._decoder.embed_tokens(ids)
        hidden = embeds + positions.weights.index_select(0, position_ids.reshape(-1)).view(*ids.shape, -1).to(embeds)
        self_mask = additive_mask(allowed, dtype)
        cross_mask = additive_mask(self._cross[:, None, :].expand(-1, new, -1), dtype)
        for layer in self._decoder.layers:
            hidden = layer(
                hidden, self_mask, self._encoder, encoder_attention_mask=cross_mask, cache=self._cache, use_cache=True
            )
        hidden = self._decoder.layer_norm(hidden[:, -1:])
        return self._model.lm_head(hidden)[:, -1].float()

    def _select(self, keep: list[int]) -> None:
        """Drop finished rows from every batched tensor and from the cache."""
        index = torch.tensor(keep, dtype=torch.long, device=self._encoder.device)
        self._cache.batch_select_indices(index)
        self._encoder, self._cross = self._encoder[index], self._cross[index]
        self._valid, self._pads, self._next_input = self._valid[index], self._pads[index], self._next_input[index]
        self._active = [self._active[b] for b in keep]


def _pad_left(t: torch.Tensor, size: int, dim: int) -> torch.Tensor:
    """Zeros (or False) before ``t`` along ``dim`` up to ``size``."""
    shape = list(t.shape)
    shape[dim] = size - t.shape[dim]
    return torch.cat([t.new_zeros(shape), t], dim=dim) if shape[dim] else t


def _pad_right(t: torch.Tensor, size: int, dim: int) -> torch.Tensor:
    """Zeros (or False) after ``t`` along ``dim`` up to ``size``."""
    shape = list(t.shape)
    shape[dim] = size - t.shape[dim]
    return torch.cat([t, t.new_zeros(shape)], dim=dim) if shape[dim] else t


def _row_processors(
    model: torch.nn.Module, gen: GenerationConfig, row: DecodeRow, prompt_length: int
) -> LogitsProcessorList:
    """The logits processors ``generate(num_beams=1, max_new_tokens=…, bad_words_ids=…)`` builds for this row."""
    config = copy.copy(gen)  # shallow: only top-level fields change, and the language maps are large
    config.update(num_beams=1, max_new_tokens=row.max_new_tokens, bad_words_ids=[list(b) for b in row.bad_words_ids])
    if not row.bad_words_ids:
        config.bad_words_ids = None
    config.max_length = prompt_length + row.max_new_tokens
    if config.min_new_tokens is not None:
        config.min_length = prompt_length + config.min_new_tokens
    device = row.encoder_states.device
    config.suppress_tokens = None  # applied by one mask per model instead (see SuppressByMask)
    model._prepare_special_tokens(config, kwargs_has_attention_mask=True, device=device)
    processors = model._get_logits_processor(config, input_ids_seq_length=prompt_length, device=device, model_kwargs={})
    if gen.suppress_tokens:
        processors.append(SuppressByMask(_suppress_mask(model, device)))
    return processors


class SuppressByMask(LogitsProcessor):
    """What ``SuppressTokensLogitsProcessor`` does, with a mask built once per model.

    Why: the library's processor copies the token list into a tensor for every row and rebuilds its vocabulary mask
    with ``isin`` (a sort over the whole vocabulary) on every call, once per row per step; with a long suppress list
    that was most of an eight-row step's time. Every processor greedy decoding builds only sets scores to -inf, so
    applying this one last gives the same scores as the library's order.
    """

    def __init__(self, mask: torch.Tensor) -> None:
        self._mask = mask

    def __call__(self, input_ids: torch.LongTensor, scores: torch.Tensor) -> torch.Tensor:
        return scores.masked_fill(self._mask[: scores.shape[-1]], -float("inf"))


_MASKS: weakref.WeakKeyDictionary[torch.nn.Module, tuple[object, torch.Tensor]] = weakref.WeakKeyDictionary()


def _suppress_mask(model: torch.nn.Module, device: torch.device) -> torch.Tensor:
    """The model's suppressed tokens as a (vocab,) bool mask, built again only when its generation config's list
    is replaced or changes length (held only as long as the model is)."""
    tokens = model.generation_config.suppress_tokens
    key = (id(tokens), len(tokens), device)
    cached = _MASKS.get(model)
    if cached is None or cached[0] != key:
        vocab = model.config.vocab_size
        ids = torch.tensor(tokens, dtype=torch.long, device=device)
        mask = torch.zeros(vocab, dtype=torch.bool, device=device).index_fill_(0, ids[(ids >= 0) & (ids < vocab)], True)
        cached = _MASKS[model] = (key, mask)
    return cached[1]
