"""The five tasks on the tiny model (real transformers code), and the encoder-once speech→speech path."""

import dataclasses
import os

import numpy as np
import pytest
import torch

from engine.languages import UnknownLanguageError
from engine.models import ModelUnavailableError, cpu_threads, load_model
from engine.options import EngineOptions
from engine.presets import text_token_budget
from engine.translator import HEAD_TOKENS, Task, Translator


class EncoderCalls:
    """Counts forward passes of a module through a hook (the real module still runs)."""

    def __init__(self, module):
        self.count = 0
        self._handle = module.register_forward_hook(self._hook)

    def _hook(self, *_):
        self.count += 1

    def close(self):
        self._handle.remove()


@pytest.mark.parametrize("task", [Task.S2ST, Task.S2TT, Task.ASR])
def test_speech_tasks(translator, hello_audio, task):
    result = translator.translate([hello_audio], task, "spa", src_lang="eng")[0]
    assert result.task is task
    assert result.tgt_lang == ("eng" if task is Task.ASR else "spa")
    assert result.text and len(result.token_ids) > 2
    lang_token = translator.loaded.model.generation_config.text_decoder_lang_to_code_id[result.tgt_lang]
    assert result.token_ids[1] == lang_token
    assert result.timings_s["encoder"] > 0 and result.timings_s["text_decoder"] > 0
    if task.speech_output:
        assert result.waveform.dtype == np.float32 and result.waveform.ndim == 1
        assert result.sample_rate_hz == 16000 and result.duration_s > 0.1
        assert np.isfinite(result.waveform).all()
        assert len(result.units) > 0 and {"text_to_unit", "vocoder"} <= set(result.timings_s)
    else:
        assert result.waveform is None and result.units is None


@pytest.mark.parametrize("task", [Task.T2ST, Task.T2TT])
def test_text_tasks(translator, task):
    result = translator.translate(["Good morning, everyone."], task, "fra", src_lang="eng")[0]
    assert result.text
    assert (result.waveform is not None) == task.speech_output


def test_batch_returns_one_result_per_input_in_order(translator):
    texts = ["Good morning.", "Where is the train station?", "Thank you for coming to the meeting today."]
    batch = translator.translate(texts, Task.T2TT, "deu", src_lang="eng")
    singles = [translator.translate([t], Task.T2TT, "deu", src_lang="eng")[0] for t in texts]
    assert len(batch) == 3
    assert [r.text for r in batch] == [r.text for r in singles]  # text encoder masks padding exactly


def test_a_short_text_is_not_decoded_to_the_models_limit(translator, loaded, hello_audio):
    """The tiny model never ends a sentence: a text's decode stops at its own budget (each row's, in a batch),
    while speech keeps the model's bound."""
    texts = ["Yes.", "Good morning."]  # two lengths whose budgets are under the tiny model's 64 tokens
    encoded = translator.encode_text(texts, "eng")
    lengths = [int(n) for n in encoded.attention_mask.sum(1)]
    results = translator.decode(encoded, Task.T2TT, "deu")
    limit = loaded.model.generation_config.max_new_tokens
    for result, n in zip(results, lengths, strict=True):
        assert len(translator.without_trailing_specials(result.token_ids)) - HEAD_TOKENS == text_token_budget(n)
        assert text_token_budget(n) < limit
    speech = translator.encode_speech([hello_audio])
    assert translator.token_budgets(speech, Task.S2TT) == [limit]


