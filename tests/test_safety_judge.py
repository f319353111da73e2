"""The safety judge with the engine's mitigation on the tiny model: MinTox end to end, masking, the filter setting,
gender alternatives, and reports on the file, text and live paths.

The tiny model's output is deterministic gibberish, so its own words are registered as "toxic" in a temporary
NLLB-format list folder: the detector then sees added toxicity exactly where the model produced it.
"""

import dataclasses
import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from engine.file_translation import translate_recording
from engine.mitigation import check_texts, speak_checked
from engine.streaming import CommittedText, SpeechChunk, StreamingSession
from engine.tasks import Task
from engine.translator import TranslationResult
from engine.vad import Segmenter, StreamingVad
from safety.gender import FEMININE, MASCULINE, summarise
from safety.judge import SafetyJudge, SafetyOptions, SafetyReport
from safety.toxicity import ToxicityOptions, word_tokens
from tests.conftest import TEST_CACHE, recording

SOURCE = "I am a doctor"


def judge_with(translator, folder: Path, lists: dict[str, list[str]], **options) -> SafetyJudge:
    """A judge whose word lists are the bundled ones plus ``lists`` (language -> terms), written to ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for lang, terms in lists.items():
        (folder / f"{lang}.txt").write_text("\n".join(terms) + "\n", encoding="utf-8")
    toxicity = ToxicityOptions(toxicity_dir=folder, rot13=False)
    return SafetyJudge(SafetyOptions(toxicity=toxicity, **options), tokenize=translator.loaded.tokenizer.tokenize)


def words(text: str) -> list[str]:
    return [t.text for t in word_tokens(text)]


@pytest.fixture(scope="module")
def baseline(translator):
    """The unchecked translation, and a word of it (not its first) to register as toxic."""
    result = translator.translate([SOURCE], Task.T2ST, "spa", src_lang="eng")[0]
    term = min(words(result.text)[1:], key=len)
    return result, term


@pytest.fixture(scope="module")
def mitigated(translator, baseline, tmp_path_factory):
    _, term = baseline
    judge = judge_with(translator, tmp_path_factory.mktemp("lists"), {"spa": [term]})
    [(result, report)] = speak_checked(check_texts(translator, judge, [SOURCE], Task.T2ST, "spa", "eng"))
    return result, report


def test_added_toxicity_is_redecoded_with_the_word_banned(baseline, mitigated):
    original, term = baseline
    result, report = mitigated
    assert isinstance(report, SafetyReport)
    assert report.added_toxicity.added and term in report.added_toxicity.words_to_ban
    assert report.mitigated and not report.masked and not report.toxicity.toxic
    assert term not in words(result.text) and result.text != original.text
    assert result.token_ids != original.token_ids
    # the speech comes from the re-decode: made from its tokens, not the original's
    assert result.waveform is not None and np.abs(result.waveform).max() > 0
    assert result.units != original.units
    assert "translated again" in " ".join(report.flags)
    assert report.gender is not None  # both reports ride on every text result


def test_still_toxic_redecode_is_masked_and_silenced(translator, baseline, mitigated, tmp_path):
    _, term = baseline
    redecoded, _ = mitigated
    # List every word of the re-decode too. Listing more words can ban more in the re-decode and change it, so words
    # it shows unmasked are added until none is left.
    terms = {term, *words(redecoded.text)}
    for attempt in range(5):
        judge = judge_with(translator, tmp_path / str(attempt), {"spa": sorted(terms)})
        [(result, report)] = speak_checked(check_texts(translator, judge, [SOURCE], Task.T2ST, "spa", "eng"))
        shown = set(words(result.text))  # masked words are asterisks, which are not words
        if not shown:
            break
        terms |= shown
    assert report.mitigated and report.masked and report.toxicity.toxic
    assert set(result.text) <= {"*", " "} and "*" in result.text
    assert result.waveform is not None and not result.waveform.any()  # never spoken
    assert "masked" in " ".join(report.flags)


@pytest.mark.parametrize("filter_source", [False, True])
def test_source_toxicity_is_reported_and_masked_only_when_filtering(translator, baseline, tmp_path, filter_source):
    original, term = baseline
    # every source word is "toxic": the translation has no more toxic words than its source, so none was added
    lists = {"spa": [term], "eng": words(SOURCE)}
    judge = judge_with(translator, tmp_path, lists, filter_source_toxicity=filter_source)
    [(result, report)] = speak_checked(check_texts(translator, judge, [SOURCE], Task.T2TT, "spa", "eng"))
    assert not report.added_toxicity.added and report.added_toxicity.source.toxic and not report.mitigated
    assert report.masked is filter_source
    assert ("speaker's own words" in " ".join(report.flags)) is not filter_source
    if filter_source:
        assert term not in words(result.text) and "*" in result.text
    else:
        assert result.text == original.text


def test_gender_alternative_and_contradiction_fix(translator):
    judge = SafetyJudge(tokenize=translator.loaded.tokenizer.tokenize)
    verdict = judge.judge(SOURCE, "eng", "Soy médico.", "spa", alternatives=True)
    report = verdict.report.gender
    assert report.ambiguous and report.assumed == MASCULINE
    # the judge asks the engine to translate the gender-marked source; it never decodes itself
    assert verdict.alternative_source is not None and verdict.alternative_source != SOURCE
    translated = translator.translate([verdict.alternative_source], Task.T2TT, "spa", src_lang="eng")[0].text
    report = judge.with_alternative(verdict, translated, "Soy médico.", "spa").report.gender
    # the tiny model's translation of "I am a female doctor" has no gender, so the lexicon swap is the fallback
    assert report.alternative == "Soy médica."
    report = judge.judge("My sister is a doctor", "eng", "Mi hermana es médico.", "spa").report.gender
    assert report.contradiction and report.source_gender == FEMININE
    assert report.alternative == "Mi hermana es médica."
    unknown = judge.judge(None, None, "Soy médico.", "spa", alternatives=True).report.gender
    assert unknown.assumed == MASCULINE and not unknown.ambiguous and unknown.alternative is None


def test_file_path_attaches_a_report_to_every_segment(translator, vad_model, hello_audio):
    audio, _ = recording([hello_audio, hello_audio], [1.0, 0.5])
    judge = SafetyJudge(tokenize=translator.loaded.tokenizer.tokenize)
    result = translate_recording(translator, Segmenter(vad_model), audio, Task.S2ST, "spa", "eng", judge=judge)
    assert len(result.segments) == 2
    assert all(isinstance(s.safety, SafetyReport) and s.safety.added_toxicity is not None for s in result.segments)
    assert result.audio is not None
    plain = translate_recording(translator, Segmenter(vad_model), audio, Task.S2TT, "spa")
    assert all(s.safety is None for s in plain.segments)


def live(translator, vad_model, audio, judge, src_lang=None):
    session = StreamingSession(
        translator,
        StreamingVad.for_new_stream(vad_model),
        "spa",
        Task.S2ST,
        preset="segment",
        src_lang=src_lang,
        judge=judge,
    )
    return session.push(audio, 16_000) + session.finish()


def test_live_path_checks_every_commit_before_its_speech(translator, vad_model, hello_audio, tmp_path):
    plain = live(translator, vad_model, hello_audio, None)
    committed = [e for e in plain if isinstance(e, CommittedText)]
    assert committed and all(e.safety is None for e in committed)
    toxic = words("".join(e.text for e in committed))

    # added toxicity: the commit is re-decoded with the words banned, after the committed prefix
    judge = judge_with(translator, tmp_path / "added", {"spa": toxic})
    events = live(translator, vad_model, hello_audio, judge, src_lang="eng")
    commits = [e for e in events if isinstance(e, CommittedText)]
    assert all(isinstance(e.safety, SafetyReport) for e in commits)
    assert any(e.safety.mitigated for e in commits)
    assert [e.token_ids for e in commits] != [e.token_ids for e in committed]

    # the filter setting masks every toxic word: its text is masked and its speech silent, flagged beforehand
    judge = judge_with(translator, tmp_path / "filter", {"spa": toxic}, filter_source_toxicity=True)
    events = live(translator, vad_model, hello_audio, judge)
    for before, after in itertools.pairwise(events):
        if isinstance(after, SpeechChunk):
            assert isinstance(before, CommittedText) and before.safety is not None
            if before.safety.toxicity.toxic:
                assert before.safety.masked and before.safety.flags and not after.audio.any()
                assert set(before.text.strip()) <= {"*", " "}
    assert any(isinstance(e, CommittedText) and e.safety.masked for e in events)


def test_cli_writes_the_safety_report_and_summarises_flagged_lines(baseline, tmp_path, monkeypatch, capsys):
    from ui.cli import main

    _, term = baseline
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "spa.txt").write_text(term + "\n", encoding="utf-8")
    notes = tmp_path / "notes.txt"
    notes.write_text(SOURCE + "\n", encoding="utf-8")
    for name, value in {"PARLEY_TOXICITY_DIR": lists, "PARLEY_CACHE_DIR": TEST_CACHE, "PARLEY_DEVICE": "cpu"}.items():
        monkeypatch.setenv(name, str(value))
    argv = ["translate", str(notes), "--task", "t2tt", "--src", "eng", "--tgt", "spa", "--model", "tiny"]
    assert main([*argv, "--out", str(tmp_path)]) == 0  # in process: a subprocess would load the model again
    out = capsys.readouterr().out
    [entry] = json.loads((tmp_path / "notes.spa.safety.json").read_text(encoding="utf-8"))
    assert entry["item"] == "line 1" and entry["mitigated"] and entry["gender"] is not None
    assert f"wrote {tmp_path / 'notes.spa.safety.json'}" in out
    assert "safety: line 1: The translation added offensive words" in out


@pytest.fixture(scope="module")
def plain_judge() -> SafetyJudge:
    """The bundled lists only; shared, as its lexicons load on first use of each language."""
    return SafetyJudge()


@pytest.mark.parametrize(
    ("source", "src_lang", "text", "tgt_lang", "prefix"),
    [
        ("O bir doktor.", "tur", "She is a doctor.", "eng", "He"),  # Turkic source, English target
        ("Hän on väsynyt.", "fin", "He is tired.", "eng", "She"),  # Uralic source
        ("Dia seorang guru.", "ind", "Hij is een leraar.", "nld", "Zij is"),  # Austronesian source, Dutch target
    ],
)
def test_pronoun_translation_asks_for_a_forced_prefix_redecode(plain_judge, source, src_lang, text, tgt_lang, prefix):
    verdict = plain_judge.judge(source, src_lang, text, tgt_lang, alternatives=True)
    assert verdict.report.gender.ambiguous
    assert verdict.alternative_prefix == prefix and verdict.alternative_source is None


def test_engine_redecodes_with_the_swapped_pronoun_forced(translator):
    """The model's own continuation after the forced pronoun is the alternative (real model code, tiny model)."""
    from engine.gender_alternative import offer_alternative, prefix_ids, redecode_with_prefix

    judge = SafetyJudge(tokenize=translator.loaded.tokenizer.tokenize)
    encoded = translator.encode_text(["O onu gördü."], "tur")
    decoded = translator.decode(encoded, Task.T2TT, "eng")[0]
    redecoded = redecode_with_prefix(translator, encoded, decoded, "He")
    assert redecoded.startswith("He") and len(redecoded) > len("He")
    rest = translator.continue_text(encoded, "eng", prefix_ids(translator, "He"), len(decoded.token_ids))
    assert redecoded == translator.detokenize([*prefix_ids(translator, "He"), *rest]).strip()
    # a translation that committed to "she ... her": the judge asks for the prefix, the engine decodes after it
    committed = dataclasses.replace(decoded, text="She saw her.")
    verdict = judge.judge("O onu gördü.", "tur", committed.text, "eng", alternatives=True)
    assert verdict.alternative_prefix == "He"
    final = offer_alternative(translator, judge, verdict, encoded, committed, "tur")
    gender = final.report.gender
    assert final.alternative_prefix is None and gender.alternative is not None
    spans = judge._gender.gendered_spans(redecoded, "eng")
    if summarise(s.gender for s in spans) == MASCULINE:
        assert gender.alternative == redecoded  # the model's own words after "He"
    else:
        assert gender.alternative == "He saw him."  # the tiny model's gibberish keeps no "he": the rule instead


