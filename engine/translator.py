"""One API for the five SeamlessM4T v2 tasks, built from the model's parts.

Data flow, top to bottom (each step a method, so streaming can reuse them one by one):

    speech → features → speech encoder ┐
                                        ├→ text decoder (generate) → text
    text → tokens → text encoder ───────┘                            └→ decoder states → text-to-unit → units
                                                                                        → vocoder → 16 kHz speech

``transformers``' own ``SeamlessM4Tv2Model.generate`` runs the speech encoder twice for speech→speech (once inside
text generation, once again to feed the text-to-unit model). Here the encoder output is computed once and handed to
every later step; ``tests/test_translator.py`` proves that the outputs are identical to ``generate``'s.

The shared model's ``current_modality`` is never changed (it stays "text"): encoder outputs and encoder-level
attention masks are passed in explicitly, so concurrent requests of different modalities cannot race on it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from transformers.generation import GenerationMixin
from transformers.modeling_outputs import BaseModelOutput

from engine.audio import SAMPLE_RATE_HZ
from engine.banned_words import bad_words_ids
from engine.languages import Capability, UnknownLanguageError, get_language
from engine.models import LoadedModel
from engine.options import EngineOptions
from engine.presets import text_token_budget
from engine.tasks import Task


@dataclass(frozen=True)
class TranslationResult:
    """What one input became. ``timings_s`` covers the whole batch the input was part of."""

    task: Task
    tgt_lang: str
    text: str
    token_ids: tuple[int, ...]
    waveform: np.ndarray | None = None  # float32, mono, ``sample_rate_hz``
    units: tuple[int, ...] | None = None  # vocoder units that made the waveform (offset removed, no padding)
    sample_rate_hz: int = SAMPLE_RATE_HZ
    timings_s: dict[str, float] = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        return 0.0 if self.waveform is None else self.waveform.shape[0] / self.sample_rate_hz


@dataclass(frozen=True)
class Encoded:
    """Encoder output for a batch, reusable by several decodes (e.g. translation and transcript).

    ``hidden_states`` is (batch, frames, hidden); ``attention_mask`` is (batch, frames) at the encoder's own frame
    rate (for speech: after the adaptor's subsampling).
    """

    hidden_states: torch.Tensor
    attention_mask: torch.Tensor | None
    seconds: float

    def item(self, index: int) -> Encoded:
        """One item of the batch, without its padding frames (batch of one)."""
        hidden = self.hidden_states[index : index + 1]
        if self.attention_mask is None:
            return Encoded(hidden, None, self.seconds)
        frames = int(self.attention_mask[index].sum())
        return Encoded(hidden[:, :frames], self.attention_mask[index : index + 1, :frames], self.seconds)


@dataclass(frozen=True)
class Speech:
    """Vocoder output for a batch: one waveform and unit sequence per item, plus the raw text-to-unit argmax."""

    waveforms: list[np.ndarray]
    units: list[tuple[int, ...]]
    raw_unit_ids: torch.Tensor  # (batch, unit frames), as transformers' ``unit_sequences``
    t2u_seconds: float
    vocoder_seconds: float


#: Generated sequences start with these many layout tokens: the decoder start token and the target-language token.
HEAD_TOKENS = 2


class Translator:
    """Speech and text translation with one loaded SeamlessM4T v2 model; also the streaming sessions'
    :class:`engine.backend.StreamingBackend` on that model."""

    def __init__(self, loaded: LoadedModel, options: EngineOptions | None = None) -> None:
        self.loaded = loaded
        self.options = options or EngineOptions(model=loaded.name)
        self._model = loaded.model
        self._gen = loaded.model.generation_config
        self._tokenizer = loaded.tokenizer
        self._specials = frozenset(loaded.tokenizer.all_special_ids)
        self._word_starts: dict[int, bool] = {}

    # ---- validation -------------------------------------------------------------------------------------------

    def check_target(self, tgt_lang: str, speech_output: bool) -> str:
        """Resolve ``tgt_lang`` and check that this model can produce it; returns the code."""
        capability = Capability.SPEECH_OUTPUT if speech_output else Capability.TEXT
        code = get_language(tgt_lang, capability).code
        available = self.loaded.speech_languages if speech_output else self.loaded.text_languages
        if code not in available:
            kind = "speak" if speech_output else "write"
            raise UnknownLanguageError(
                f"The loaded model cannot {kind} {code}. It can: {', '.join(sorted(available))}."
            )
        return code

    def check_source_text(self, src_lang: str) -> str:
        code = get_language(src_lang, Capability.TEXT).code
        if code not in self.loaded.text_languages:
            raise UnknownLanguageError(f"The loaded model does not read {code} text.")
        return code

    # ---- the steps --------------------------------------------------------------------------------------------

    @torch.inference_mode()
    def encode_speech(self, waveforms: Sequence[np.ndarray]) -> Encoded:
        """16 kHz mono float32 waveforms → speech encoder output (run once per input)."""
        started = time.perf_counter()
        features = self.loaded.feature_extractor(
            [np.asarray(w, dtype=np.float32) for w in waveforms],
            sampling_rate=SAMPLE_RATE_HZ,
            return_tensors="pt",
            padding=True,
        )
        input_features = features["input_features"].to(self.loaded.device, self.loaded.dtype)
        mask = features["attention_mask"].to(self.loaded.device)
        hidden = self._model.speech_encoder(input_features=input_features, attention_mask=mask).last_hidden_state
        lengths = self._model._compute_sub_sample_lengths_from_attention_mask(mask).to(hidden.device)
        return Encoded(hidden, length_mask(hidden, lengths), time.perf_counter() - started)

    @torch.inference_mode()
    def encode_text(self, texts: Sequence[str], src_lang: str) -> Encoded:
        started = time.perf_counter()
        tokens = self.loaded.tokenizer(list(texts), src_lang=src_lang, return_tensors="pt", padding=True)
        input_ids = tokens["input_ids"].to(self.loaded.device)
        mask = tokens["attention_mask"].to(self.loaded.device)
        hidden = self._model.text_encoder(input_ids=input_ids, attention_mask=mask).last_hidden_state
        return Encoded(hidden, mask, time.perf_counter() - started)

    def token_budgets(self, encoded: Encoded, task: Task) -> list[int]:
        """Most new tokens for each of ``encoded``'s rows: the configured (or the model's) bound, and for text input
        at most :func:`engine.presets.text_token_budget` of the row's own length (so a row decodes the same in any
        batch)."""
        budget = self.options.max_new_tokens or self._gen.max_new_tokens or self._gen.max_length - HEAD_TOKENS
        rows = encoded.hidden_states.shape[0]
        if task.speech_input or encoded.attention_mask is None:
            return [budget] * rows
        return [min(budget, text_token_budget(int(n))) for n in encoded.attention_mask.sum(1)]

    def generation_kwargs(self) -> dict:
        """Decoding settings from the options; unset ones fall back to the model's generation config."""
        kwargs = {}
        if self.options.num_beams is not None:
            kwargs["num_beams"] = self.options.num_beams
        if self.options.max_new_tokens is not None:
            kwargs["max_new_tokens"] = self.options.max_new_tokens
        return kwargs

    @torch.inference_mode()
    def generate_text(
        self, encoded: Encoded, tgt_lang: str, prefix: Sequence[int] = (), **generate_kwargs
    ) -> torch.Tensor:
        """Autoregressive text decoding from encoder output. Returns token ids (batch, length) that start with the
        decoder start token and the target-language token, as ``generate`` does. ``prefix`` forces the first
        generated tokens (streaming: what is already committed), for every item of the batch."""
        batch = encoded.hidden_states.shape[0]
        lang_id = self._gen.text_decoder_lang_to_code_id[tgt_lang]
        decoder_input_ids = torch.tensor(
            [[lang_id, *prefix]] * batch, dtype=torch.long, device=encoded.hidden_states.device
        )
        output = GenerationMixin.generate(
            self._model,
            encoder_outputs=BaseModelOutput(last_hidden_state=encoded.hidden_states),
            attention_mask=encoded.attention_mask,
            decoder_input_ids=decoder_input_ids,
            **(self.generation_kwargs() | generate_kwargs),
        )
        return output if isinstance(output, torch.Tensor) else output.sequences

    @torch.inference_mode()
    def decoder_states(self, encoded: Encoded, sequences: torch.Tensor) -> torch.Tensor:
        """Last-layer text decoder states for ``sequences`` without its final token: what the text-to-unit model
        reads. (batch, length - 1, hidden)."""
        return self._model.text_decoder(
            input_ids=sequences[:, :-1],
            encoder_hidden_states=encoded.hidden_states,
            encoder_attention_mask=encoded.attention_mask,
        ).last_hidden_state

    @torch.inference_mode()
    def synthesize(
        self, states: torch.Tensor, sequences: torch.Tensor, tgt_lang: str, speaker_id: int | None = None
    ) -> Speech:
        """Decoder states of generated text → units (non-autoregressive text-to-unit) → waveform (vocoder)."""
        model, pad = self._model, self._gen.pad_token_id
        started = time.perf_counter()
        text_ids = sequences[:, :-1]
        t2u_mask = length_mask(states, (text_ids != pad).sum(1))
        # The text-to-unit model reads the text without decoder-start and language tokens, EOS turned to padding.
        t2u_ids = sequences[:, 2:-1].masked_fill(sequences[:, 2:-1] == self._gen.eos_token_id, pad)
        subwords = model._indices_to_subwords(t2u_ids)
        char_counts = model._count_character_length_in_subword(t2u_ids, subwords, pad_token_id=pad)
        edge = char_counts.new_zeros((char_counts.shape[0], 1))  # no characters for the language and EOS slots
        char_counts = torch.cat([edge, char_counts, edge], dim=1)
        char_ids = model._get_char_input_ids(t2u_ids, subwords, char_counts, pad_token_id=pad)
        t2u = model.t2u_model(
            inputs_embeds=states, char_input_ids=char_ids, char_count_per_id=char_counts, attention_mask=t2u_mask
        )
        raw_units = t2u[0].argmax(dim=-1)
        valid = (raw_units != model.config.t2u_eos_token_id) & t2u[1].bool()
        unit_pad = model.config.t2u_pad_token_id
        # As transformers' generate: EOS and padding become the pad id, which the vocoder reads as is; every other
        # id loses the offset of the control symbols.
        vocoder_ids = raw_units.masked_fill(~valid, unit_pad)
        vocoder_ids = torch.where(vocoder_ids == unit_pad, vocoder_ids, vocoder_ids - model.config.vocoder_offset)
        t2u_seconds = time.perf_counter() - started

        started = time.perf_counter()
        batch = raw_units.shape[0]
        lang = torch.full((batch, 1), self._gen.vocoder_lang_code_to_id[tgt_lang], device=raw_units.device)
        speaker = torch.full(
            (batch, 1), self.options.speaker_id if speaker_id is None else speaker_id, device=raw_units.device
        )
        waveform, lengths = model.vocoder(input_ids=vocoder_ids, speaker_id=speaker, lang_id=lang)
        lengths = lengths.reshape(-1)
        waveforms = [waveform[i, : int(lengths[i])].float().cpu().numpy() for i in range(batch)]
        units = [tuple(int(u) for u in vocoder_ids[i][valid[i]]) for i in range(batch)]
        return Speech(waveforms, units, raw_units, t2u_seconds, time.perf_counter() - started)

    # ---- engine.backend.StreamingBackend ------------------------------------------------------------------------

    def encode(self, audio: np.ndarray) -> Encoded:
        return self.encode_speech([audio])

    def continue_text(
        self,
        state: Encoded,
        tgt_lang: str,
        prefix: Sequence[int],
        max_new_tokens: int,
        banned_words: Sequence[str] = (),
    ) -> list[int]:
        if max_new_tokens <= 0:
            return []
        kwargs = {}
        if banned_words:
            kwargs["bad_words_ids"] = self.banned_ids(banned_words)
            if not kwargs["bad_words_ids"]:
                del kwargs["bad_words_ids"]
        sequence = self.generate_text(
            state, tgt_lang, prefix=prefix, max_new_tokens=max_new_tokens, num_beams=1, **kwargs
        )[0].tolist()
        return self.without_trailing_specials(sequence[HEAD_TOKENS + len(prefix) :])

    def speak(
        self, state: Encoded, tgt_lang: str, committed: Sequence[int], new_count: int, speaker_id: int | None
    ) -> np.ndarray:
        head = self.decoder_head(tgt_lang)
        device = state.hidden_states.device
        eos = self._gen.eos_token_id
        full = torch.tensor([[*head, *committed, eos]], device=device)
        states = self.decoder_states(state, full)  # one state per input position: head + committed
        first = len(head) + len(committed) - new_count
        phrase_states = torch.cat([states[:, : len(head)], states[:, first:]], dim=1)
        phrase = torch.tensor([[*head, *committed[len(committed) - new_count :], eos]], device=device)
        return self.synthesize(phrase_states, phrase, tgt_lang, speaker_id).waveforms[0]

    def decoder_head(self, tgt_lang: str) -> list[int]:
        """The ``HEAD_TOKENS`` every generated sequence starts with: the decoder start and the language token."""
        return [self._gen.decoder_start_token_id, self._gen.text_decoder_lang_to_code_id[tgt_lang]]

    def without_trailing_specials(self, tokens: Sequence[int]) -> list[int]:
        """``tokens`` without the EOS and padding that end a generated sequence."""
        tokens = list(tokens)
        while tokens and tokens[-1] in self._specials:
            tokens.pop()
        return tokens

    def starts_word(self, token_id: int) -> bool:
        """SentencePiece marks word starts with "▁"; special tokens stand alone."""
        if token_id not in self._word_starts:
            piece = self._tokenizer.convert_ids_to_tokens(token_id)
            self._word_starts[token_id] = piece.startswith("▁") or token_id in self._specials
        return self._word_starts[token_id]

    def detokenize(self, tokens: Sequence[int]) -> str:
        return self._tokenizer.decode(list(tokens), skip_special_tokens=True)

    def banned_ids(self, words: Sequence[str]) -> list[list[int]]:
        """``bad_words_ids`` for ``generate`` that ban ``words`` in every case and spacing variant."""
        return bad_words_ids(self._tokenizer, words)

    # ---- the tasks --------------------------------------------------------------------------------------------

    def translate(
        self,
        inputs: Sequence[np.ndarray | str],
        task: Task,
        tgt_lang: str,
        src_lang: str | None = None,
        speaker_id: int | None = None,
    ) -> list[TranslationResult]:
        """Run ``task`` on a batch of inputs (16 kHz waveforms for speech tasks, strings for text tasks)."""
        return run_task(self, inputs, task, tgt_lang, src_lang, speaker_id)

    def decode(
        self, encoded: Encoded, task: Task, tgt_lang: str, speaker_id: int | None = None, **generate_kwargs
    ) -> list[TranslationResult]:
        """Everything after the encoder, for an already validated target language. ``generate_kwargs`` go to
        :meth:`generate_text` (the safety stage re-decodes with ``bad_words_ids``)."""
        budgets = self.token_budgets(encoded, task)
        started = time.perf_counter()
        sequences = self.generate_text(encoded, tgt_lang, max_new_tokens=max(budgets), **generate_kwargs)
        sequences = cap_rows(sequences, budgets, self._gen.pad_token_id)
        timings = {"encoder": encoded.seconds, "text_decoder": time.perf_counter() - started}
        texts = self.loaded.tokenizer.batch_decode(sequences, skip_special_tokens=True)
        results = [
            TranslationResult(
                task=task,
                tgt_lang=tgt_lang,
                text=texts[i].strip(),
                token_ids=tuple(int(t) for t in sequences[i]),
                timings_s=dict(timings),
            )
            for i in range(len(texts))
        ]
        return self.speak_decoded(encoded, results, speaker_id) if task.speech_output else results

    @torch.inference_mode()
    def speak_decoded(
        self, encoded: Encoded, results: Sequence[TranslationResult], speaker_id: int | None = None
    ) -> list[TranslationResult]:
        """``results`` (one per row of ``encoded``, decoded from it) with their speech. Separate from
        :meth:`decode` so that the text path can show a translation before its speech is made."""
        pad = self._gen.pad_token_id
        longest = max(len(r.token_ids) for r in results)
        rows = [[*r.token_ids, *[pad] * (longest - len(r.token_ids))] for r in results]
        sequences = torch.tensor(rows, device=encoded.hidden_states.device)
        started = time.perf_counter()
        states = self.decoder_states(encoded, sequences)
        states_s = time.perf_counter() - started
        speech = self.synthesize(states, sequences, results[0].tgt_lang, speaker_id)
        spent = {"text_to_unit": speech.t2u_seconds, "vocoder": speech.vocoder_seconds}
        return [
            replace(
                r,
                waveform=speech.waveforms[i],
                units=speech.units[i],
                timings_s=r.timings_s | spent | {"text_decoder": r.timings_s.get("text_decoder", 0.0) + states_s},
            )
            for i, r in enumerate(results)
        ]

    def speech_to_speech(self, audio: np.ndarray, tgt_lang: str, speaker_id: int | None = None) -> TranslationResult:
        return self.translate([audio], Task.S2ST, tgt_lang, speaker_id=speaker_id)[0]

    def speech_to_text(self, audio: np.ndarray, tgt_lang: str) -> TranslationResult:
        return self.translate([audio], Task.S2TT, tgt_lang)[0]


