"""The streaming session's parts on plain data: a fake backend (no model), a fake VAD, plain token lists.

The session only talks to its backend through :class:`engine.backend.StreamingBackend`, so these tests drive every
decision (segmentation, commits, judging, masking, speech) without loading anything.
"""

import itertools
from collections.abc import Sequence

import numpy as np

from engine.constants import SAMPLE_RATE_HZ, WINDOW_SAMPLES
from engine.presets import LatencyPreset
from engine.segmenter import StreamSegmenter
from engine.stream_events import CommittedText, PartialText, SegmentEnd, SpeechChunk
from engine.streaming import StreamingSession
from engine.transcript import Transcript
from safety.judge import SafetyJudge, SafetyOptions
from safety.marking import MarkedTimeline
from safety.toxicity import ToxicityOptions

#: The fake model's vocabulary: "▁" starts a word, as SentencePiece marks it.
PIECES = ["▁hola", "▁a", "▁todos", "▁mi", "erda", "▁y", "▁adiós", "▁amigos"]
SENTENCE = [0, 1, 2, 3, 4, 5, 6, 7]
#: Fake speech lasts this long per committed token.
SPEECH_PER_TOKEN = 800


class FakeVad:
    """Speech wherever the window has energy."""

    def probability(self, window: np.ndarray) -> float:
        return 1.0 if float(np.abs(window).max()) > 0.01 else 0.0


