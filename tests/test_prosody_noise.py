"""Noisy sources: pauses found over a room's noise floor, RNNoise analysis-only denoising keeps the speech aligned,
and the noise's loudness is not transferred."""

import importlib

import numpy as np
import pytest

from engine.audio import SAMPLE_RATE_HZ, load_audio
from engine.expressivity_metrics import pause_alignment
from engine.prosody import ExpressiveOptions, ExpressiveStage
from engine.prosody.analysis import (
    count_syllables,
    frame_levels_db,
    loudness_lufs,
    pause_layout,
    speech_loudness_lufs,
)
from engine.prosody.denoise import denoise
from tests.conftest import espeak


@pytest.fixture(scope="module")
def speech(speech_dir):
    phrases = [load_audio(espeak(p, speech_dir / f"n{i}.wav")) for i, p in enumerate(("Welcome to the meeting",
               "of the translation team"))]  # fmt: skip
    gap = np.zeros(round(0.6 * SAMPLE_RATE_HZ), np.float32)
    return (np.concatenate([gap[:3200], phrases[0], gap, phrases[1], gap[:3200]]) * 0.5).astype(np.float32)


def noisy(audio, snr_db=10.0, noise=None):
    """``audio`` plus ``noise`` (white noise when None) at ``snr_db`` below the power of its sound."""
    power = np.mean(np.square(audio[np.abs(audio) > 0.01]))
    noise = np.random.default_rng(0).standard_normal(audio.shape[0]) if noise is None else noise
    return (audio + noise * np.sqrt(power / np.mean(np.square(noise)) / 10 ** (snr_db / 10))).astype(np.float32)


@pytest.fixture(scope="module")
def babble(speech, speech_dir):
    """Four other talkers at once (Spanish espeak-ng voices), as long as ``speech``."""
    texts = ("El primer tema es la latencia", "Hoy hablaremos del nuevo motor", "Gracias a todos por escuchar",
             "Medimos cada etapa en un ordenador")  # fmt: skip
    out = np.zeros(speech.shape[0])
    for k, (text, voice) in enumerate(zip(texts, ("es", "es+f3", "es+m3", "es+f2"), strict=True)):
        talker = load_audio(espeak(text, speech_dir / f"b{k}.wav", voice=voice))
        looped = np.tile(talker, speech.shape[0] // talker.shape[0] + 2)[k * 1000 :][: speech.shape[0]]
        out += looped / np.std(talker)
    return out


def test_denoised_copy_is_aligned_and_quiet_in_pauses(speech):
    cleaned = denoise(noisy(speech))
    assert cleaned.shape == speech.shape and cleaned.dtype == np.float32
    assert np.corrcoef(cleaned, speech)[0, 1] > 0.8  # no lag: the 20 ms delay is taken out
    (clean_pause,) = pause_layout(speech, 0.2).pauses
    for analysed in (cleaned, noisy(speech)):  # denoised, and over the noise floor as it is
        (pause,) = pause_layout(analysed, 0.2).pauses
        # within 80 ms: the faint end of a word is under the noise
        assert abs(pause[0] - clean_pause[0]) <= 8 and abs(pause[1] - clean_pause[1]) <= 8


def test_denoised_analysis_keeps_the_pause(speech, speech_dir):
    translation = load_audio(espeak("Bienvenidos a la reunión del equipo", speech_dir / "nt.wav", voice="es"))
    heard = noisy(speech)
    plain = ExpressiveStage(ExpressiveOptions()).apply(heard, translation, "spa", "eng")
    cleaned = ExpressiveStage(ExpressiveOptions(denoise_analysis=True)).apply(heard, translation, "spa", "eng")
    assert pause_alignment(speech, cleaned) > 0.8 and pause_alignment(speech, plain) > 0.8
    # The noise's loudness is not carried over: the output is as loud as the clean speech, not as the noisy mix.
    for out in (plain, cleaned):
        assert abs(loudness_lufs(out) - loudness_lufs(speech)) < abs(loudness_lufs(out) - loudness_lufs(heard))


def test_speech_loudness_leaves_the_noise_out(speech):
    heard = noisy(speech, snr_db=5.0)
    active = frame_levels_db(speech) > -60.0  # where the clean speech is
    true = loudness_lufs(speech)
    assert abs(speech_loudness_lufs(heard, active) - true) < abs(loudness_lufs(heard) - true)


def test_babble_is_not_taken_for_the_speakers_syllables(speech, babble, monkeypatch):
    """Other talkers 10 dB under the speaker: their syllables peak above the floor's median, not above its spread."""
    heard = noisy(speech, 10.0, babble)
    clean = count_syllables(speech)
    assert abs(count_syllables(heard) / clean - 1) < 0.2
    # The floor's median alone (patched in the module, not in the function the package exports under its name):
    monkeypatch.setattr(importlib.import_module("engine.prosody.analysis.syllables"), "NOISE_SPREAD_STD", 0.0)
    assert count_syllables(heard) / clean - 1 > 0.2