class WordModel:
    """A fake translator for the forced-prefix re-decode: one token per word, and a fixed continuation."""

    def __init__(self, continuation: str) -> None:
        self.vocabulary: list[str] = []
        self.continuation = continuation
        self.prefixes: list[list[int]] = []
        self.loaded = self  # ``translator.loaded.tokenizer``
        self.tokenizer = self

    def __call__(self, text: str, add_special_tokens: bool = True) -> dict[str, list[int]]:
        assert not add_special_tokens  # a forced prefix holds ordinary tokens only
        return {"input_ids": [self._id(w) for w in text.split()]}

    def _id(self, word: str) -> int:
        if word not in self.vocabulary:
            self.vocabulary.append(word)
        return self.vocabulary.index(word)

    def continue_text(self, encoded, tgt_lang, prefix, max_new_tokens):
        self.prefixes.append(list(prefix))
        return [self._id(w) for w in self.continuation.split()][:max_new_tokens]

    def detokenize(self, tokens) -> str:
        return " ".join(self.vocabulary[t] for t in tokens)


@pytest.mark.parametrize(
    ("text", "continuation", "alternative"),
    [
        ("She read her book.", "read his book.", "He read his book."),  # the model's possessive
        ("She saw her.", "saw him.", "He saw him."),  # the model's object
    ],
)
def test_her_becomes_what_the_model_writes_after_the_forced_pronoun(plain_judge, text, continuation, alternative):
    from engine.gender_alternative import offer_alternative

    judge, model = plain_judge, WordModel(continuation)
    verdict = judge.judge("O onu gördü.", "tur", text, "eng", alternatives=True)
    result = TranslationResult(task=Task.T2TT, tgt_lang="eng", text=text, token_ids=tuple(range(8)))
    final = offer_alternative(model, judge, verdict, None, result, "tur")
    assert model.prefixes == [[model.vocabulary.index("He")]]  # the swapped pronoun, forced
    assert final.report.gender.alternative == alternative
    assert final.report.gender.neutral is not None  # English also gets the singular-they version


def test_a_redecode_without_the_other_gender_falls_back_to_the_rule(plain_judge):
    from engine.gender_alternative import offer_alternative

    judge, model = plain_judge, WordModel("read her book.")  # the model went back to "her"
    verdict = judge.judge("O kitabını okudu.", "tur", "She read her book.", "eng", alternatives=True)
    result = TranslationResult(task=Task.T2TT, tgt_lang="eng", text="She read her book.", token_ids=tuple(range(8)))
    final = offer_alternative(model, judge, verdict, None, result, "tur")
    assert final.report.gender.alternative == "He read his book."  # the rule: "her" before a noun is "his"
