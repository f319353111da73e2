"""Conversation mode: two people, two languages, one exchange of turns, each turn translated the other way.

A turn is one utterance of one person. Who speaks is either said (one big button per person, as a phone
interpreter app does) or found automatically with the model itself, no language-identification model: the
utterance is encoded once and that one encoder output is scored under both people's languages — the mean
log-likelihood per token of the model's own transcription in each language, teacher-forced
(:class:`ModelScorer`) — and the better-scoring language is taken as spoken. The scores are kept on the turn, so
the page can show how sure the choice was. How often it picks right is unmeasured without the full model (the
tiny test model's random weights make its scores meaningless; the tests check the mechanism).

The turn itself is translated as an uploaded recording is (cut at pauses, safety stages, expressive speech):
whoever builds the conversation passes that translation in, so this module needs no safety code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from engine.audio import write_wav
from engine.backend import EncoderState
from engine.constants import SAMPLE_RATE_HZ
from engine.file_translation import FileTranslation
from engine.outputs import write_cues
from engine.presets import token_budget
from engine.subtitles import Cue
from engine.transcript import SpeechTimeline
from engine.translator import Translator

#: Longest stretch of a turn that is scored for its language (the start of an utterance tells it as well as all).
MAX_SCORED_S = 10.0

#: Translates one turn: (16 kHz audio, target language, spoken language) → its translation.
TurnTranslator = Callable[[np.ndarray, str, str], FileTranslation]


class DirectionScorer(Protocol):
    def encode(self, audio: np.ndarray) -> EncoderState:
        """One utterance's 16 kHz audio → its encoder state (scored under every language from this one pass)."""
        ...

    def score(self, state: EncoderState, lang: str, max_new_tokens: int) -> float:
        """How well ``lang`` explains the utterance: higher is likelier."""
        ...


class ModelScorer:
    """:class:`DirectionScorer` on the loaded model: the mean log-probability per token of the greedy transcription
    in ``lang`` (its tokens, and the EOS that ended it unless the budget did), teacher-forced on the same encoder
    output: exactly the probabilities greedy decoding saw."""

    def __init__(self, translator: Translator) -> None:
        self._translator = translator

    def encode(self, audio: np.ndarray) -> EncoderState:
        return self._translator.encode(audio)

    @torch.inference_mode()
    def score(self, state: EncoderState, lang: str, max_new_tokens: int) -> float:
        translator = self._translator
        tokens = translator.continue_text(state, lang, (), max_new_tokens)
        eos = translator.loaded.model.generation_config.eos_token_id
        head = translator.decoder_head(lang)
        ended = [eos] if len(tokens) < max_new_tokens else []
        # decoder_states reads all but the last token: one more EOS makes it read the whole scored sequence
        sequence = torch.tensor([[*head, *tokens, *ended, eos]], device=state.hidden_states.device)
        states = translator.decoder_states(state, sequence)  # position i predicts token i + 1
        log_probs = torch.log_softmax(translator.loaded.model.lm_head(states).float(), dim=-1)
        predicted = sequence[:, len(head) : -1]  # the transcription (and its EOS) after the forced language token
        picked = log_probs[:, len(head) - 1 : -1].gather(-1, predicted.unsqueeze(-1))
        return float(picked.mean())


@dataclass(frozen=True)
class Person:
    label: str  # how the exports name them ("Person A")
    lang: str  # the language they speak and hear


@dataclass(frozen=True)
class Direction:
    """Who was found speaking, and each person's language's score (higher is likelier)."""

    speaker: int  # 0 or 1
    scores: tuple[float, float]


@dataclass(frozen=True)
class Turn:
    index: int
    speaker: int  # who spoke: 0 or 1 (the other one hears the translation)
    transcript: str  # in the speaker's language
    translation: str  # in the listener's language
    speech: np.ndarray | None  # the translation spoken (16 kHz, not yet marked), when the language can be spoken
    start_s: float  # the turn on the conversation's clock (turns back to back)
    end_s: float
    direction: Direction | None = None  # when the speaker was found automatically
    flags: tuple[str, ...] = ()  # the safety stages' flags on the translation


