"""Engine options: defaults, environment, flags, validation."""

import argparse
from pathlib import Path

import pytest

from engine.options import DEFAULT_MODEL, EngineOptions


def test_environment_then_flags():
    env = {"PARLEY_MODEL": "tiny", "PARLEY_QUANTIZE_INT8": "yes", "PARLEY_NUM_BEAMS": "4",
           "PARLEY_CACHE_DIR": "/tmp/x", "PARLEY_MAX_AUDIO_S": "90"}  # fmt: skip
    options = EngineOptions.from_env(env)
    assert options.model == "tiny" and options.quantize_int8 and options.num_beams == 4
    assert options.cache_dir == Path("/tmp/x") and options.max_audio_s == 90.0
    parser = argparse.ArgumentParser()
    EngineOptions.add_arguments(parser)
    flagged = EngineOptions.from_args(parser.parse_args(["--model", "/models/m4t", "--num-beams", "2"]), env)
    assert flagged.model == "/models/m4t" and flagged.num_beams == 2 and flagged.quantize_int8
    assert EngineOptions.from_env({}).model == DEFAULT_MODEL


@pytest.mark.parametrize(
    "bad",
    [{"device": "tpu"}, {"dtype": "int4"}, {"max_audio_s": 0}, {"num_beams": 0}, {"max_new_tokens": 0},
     {"speaker_id": -1}],
)  # fmt: skip
def test_validation(bad):
    with pytest.raises(ValueError):
        EngineOptions(**bad)


def test_cuda_index_is_accepted():
    assert EngineOptions(device="cuda:1").device == "cuda:1"
