"""Conversation mode: turns taken with the buttons or found automatically, and the exports.

The direction mechanism is tested with a fake scorer whose scores are known; the real scorer runs end to end on the
tiny model (its scores are meaningless there, so only their consistency is checked: one encoder pass, the same
numbers as generate's own logits, and the turn translated the way the scores point)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch
from transformers import GenerationMixin
from transformers.modeling_outputs import BaseModelOutput

from engine.audio import SAMPLE_RATE_HZ, load_audio
from engine.conversation import Conversation, ModelScorer, Person, detect_direction
from engine.file_translation import FileTranslation, TranslatedSegment
from engine.presets import token_budget
from engine.tasks import Task
from engine.vad import Segment
from tests.conftest import espeak, parse_subtitles

PEOPLE = (Person("Ana", "spa"), Person("Ben", "eng"))


class FakeScorer:
    """Known scores per language; counts the encoder passes and which state each score was asked for."""

    def __init__(self, scores: dict[str, float]) -> None:
        self.scores, self.encodes, self.asked = scores, 0, []

    def encode(self, audio):
        self.encodes += 1
        return ("state", self.encodes)

    def score(self, state, lang, max_new_tokens):
        self.asked.append((state, lang))
        return self.scores[lang]


def fake_translate(audio, tgt_lang, src_lang) -> FileTranslation:
    """Says in words what it was asked, with one second of speech per turn."""
    seconds = audio.shape[0] / SAMPLE_RATE_HZ
    segment = TranslatedSegment(
        Segment(0, audio.shape[0]), f"{src_lang}→{tgt_lang}", f"said in {src_lang}",
        np.full(SAMPLE_RATE_HZ, 0.1, np.float32), 0.0,
    )  # fmt: skip
    return FileTranslation(Task.S2ST, tgt_lang, src_lang, seconds, [segment], segment.audio)


class Timeline:
    """A plain speech timeline (the app passes a marking one)."""

    def __init__(self) -> None:
        self.pieces: list[tuple[float, np.ndarray]] = []

    def add(self, source_time_s, audio):
        self.pieces.append((source_time_s, audio))

    def audio(self):
        return np.concatenate([a for _, a in self.pieces])

    def __bool__(self):
        return bool(self.pieces)


def test_the_better_scoring_language_is_the_speakers_from_one_encoder_pass():
    audio = np.zeros(2 * SAMPLE_RATE_HZ, np.float32)
    for scores, expected in (({"spa": -0.5, "eng": -2.0}, 0), ({"spa": -3.0, "eng": -1.0}, 1)):
        scorer = FakeScorer(scores)
        direction = detect_direction(scorer, audio, PEOPLE)
        assert direction.speaker == expected and direction.scores == (scores["spa"], scores["eng"])
        assert scorer.encodes == 1 and scorer.asked == [(("state", 1), "spa"), (("state", 1), "eng")]


def test_turns_go_the_other_way_and_the_exports_parse(tmp_path):
    scorer = FakeScorer({"spa": -3.0, "eng": -1.0})
    timeline = Timeline()
    talk = Conversation(PEOPLE, fake_translate, scorer)
    audio = np.zeros(int(1.5 * SAMPLE_RATE_HZ), np.float32)
    first = talk.take_turn(audio, speaker=0)  # Ana's button
    second = talk.take_turn(audio, speaker=1)  # Ben's button
    third = talk.take_turn(audio)  # automatic: the scores say English, so Ben
    assert (first.translation, second.translation, third.translation) == ("spa→eng", "eng→spa", "eng→spa")
    assert first.direction is None and third.direction.speaker == 1 and third.direction.scores == (-3.0, -1.0)
    assert [(t.start_s, t.end_s) for t in talk.turns] == [(0.0, 1.5), (1.5, 3.0), (3.0, 4.5)]
    paths = {p.name: p for p in talk.write(tmp_path, timeline)}
    assert [start for start, _ in timeline.pieces] == [0.0, 1.5, 3.0]
    assert set(paths) == {"conversation.txt", "conversation.srt", "conversation.vtt", "conversation.wav"}
    lines = paths["conversation.txt"].read_text().splitlines()
    assert lines[:2] == ["Ana (spa): said in spa", "  → Ben (eng): spa→eng"]
    assert lines[2] == "Ben (eng): said in eng" and len(lines) == 6
    for name in ("conversation.srt", "conversation.vtt"):
        cues = parse_subtitles(paths[name].read_text())
        assert [(s, e) for s, e, _ in cues] == [(0.0, 1.5), (1.5, 3.0), (3.0, 4.5)]
        assert cues[1][2] == "said in eng\neng→spa"  # both languages in every cue
    wav, rate = sf.read(paths["conversation.wav"])
    assert rate == SAMPLE_RATE_HZ and wav.shape[0] == 3 * SAMPLE_RATE_HZ
    with pytest.raises(ValueError, match="two different languages"):
        Conversation((Person("A", "eng"), Person("B", "eng")), fake_translate)
    with pytest.raises(ValueError, match="need a scorer"):
        Conversation(PEOPLE, fake_translate).take_turn(audio)


@pytest.fixture(scope="module")
def utterance(speech_dir) -> np.ndarray:
    return load_audio(espeak("Where is the train station, please?", speech_dir / "turn.wav"))


def test_model_scores_are_generates_own_log_probabilities(translator, utterance):
    scorer = ModelScorer(translator)
    state = scorer.encode(utterance)
    budget = token_budget(utterance.shape[0] / SAMPLE_RATE_HZ)
    for lang in ("eng", "spa"):
        out = GenerationMixin.generate(
            translator.loaded.model,
            encoder_outputs=BaseModelOutput(last_hidden_state=state.hidden_states),
            attention_mask=state.attention_mask,
            decoder_input_ids=torch.tensor([[translator.decoder_head(lang)[1]]]),
            max_new_tokens=budget, num_beams=1, do_sample=False, output_logits=True, return_dict_in_generate=True,
        )  # fmt: skip
        tokens = out.sequences[0, 2:]
        logits = torch.cat(out.logits)[: tokens.shape[0]]
        expected = torch.log_softmax(logits.float(), -1).gather(-1, tokens[:, None]).mean()
        assert scorer.score(state, lang, budget) == pytest.approx(float(expected), abs=1e-4)


def test_automatic_turn_on_the_tiny_model_end_to_end(pipeline, translator, utterance):
    def translate(audio, tgt, src):
        return pipeline.translate_recording(audio, Task.S2ST, tgt, src)

    talk = Conversation(PEOPLE, translate, ModelScorer(translator))
    turn = talk.take_turn(utterance)
    expected = detect_direction(ModelScorer(translator), utterance, PEOPLE)
    assert turn.direction == expected and all(np.isfinite(s) and s < 0 for s in expected.scores)
    listener = PEOPLE[1 - turn.speaker].lang
    alone = pipeline.translate_recording(utterance, Task.S2ST, listener, PEOPLE[turn.speaker].lang)
    assert turn.translation == " ".join(s.text for s in alone.segments) and turn.translation
    assert turn.speech is not None and np.array_equal(turn.speech, alone.audio)
