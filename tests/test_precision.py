"""Precision choice (engine/precision.py) on described machines, and outputs at bf16/int8 against fp32.

The tiny model's random weights put many logits within rounding of each other, so lower precisions diverge from
fp32 after some tokens (measured on 8 inputs, 64 tokens each: bf16 first differs at token 12-66, int8 at 2-33). The
tests hold those measured bounds; a trained model's margins are far wider.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from engine.models import ModelUnavailableError, load_model
from engine.options import EngineOptions
from engine.precision import PrecisionUnavailableError, choose_precision, cpu_flags
from engine.scheduler import InferenceScheduler
from engine.tasks import Task
from engine.translator import Translator

CPU, CUDA = torch.device("cpu"), torch.device("cuda")
#: Shortest common prefix with fp32 seen on every input (see the module docstring), per precision.
AGREED_TOKENS = {"bf16": 10, "int8": 2}


def test_auto_picks_per_device():
    assert choose_precision("auto", CPU, flags=frozenset({"avx512_bf16", "sse2"})).precision == "bf16"
    assert choose_precision("auto", CPU, flags=frozenset({"amx_bf16", "avx512_vnni"})).precision == "bf16"
    this_cpu = choose_precision("auto", CPU, flags=frozenset({"avx512_bf16", "avx512_vnni"}))  # measured fastest
    assert this_cpu.precision == "int8" and "avx512_vnni" in this_cpu.status
    avx2_only = choose_precision("auto", CPU, flags=frozenset({"avx", "avx2", "fma"}))  # measured: int8 3.5x fp32
    assert avx2_only.precision == "int8" and "avx2" in avx2_only.status
    assert choose_precision("auto", CPU, flags=frozenset({"sse2", "avx"})).precision == "fp32"
    assert choose_precision("auto", CPU, tiny_model=True, flags=frozenset({"amx_bf16"})).precision == "fp32"
    assert choose_precision("auto", CUDA, cuda_bf16=True).precision == "bf16"
    assert choose_precision("auto", CUDA, cuda_bf16=False).precision == "fp16"
    chosen = choose_precision("auto", CPU, flags=frozenset({"avx512_bf16"}))
    assert "avx512_bf16" in chosen.status and chosen.status.startswith("bf16")


def test_impossible_requests_are_refused_in_plain_words():
    with pytest.raises(PrecisionUnavailableError, match="CUDA GPU"):
        choose_precision("fp16", CPU)
    with pytest.raises(PrecisionUnavailableError, match="CPU precision"):
        choose_precision("int8", CUDA)
    with pytest.raises(ValueError):
        EngineOptions(precision="fp8")
    with pytest.raises(ValueError, match="not both"):
        EngineOptions(precision="bf16", dtype="float32")


def test_cpu_flags_read_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx512_bf16\n")
    assert cpu_flags(info) == {"fpu", "sse2", "avx512_bf16"}
    assert cpu_flags(tmp_path / "missing") == frozenset()


def test_load_reports_what_it_chose(loaded, tiny_options):
    assert loaded.precision.precision == "fp32" and loaded.dtype == torch.float32  # tiny model: auto → fp32
    with pytest.raises(ModelUnavailableError, match="CUDA GPU"):
        load_model(dataclasses.replace(tiny_options, precision="fp16"))


@pytest.fixture(scope="module")
def inputs() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [(rng.standard_normal(int(16000 * s)) * 0.1).astype(np.float32) for s in (1.0, 2.3, 0.7, 3.1)]


@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_lower_precision_within_measured_tolerance_of_fp32(translator, tiny_options, inputs, precision):
    options = dataclasses.replace(tiny_options, precision=precision, max_new_tokens=16)
    lower = Translator(load_model(options), options)
    assert lower.loaded.precision.precision == precision
    for audio in inputs:
        want = translator.translate([audio], Task.S2TT, "spa")[0].token_ids
        got = lower.translate([audio], Task.S2TT, "spa")[0].token_ids
        agreed = AGREED_TOKENS[precision]
        assert got[:agreed] == want[:agreed]
    # The scheduler runs the same numbers at that precision: equal to the translator, speech included.
    with InferenceScheduler(lower) as scheduler:
        for audio in inputs[:2]:
            have = scheduler.translate([audio], Task.S2ST, "spa")[0]
            ref = lower.translate([audio], Task.S2ST, "spa")[0]
            assert have.token_ids == ref.token_ids and np.array_equal(have.waveform, ref.waveform)