class FakeBackend:
    """A "model" whose translation of a segment is the first one token per 0.25 s of its audio of a fixed
    sentence; speaking a phrase gives a tone whose length says how many tokens it had."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def encode(self, audio: np.ndarray) -> float:
        self.calls.append("encode")
        return audio.shape[0] / SAMPLE_RATE_HZ

    def continue_text(self, state, tgt_lang, prefix: Sequence[int], max_new_tokens, banned_words=()) -> list[int]:
        self.calls.append("continue")
        if tgt_lang == "eng":  # the source transcript
            return [0, 1][:max_new_tokens]
        rest, text = [], list(prefix)
        heard = SENTENCE if banned_words else SENTENCE[: int(state / 0.25)]  # a re-decode finds another word
        for token in heard:  # the sentence's tokens not yet said
            if token in text or any(word in self.detokenize([*text, token]) for word in banned_words):
                continue
            rest.append(token)
            text.append(token)
        return rest[:max_new_tokens]

    def speak(self, state, tgt_lang, committed: Sequence[int], new_count: int, speaker_id) -> np.ndarray:
        self.calls.append("speak")
        return np.full(SPEECH_PER_TOKEN * new_count, 0.1, dtype=np.float32)

    def starts_word(self, token_id: int) -> bool:
        return PIECES[token_id].startswith("▁")

    def detokenize(self, tokens: Sequence[int]) -> str:
        return "".join(PIECES[t] for t in tokens).replace("▁", " ").strip()


class EveryToken:
    """A commit policy that commits each new token at once: another policy is one small class."""

    def __init__(self, n: int, starts_word) -> None:
        self._latest: list[int] = []

    def update(self, hypothesis: Sequence[int]) -> list[int]:
        self._latest = []
        return list(hypothesis[:1])

    @property
    def tentative(self) -> list[int]:
        return self._latest

    def reset(self) -> None:
        self._latest = []


def speech(seconds: float, pause_s: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(0)
    voiced = (0.3 * rng.standard_normal(int(seconds * SAMPLE_RATE_HZ))).astype(np.float32)
    return np.concatenate([voiced, np.zeros(int(pause_s * SAMPLE_RATE_HZ), np.float32)])


PRESET = LatencyPreset("test", step_s=0.256, agreement_n=2, pause_s=0.48)


def run(session: StreamingSession, audio: np.ndarray, chunk: int = 4000):
    events = []
    for i in range(0, audio.shape[0], chunk):
        events += session.push(audio[i : i + chunk], SAMPLE_RATE_HZ)
    return events + session.finish()


def test_fake_backend_session_commits_the_sentence_in_order_and_speaks_each_commit():
    backend = FakeBackend()
    session = StreamingSession(backend, FakeVad(), "spa", task="s2st", preset=PRESET)
    events = run(session, speech(2.5))
    commits = [e for e in events if isinstance(e, CommittedText)]
    assert "".join(e.text for e in commits) == backend.detokenize(SENTENCE)
    assert [t for e in commits for t in e.token_ids] == SENTENCE
    # every commit is followed by its speech, as long as its tokens say
    for commit, chunk in zip(commits, [e for e in events if isinstance(e, SpeechChunk)], strict=True):
        assert chunk.audio.shape[0] == SPEECH_PER_TOKEN * len(commit.token_ids)
    [end] = [e for e in events if isinstance(e, SegmentEnd)]
    assert end.text == backend.detokenize(SENTENCE) and end.start_s < 0.1 and 2.4 < end.end_s < 2.7
    assert any(isinstance(e, PartialText) and e.text for e in events)  # the tentative tail was shown


def test_chunking_does_not_change_decisions():
    results = []
    for chunk in (160, 4000, 48000):
        session = StreamingSession(FakeBackend(), FakeVad(), "spa", preset=PRESET)
        results.append([(type(e).__name__, getattr(e, "text", None)) for e in run(session, speech(2.5), chunk)])
    assert results[0] == results[1] == results[2]


def test_segmenter_opens_steps_closes_and_cuts_long_speech():
    preset = LatencyPreset("cut", step_s=0.512, agreement_n=1, pause_s=0.48, max_segment_s=2.0)
    segmenter = StreamSegmenter(FakeVad(), preset)
    audio = speech(5.0, pause_s=1.0)
    steps = [step for i in range(0, audio.size - WINDOW_SAMPLES + 1, WINDOW_SAMPLES)
             if (step := segmenter.push(audio[i : i + WINDOW_SAMPLES])) is not None]  # fmt: skip
    finals = [s.segment for s in steps if s.final]
    # 5 s of speech cut (at the quietest window of each 2 s stretch's second half), then closed by the pause
    assert len(finals) >= 3 and sum(s.duration_s for s in finals) >= 5.0
    assert all(s.duration_s <= 2.0 + 1e-9 for s in finals)
    assert all(a.end_sample == b.start_sample for a, b in itertools.pairwise(finals))  # nothing lost
    assert any(not s.final for s in steps) and segmenter.flush() is None


def test_a_toxic_term_split_across_two_commits_is_masked_in_captions_and_saved_text(tmp_path):
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "spa.txt").write_text("mierda\n", encoding="utf-8")
    options = SafetyOptions(toxicity=ToxicityOptions(toxicity_dir=lists, rot13=False), filter_source_toxicity=True)
    session = StreamingSession(
        FakeBackend(), FakeVad(), "spa", task="s2st", preset=PRESET, judge=SafetyJudge(options), policy=EveryToken
    )
    transcript = Transcript(MarkedTimeline(lambda audio, at_sample: audio))
    events = run(session, speech(2.5))
    transcript.apply(events)
    commits = [e for e in events if isinstance(e, CommittedText)]
    split = [i for i, e in enumerate(commits) if e.token_ids == (4,)]
    assert split and commits[split[0] - 1].token_ids == (3,)  # "▁mi" and "erda" were committed apart
    captions = "".join(p.text for p in transcript.pieces)
    assert "mi" not in captions.split() and "erda" not in captions and "******" in captions
    written = {p.name: p for p in transcript.write(tmp_path / "out")}
    saved = written["translation.txt"].read_text(encoding="utf-8")
    assert saved.strip() == captions.strip() and "mierda" not in saved
    # the speech of the commit that completed the term is silenced, the rest is not
    chunks = [e for e in events if isinstance(e, SpeechChunk)]
    assert not chunks[split[0]].audio.any() and chunks[0].audio.any()


def test_added_toxicity_is_redecoded_by_the_engine_after_the_committed_prefix(tmp_path):
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "spa.txt").write_text("mierda\n", encoding="utf-8")
    judge = SafetyJudge(SafetyOptions(toxicity=ToxicityOptions(toxicity_dir=lists, rot13=False)))
    backend = FakeBackend()
    session = StreamingSession(
        backend, FakeVad(), "spa", task="s2st", preset=PRESET, src_lang="eng", judge=judge, policy=EveryToken
    )
    events = run(session, speech(2.5))
    commits = [e for e in events if isinstance(e, CommittedText)]
    text = "".join(e.text for e in commits)
    assert "mierda" not in text and "*" not in text  # re-decoded, not masked
    assert any(e.safety is not None and e.safety.mitigated for e in commits)
    assert [e.token_ids for e in commits][4] == (5,)  # "erda" replaced by the re-decode's next word