def test_the_model_uses_the_configured_cpu_threads(tiny_options, monkeypatch):
    before = torch.get_num_threads()
    try:
        load_model(dataclasses.replace(tiny_options, cpu_threads=1))
        assert torch.get_num_threads() == 1
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        assert cpu_threads(tiny_options) == max(1, len(os.sched_getaffinity(0)) // 2)
        # A Ray replica: OMP_NUM_THREADS (from its num_cpus) set torch's threads; the default keeps them.
        monkeypatch.setenv("OMP_NUM_THREADS", "3")
        torch.set_num_threads(3)
        assert cpu_threads(tiny_options) == 3
    finally:
        torch.set_num_threads(before)


def test_speech_to_speech_runs_the_encoder_once_and_matches_generate(translator, loaded, hello_audio):
    """transformers' generate runs the speech encoder twice; ours once, with identical tokens, units, waveform."""
    model, rng = loaded.model, np.random.default_rng(0)
    audios = [hello_audio, rng.standard_normal(16000 * 3).astype(np.float32) * 0.1]  # a padded batch of two
    calls = EncoderCalls(model.speech_encoder)
    try:
        torch.manual_seed(0)
        encoded = translator.encode_speech(audios)
        sequences = translator.generate_text(encoded, "spa")
        speech = translator.synthesize(translator.decoder_states(encoded, sequences), sequences, "spa", 3)
        ours = calls.count
        calls.count = 0
        features = loaded.feature_extractor(audios, sampling_rate=16000, return_tensors="pt", padding=True)
        torch.manual_seed(0)
        with torch.inference_mode():
            reference = model.generate(**features, tgt_lang="spa", speaker_id=3, return_intermediate_token_ids=True)
        theirs = calls.count
    finally:
        calls.close()
        model.set_modality("text")
    assert (ours, theirs) == (1, 2)
    assert torch.equal(sequences, reference.sequences)
    assert torch.equal(speech.raw_unit_ids, reference.unit_sequences)
    for i, waveform in enumerate(speech.waveforms):
        expected = reference.waveform[i, : int(reference.waveform_lengths[i])].numpy()
        np.testing.assert_array_equal(waveform, expected)


def test_text_to_speech_matches_generate(translator, loaded):
    tokens = loaded.tokenizer(["Good morning, everyone."], src_lang="eng", return_tensors="pt")
    ours = translator.translate(["Good morning, everyone."], Task.T2ST, "ita", src_lang="eng", speaker_id=1)[0]
    with torch.inference_mode():
        reference = loaded.model.generate(**tokens, tgt_lang="ita", speaker_id=1, return_intermediate_token_ids=True)
    assert ours.token_ids == tuple(reference.sequences[0].tolist())
    np.testing.assert_array_equal(
        ours.waveform, reference.waveform[0, : int(reference.waveform_lengths.reshape(-1)[0])]
    )


def test_speaker_changes_the_voice(translator, hello_audio):
    a = translator.speech_to_speech(hello_audio, "spa", speaker_id=0)
    b = translator.speech_to_speech(hello_audio, "spa", speaker_id=5)
    assert a.token_ids == b.token_ids and a.units == b.units
    assert not np.array_equal(a.waveform, b.waveform)


def test_language_errors(translator, hello_audio):
    with pytest.raises(UnknownLanguageError, match="Did you mean"):
        translator.speech_to_text(hello_audio, "spn")
    with pytest.raises(UnknownLanguageError, match="speech output"):
        translator.speech_to_speech(hello_audio, "ell")  # a text-only language in the real model
    with pytest.raises(UnknownLanguageError, match="cannot speak vie"):
        translator.speech_to_speech(hello_audio, "vie")  # spoken by the real model, not by the tiny one
    with pytest.raises(UnknownLanguageError, match="src_lang"):
        translator.translate(["hello"], Task.T2TT, "spa")
    with pytest.raises(UnknownLanguageError, match="spoken language"):
        translator.translate([hello_audio], Task.ASR, "spa")


def test_generation_options_are_applied(loaded, hello_audio):
    short = Translator(loaded, EngineOptions(model="tiny", max_new_tokens=5))
    result = short.speech_to_text(hello_audio, "spa")
    assert len(result.token_ids) <= 2 + 5
    beams = Translator(loaded, EngineOptions(model="tiny", num_beams=3, max_new_tokens=8))
    assert beams.speech_to_speech(hello_audio, "fra").waveform.size > 0


def test_model_folder_and_unreachable_hub(tiny_options, loaded, tmp_path, monkeypatch):
    folder_model = load_model(EngineOptions(model=str(loaded.model.name_or_path), device="cpu"))
    assert folder_model.text_languages == loaded.text_languages
    with pytest.raises(ModelUnavailableError, match=r"no config\.json"):
        load_model(EngineOptions(model=str(tmp_path)))
    # The one edge we cannot reach: the Hub. Offline mode with an empty cache is what a machine without network sees.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(ModelUnavailableError, match=r"cannot be reached.*--model tiny"):
        load_model(EngineOptions(cache_dir=tmp_path))


def test_int8_quantisation_runs(tiny_options, hello_audio):
    import dataclasses

    options = dataclasses.replace(tiny_options, quantize_int8=True)
    quantised = Translator(load_model(options), options)
    assert any("quantized" in type(m).__module__ for m in quantised.loaded.model.modules())
    result = quantised.speech_to_speech(hello_audio, "spa")
    assert result.text and result.waveform.size > 0