def cap_rows(sequences: torch.Tensor, budgets: Sequence[int], pad_id: int) -> torch.Tensor:
    """Generated sequences with row i cut after the head and ``budgets[i]`` new tokens, as generating that row alone
    with that budget gives (greedy decoding is causal), padded to the longest kept row."""
    kept = [min(sequences.shape[1], HEAD_TOKENS + b) for b in budgets]
    capped = sequences[:, : max(kept)].clone()
    for row, length in enumerate(kept):
        capped[row, length:] = pad_id
    return capped


def run_task(
    engine,
    inputs: Sequence[np.ndarray | str],
    task: Task,
    tgt_lang: str,
    src_lang: str | None = None,
    speaker_id: int | None = None,
) -> list[TranslationResult]:
    """:meth:`Translator.translate`'s steps (validate, encode, decode) on any ``engine`` with the translator's
    ``check_target``, ``check_source_text``, ``encode_speech``, ``encode_text`` and ``decode``: the translator itself,
    or :class:`engine.scheduler_requests.ScheduledTranslator`, which runs them through the inference scheduler."""
    task = Task(task)
    if not inputs:
        return []
    if task is Task.ASR:
        if src_lang is None:
            raise UnknownLanguageError("Speech recognition needs the spoken language (src_lang).")
        tgt_lang = src_lang
    tgt = engine.check_target(tgt_lang, task.speech_output)
    if task.speech_input:
        encoded = engine.encode_speech(inputs)
    else:
        if src_lang is None:
            raise UnknownLanguageError("Text translation needs the language of the text (src_lang).")
        encoded = engine.encode_text([str(t) for t in inputs], engine.check_source_text(src_lang))
    return engine.decode(encoded, task, tgt, speaker_id)


def length_mask(like: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """(batch, frames) mask of ones up to each length, in ``like``'s dtype, as the model's attention masks are."""
    frames = torch.arange(like.shape[1], device=like.device)
    return (frames[None, :] < lengths.to(like.device)[:, None]).to(like.dtype)
