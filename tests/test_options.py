"""Settings: defaults, environment, flags, validation, and the same names in every front end."""

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from compose.settings import CLI, DESKTOP, WEB, Settings, add_arguments, load_settings
from engine.options import DEFAULT_MODEL, EngineOptions
from tests.conftest import REPO


def parsed(argv, sections=WEB):
    parser = argparse.ArgumentParser()
    add_arguments(parser, sections)
    return parser.parse_args(argv)


def test_environment_then_flags():
    env = {"PARLEY_MODEL": "tiny", "PARLEY_QUANTIZE_INT8": "yes", "PARLEY_NUM_BEAMS": "4",
           "PARLEY_CACHE_DIR": "/tmp/x", "PARLEY_MAX_AUDIO_S": "90", "PARLEY_DEPLOYMENT_ID": "7",
           "PARLEY_WATERMARK_BACKEND": "audiowmark", "PARLEY_FILTER_TOXICITY": "1", "HF_HUB_OFFLINE": "1",
           "PARLEY_EXPRESSIVE": "no", "PARLEY_PRESET": "low"}  # fmt: skip
    settings = load_settings(None, env)
    engine = settings.engine
    assert engine.model == "tiny" and engine.quantize_int8 and engine.num_beams == 4 and engine.hub_offline
    assert engine.cache_dir == Path("/tmp/x") and engine.max_audio_s == 90.0
    assert settings.watermark.deployment_id == 7 and settings.watermark.watermark_backend == "audiowmark"
    assert settings.safety.filter_toxicity and not settings.expressive.expressive
    assert settings.streaming.preset == "low"
    args = parsed(["--model", "/models/m4t", "--num-beams", "2", "--expressive", "--no-safety", "--port", "9"])
    flagged = load_settings(args, env)
    assert flagged.engine.model == "/models/m4t" and flagged.engine.num_beams == 2 and flagged.engine.quantize_int8
    assert flagged.expressive.expressive and not flagged.safety.safety and flagged.web.port == 9
    assert load_settings(None, {}) == Settings()
    assert Settings().engine.model == DEFAULT_MODEL
    assert load_settings(None, {"XDG_CACHE_HOME": "/c"}).engine.cache_dir == Path("/c/parley")


def test_bad_environment_values_are_named():
    with pytest.raises(ValueError, match="PARLEY_PORT"):
        load_settings(None, {"PARLEY_PORT": "eighty"})
    with pytest.raises(ValueError, match="PARLEY_SAFETY"):
        load_settings(None, {"PARLEY_SAFETY": "maybe"})
    with pytest.raises(ValueError, match="deployment_id"):
        load_settings(None, {"PARLEY_DEPLOYMENT_ID": "70000"})


def test_every_front_end_shows_the_same_names():
    """``python app.py --help``, ``--desktop --help`` and ``translate --help`` name each shared setting alike."""

    def flags(argv):
        out = subprocess.run([sys.executable, "app.py", *argv, "--help"], cwd=REPO, capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        return {word.rstrip(",") for word in out.stdout.split() if word.startswith("--")}

    web, desktop, cli = flags([]), flags(["--desktop"]), flags(["translate"])
    shared = {"--model", "--device", "--int8", "--preset", "--expressive", "--safety", "--filter-toxicity",
              "--watermark-backend", "--watermark-key", "--deployment-id"}  # fmt: skip
    assert shared <= web and shared <= desktop and (shared - {"--preset"}) <= cli
    assert set(DESKTOP) <= set(WEB) and set(CLI) <= set(DESKTOP)


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
