"""Engine benchmark: speech→speech through transformers' ``generate`` vs Parley's encoder-once path, and fp32 vs
bf16 (the precision ``auto`` picks on a CPU with native bf16) vs int8.

Builds the full-size SeamlessM4T v2 architecture (2.3 B parameters) with random weights, so no download is needed
and the compute is exactly that of the real model. Text length is forced (min = max new tokens) so both paths do
the same amount of decoding; the unit and waveform lengths come from the random duration predictors and are printed
so the figures can be read honestly. Each configuration runs ``--repeats`` times and the median is kept; generate and
fp32 encoder-once are interleaved, then the same model is cast to bf16 in place (two copies do not fit beside other
work in 24 GB), then an int8 copy is built.

    .venv/bin/python bench/engine.py              # full size, about 12 GB of RAM, a few minutes on 2 cores
    .venv/bin/python bench/engine.py --size tiny  # smoke run on the tiny model

``--no-bf16`` leaves bf16 out where the CPU has no native bf16 (avx2-only: emulated, its encoder 8x fp32's).
"""

from __future__ import annotations

import argparse
import ctypes
import dataclasses
import gc
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere

from bench.full_model import full_size_random
from engine.audio import SAMPLE_RATE_HZ
from engine.models import LoadedModel, load_model
from engine.options import EngineOptions
from engine.precision import PrecisionChoice, choose_precision
from engine.translator import Translator

TGT = "spa"


def encoder_once(translator: Translator, audio: np.ndarray, tokens: int, stages: dict | None = None):
    started = time.perf_counter()
    encoded = translator.encode_speech([audio])
    decode_started = time.perf_counter()
    sequences = translator.generate_text(encoded, TGT, min_new_tokens=tokens, max_new_tokens=tokens)
    states = translator.decoder_states(encoded, sequences)
    decoded = time.perf_counter()
    speech = translator.synthesize(states, sequences, TGT)
    if stages is not None:
        for name, seconds in (
            ("encoder", decode_started - started),
            ("text decoder", decoded - decode_started),
            ("text-to-unit", speech.t2u_seconds),
            ("vocoder", speech.vocoder_seconds),
        ):
            stages.setdefault(name, []).append(seconds)
    return sequences, speech.waveforms[0]


def via_generate(loaded: LoadedModel, audio: np.ndarray, tokens: int):
    features = loaded.feature_extractor([audio], sampling_rate=SAMPLE_RATE_HZ, return_tensors="pt")
    with torch.inference_mode():
        out = loaded.model.generate(
            **features, tgt_lang=TGT, return_intermediate_token_ids=True, min_new_tokens=tokens, max_new_tokens=tokens
        )
    loaded.model.set_modality("text")
    return out.sequences, out.waveform[0, : int(out.waveform_lengths.reshape(-1)[0])].numpy()


def release_memory() -> None:
    """Hand freed model memory back to the system (glibc keeps it otherwise, and the next copy does not fit)."""
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)


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
    parser.add_argument(
        "--no-bf16", action="store_true", help="skip bf16 (emulated, and slower than fp32, without avx512_bf16 or AMX)"
    )
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    # Speech-like input: noise shaped by a slow envelope (the content does not change the compute).
    n = int(args.audio_s * SAMPLE_RATE_HZ)
    envelope = 0.5 + 0.5 * np.sin(np.linspace(0, 20 * np.pi, n))
    audio = (rng.standard_normal(n) * 0.1 * envelope).astype(np.float32)

    # torch's own default (every core), as the README's table was measured, not the server's half of them.
    options = EngineOptions(model="tiny", device="cpu", cpu_threads=torch.get_num_threads())
    tiny = load_model(options)
    loaded = full_size_random(tiny) if args.size == "full" else tiny
    params = sum(p.numel() for p in loaded.model.parameters())
    print(f"model: {loaded.name}, {params / 1e9:.2f} B parameters, built in {loaded.load_seconds:.0f} s")
    print(f"input: {args.audio_s:.0f} s of audio, {args.tokens} text tokens forced, greedy, "
          f"{torch.get_num_threads()} CPU threads")  # fmt: skip
    translator = Translator(loaded, options)

    encoder_once(translator, audio, args.tokens)  # warm-up (allocator, kernels)
    gen_times, ours_times, fp32_stages = [], [], {}
    for _ in range(args.repeats):
        t, (gen_seq, gen_wav) = timed(via_generate, loaded, audio, args.tokens)
        gen_times.append(t)
        t, (our_seq, our_wav) = timed(encoder_once, translator, audio, args.tokens, fp32_stages)
        ours_times.append(t)
    same = torch.equal(gen_seq, our_seq) and np.array_equal(gen_wav, our_wav)
    out_s = our_wav.shape[0] / SAMPLE_RATE_HZ

    times, stages = {"fp32": ours_times}, {"fp32": fp32_stages}

    def measure(precision: str, translator: Translator) -> None:
        encoder_once(translator, audio, args.tokens)  # warm-up
        stages[precision] = {}
        times[precision] = [
            timed(encoder_once, translator, audio, args.tokens, stages[precision])[0] for _ in range(args.repeats)
        ]

    if not args.no_bf16:
        loaded.model.to(torch.bfloat16)
        bf16_loaded = dataclasses.replace(loaded, dtype=torch.bfloat16, precision=PrecisionChoice("bf16", "bench"))
        measure("bf16", Translator(bf16_loaded, options))
        del bf16_loaded

    del loaded, translator  # the model and its int8 copy do not both fit in 24 GB
    release_memory()
    if args.size == "full":
        q_loaded = full_size_random(tiny, quantize=True)
    else:
        q_loaded = load_model(dataclasses.replace(options, quantize_int8=True))
    measure("int8", Translator(q_loaded, options))

    gen_t = statistics.median(gen_times)
    median = {precision: statistics.median(t) for precision, t in times.items()}
    print(f"output: {our_seq.shape[1]} text tokens, {out_s:.1f} s of speech; identical to generate: {same}")
    print()
    print(f"{'path':<38}{'median s':>10}{'RTF':>8}")
    rows = [("s2st via transformers generate (fp32)", gen_t)]
    rows += [(f"s2st encoder-once, Parley ({precision})", t) for precision, t in median.items()]
    for name, t in rows:
        print(f"{name:<38}{t:>10.2f}{t / args.audio_s:>8.3f}")
    print()
    print(f"{'encoder-once stage (median s)':<38}" + "".join(f"{precision:>8}" for precision in median))
    for name in fp32_stages:
        print(f"{name:<38}" + "".join(f"{statistics.median(stages[p][name]):>8.2f}" for p in median))
    print()
    best = min((p for p in median if p != "fp32"), key=median.__getitem__)
    auto = choose_precision("auto", torch.device("cpu"))
    print(f"ratio generate / encoder-once (fp32): {gen_t / median['fp32']:.2f}x")
    for precision in (p for p in median if p != "fp32"):
        print(f"ratio fp32 / {precision} (encoder-once):     {median['fp32'] / median[precision]:.2f}x")
    speedup = median["fp32"] / median[best]
    print(f"best CPU precision here: {best}, {speedup:.2f}x fp32 (target >= 3x); auto picks {auto.status}")


if __name__ == "__main__":
    main()