def detect_direction(scorer: DirectionScorer, audio: np.ndarray, people: tuple[Person, Person]) -> Direction:
    """Score one encoder pass of the utterance under both languages; the better one is the speaker's."""
    audio = audio[: int(MAX_SCORED_S * SAMPLE_RATE_HZ)]
    state = scorer.encode(audio)
    budget = token_budget(audio.shape[0] / SAMPLE_RATE_HZ)
    scores = (scorer.score(state, people[0].lang, budget), scorer.score(state, people[1].lang, budget))
    return Direction(int(scores[1] > scores[0]), scores)


@dataclass
class Conversation:
    """One exchange between two people; turns are taken one at a time (not thread-safe)."""

    people: tuple[Person, Person]
    translate: TurnTranslator
    scorer: DirectionScorer | None = None
    turns: list[Turn] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.people[0].lang == self.people[1].lang:
            raise ValueError("The two people need two different languages.")

    def take_turn(self, audio: np.ndarray, speaker: int | None = None) -> Turn:
        """Translate one 16 kHz utterance; ``speaker`` 0 or 1 is who pressed their button, None finds it from the
        audio (needs a scorer)."""
        direction = None
        if speaker is None:
            if self.scorer is None:
                raise ValueError("Automatic turns need a scorer.")
            direction = detect_direction(self.scorer, audio, self.people)
            speaker = direction.speaker
        if speaker not in (0, 1):
            raise ValueError("speaker must be 0 or 1")
        source, target = self.people[speaker], self.people[1 - speaker]
        result = self.translate(audio, target.lang, source.lang)
        start = self.turns[-1].end_s if self.turns else 0.0
        turn = Turn(
            index=len(self.turns),
            speaker=speaker,
            transcript=" ".join(s.transcript for s in result.segments if s.transcript),
            translation=" ".join(s.text for s in result.segments if s.text),
            speech=result.audio,
            start_s=start,
            end_s=start + audio.shape[0] / SAMPLE_RATE_HZ,
            direction=direction,
            flags=tuple(f for s in result.segments if s.safety is not None for f in s.safety.flags),
        )
        self.turns.append(turn)
        return turn

    def label(self, person: int) -> str:
        p = self.people[person]
        return f"{p.label} ({p.lang})"

    def text(self) -> str:
        """Every turn with speaker labels: what was said, then what the other person heard."""
        lines = []
        for t in self.turns:
            lines += [f"{self.label(t.speaker)}: {t.transcript}", f"  → {self.label(1 - t.speaker)}: {t.translation}"]
        return "\n".join(lines) + "\n" if lines else ""

    def cues(self) -> list[Cue]:
        """One cue per turn, both languages: the original line, then its translation."""
        return [Cue(t.start_s, t.end_s, f"{t.transcript or '…'}\n{t.translation or '…'}") for t in self.turns]

    def write(self, folder: Path, speech: SpeechTimeline | None = None) -> list[Path]:
        """``conversation.txt`` (labelled turns), ``.srt`` and ``.vtt`` (both languages), and with a ``speech``
        timeline (the caller's marking one: each export carries its requester's payload) ``conversation.wav``."""
        if not self.turns:
            return []
        folder.mkdir(parents=True, exist_ok=True)
        text = folder / "conversation.txt"
        text.write_text(self.text(), encoding="utf-8")
        written = [text, *write_cues(folder, "conversation", self.cues(), plain_text=False)]
        if speech is not None:
            for turn in self.turns:
                if turn.speech is not None and turn.speech.size:
                    speech.add(turn.start_s, turn.speech)
            if speech:
                written.append(write_wav(folder / "conversation.wav", speech.audio()))
        return written
