"""The full-size SeamlessM4T v2 architecture with random weights, for honest CPU timings without a download.

Same layers, widths and vocabulary (2.3 B parameters) as ``facebook/seamless-m4t-v2-large``, so every matrix
multiplication costs what it costs in the real model. The tokenizer, language maps and character table come from
the tiny model, and generation is restricted to the tiny tokenizer's ids (the logits over the whole 256k vocabulary
are still computed), so text can be decoded and spoken like real output. Special tokens (EOS included) are
suppressed too, so decoding always runs to its token budget.
"""

from __future__ import annotations

import time

import torch

from engine.models import LoadedModel


def full_size_random(tiny: LoadedModel, quantize: bool = False) -> LoadedModel:
    from transformers import SeamlessM4Tv2Config, SeamlessM4Tv2Model

    started = time.perf_counter()
    # Random text-to-unit weights can pick any of the 10082 unit ids; the released vocoder only embeds 10000 (a
    # trained model never emits the rest). Widen the embedding so random ids are valid: +82 rows, negligible cost.
    config = SeamlessM4Tv2Config(unit_hifi_gan_vocab_size=10082)
    torch.manual_seed(0)
    model = SeamlessM4Tv2Model(config).eval()
    source, gen = tiny.model.generation_config, model.generation_config
    gen.text_decoder_lang_to_code_id = dict(source.text_decoder_lang_to_code_id)
    gen.t2u_lang_code_to_id = dict(source.t2u_lang_code_to_id)
    gen.vocoder_lang_code_to_id = dict(source.vocoder_lang_code_to_id)
    gen.id_to_text = dict(source.id_to_text)
    gen.char_to_id = dict(source.char_to_id)
    # Random weights would stop at a random moment (EOS) or emit language tokens; keep them to ordinary text
    # tokens so every step decodes its full token budget: a pessimistic, repeatable amount of work.
    specials = list(tiny.tokenizer.all_special_ids)  # forced prefixes are inputs, not generated: unaffected
    gen.suppress_tokens = [*specials, *range(len(tiny.tokenizer), config.vocab_size)]
    if quantize:
        model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    return LoadedModel(
        name="full-size-random" + ("-int8" if quantize else ""),
        model=model,
        tokenizer=tiny.tokenizer,
        feature_extractor=tiny.feature_extractor,
        device=torch.device("cpu"),
        dtype=torch.float32,
        load_seconds=time.perf_counter() - started,
    )
