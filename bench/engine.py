"""Engine benchmark: speech→speech through transformers' ``generate`` vs Parley's encoder-once path, and fp32 vs int8.

Builds the full-size SeamlessM4T v2 architecture (2.3 B parameters) with random weights, so no download is needed
and the compute is exactly that of the real model. Text length is forced (min = max new tokens) so both paths do
the same amount of decoding; the unit and waveform lengths come from the random duration predictors and are printed
so the figures can be read honestly. Each configuration runs ``--repeats`` times, interleaved, and the median is kept.

    .venv/bin/python bench/engine.py              # full size, about 12 GB of RAM, a few minutes on 2 cores
    .venv/bin/python bench/engine.py --size tiny  # smoke run on the tiny model
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.audio import SAMPLE_RATE_HZ
from engine.models import LoadedModel, load_model
from engine.options import EngineOptions
from engine.translator import Translator

TGT = "spa"


def full_size_random(quantize: bool = False) -> LoadedModel:
    """The real architecture and generation-config shape, random weights, built on the CPU."""
    from transformers import SeamlessM4TFeatureExtractor, SeamlessM4Tv2Config, SeamlessM4Tv2Model

    started = time.perf_counter()
    # Random text-to-unit weights can pick any of the 10082 unit ids; the released vocoder only embeds 10000 (a
    # trained model never emits the rest). Widen the embedding so random ids are valid: +82 rows, negligible cost.
    config = SeamlessM4Tv2Config(unit_hifi_gan_vocab_size=10082)
    torch.manual_seed(0)
    model = SeamlessM4Tv2Model(config).eval()
    gen = model.generation_config
    gen.text_decoder_lang_to_code_id = {TGT: 256_000}
    gen.t2u_lang_code_to_id = {TGT: 0}
    gen.vocoder_lang_code_to_id = {TGT: 0}
    gen.id_to_text = {str(i): "▁ab" for i in range(config.vocab_size)}  # 3 characters per token, as typical
    gen.char_to_id = {"<pad>": 0, "<unk>": 1, "▁": 2, "a": 3, "b": 4}
    if quantize:
        model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    return LoadedModel(
        name="full-size-random",
        model=model,
        tokenizer=None,
        feature_extractor=SeamlessM4TFeatureExtractor(),
        device=torch.device("cpu"),
        dtype=torch.float32,
        load_seconds=time.perf_counter() - started,
    )


def encoder_once(translator: Translator, audio: np.ndarray, tokens: int):
    encoded = translator.encode_speech([audio])
    sequences = translator.generate_text(encoded, TGT, min_new_tokens=tokens, max_new_tokens=tokens)
    speech = translator.synthesize(translator.decoder_states(encoded, sequences), sequences, TGT)
    return sequences, speech.waveforms[0]


def via_generate(loaded: LoadedModel, audio: np.ndarray, tokens: int):
    features = loaded.feature_extractor([audio], sampling_rate=SAMPLE_RATE_HZ, return_tensors="pt")
    with torch.inference_mode():
        out = loaded.model.generate(
            **features, tgt_lang=TGT, return_intermediate_token_ids=True, min_new_tokens=tokens, max_new_tokens=tokens
        )
    loaded.model.set_modality("text")
    return out.sequences, out.waveform[0, : int(out.waveform_lengths.reshape(-1)[0])].numpy()


def timed(fn, *args):
    started = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=["full", "tiny"], default="full")
    parser.add_argument("--audio-s", type=float, default=10.0, help="length of the input speech")
    parser.add_argument("--tokens", type=int, default=40, help="forced number of generated text tokens")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    # Speech-like input: noise shaped by a slow envelope (the content does not change the compute).
    n = int(args.audio_s * SAMPLE_RATE_HZ)
    envelope = 0.5 + 0.5 * np.sin(np.linspace(0, 20 * np.pi, n))
    audio = (rng.standard_normal(n) * 0.1 * envelope).astype(np.float32)

    if args.size == "full":
        loaded = full_size_random()
        options = EngineOptions(model="full-size-random")
    else:
        options = EngineOptions(model="tiny", device="cpu")
        loaded = load_model(options)
    params = sum(p.numel() for p in loaded.model.parameters())
    print(f"model: {loaded.name}, {params / 1e9:.2f} B parameters, built in {loaded.load_seconds:.0f} s")
    print(f"input: {args.audio_s:.0f} s of audio, {args.tokens} text tokens forced, greedy, "
          f"{torch.get_num_threads()} CPU threads")  # fmt: skip
    translator = Translator(loaded, options)

    encoder_once(translator, audio, args.tokens)  # warm-up (allocator, kernels)
    gen_times, ours_times = [], []
    for _ in range(args.repeats):
        t, (gen_seq, gen_wav) = timed(via_generate, loaded, audio, args.tokens)
        gen_times.append(t)
        t, (our_seq, our_wav) = timed(encoder_once, translator, audio, args.tokens)
        ours_times.append(t)
    same = torch.equal(gen_seq, our_seq) and np.array_equal(gen_wav, our_wav)
    out_s = our_wav.shape[0] / SAMPLE_RATE_HZ

    if args.size == "full":
        del loaded, translator
        q_loaded = full_size_random(quantize=True)
    else:
        q_loaded = load_model(dataclasses.replace(options, quantize_int8=True))
    q_translator = Translator(q_loaded, options)
    encoder_once(q_translator, audio, args.tokens)
    int8_times = [timed(encoder_once, q_translator, audio, args.tokens)[0] for _ in range(args.repeats)]

    gen_t, ours_t, int8_t = (statistics.median(x) for x in (gen_times, ours_times, int8_times))
    print(f"output: {our_seq.shape[1]} text tokens, {out_s:.1f} s of speech; identical to generate: {same}")
    print()
    print(f"{'path':<38}{'median s':>10}{'RTF':>8}")
    for name, t in (
        ("s2st via transformers generate (fp32)", gen_t),
        ("s2st encoder-once, Parley (fp32)", ours_t),
        ("s2st encoder-once, Parley (int8)", int8_t),
    ):
        print(f"{name:<38}{t:>10.2f}{t / args.audio_s:>8.3f}")
    print()
    print(f"ratio generate / encoder-once (fp32): {gen_t / ours_t:.2f}x")
    print(f"ratio fp32 / int8 (encoder-once):     {ours_t / int8_t:.2f}x")


if __name__ == "__main__":
    main()
