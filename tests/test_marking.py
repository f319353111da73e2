"""Marking live speech piece by piece: pieces shorter than the watermark's period still carry one payload."""

from __future__ import annotations

import numpy as np
import pytest

from engine.audio import SAMPLE_RATE_HZ, load_audio
from safety.marking import MarkedTimeline, SpeechMarker
from safety.watermark import create_watermarker
from tests.conftest import espeak

PIECE_S = 0.7  # a short committed phrase, well under the 1.92 s period


@pytest.fixture(scope="module")
def marker() -> SpeechMarker:
    return SpeechMarker.for_session(create_watermarker(), deployment_id=5, session_key="marking-test")


@pytest.fixture(scope="module")
def pieces(tmp_path_factory) -> list[np.ndarray]:
    text = "The morning train to the coast leaves at nine, and the market opens when it arrives there."
    speech = load_audio(espeak(text, tmp_path_factory.mktemp("m") / "s.wav"))
    size = round(PIECE_S * SAMPLE_RATE_HZ)
    return [speech[i : i + size] for i in range(0, speech.size - size, size)]


def test_pieces_marked_where_they_lie_carry_the_payload(marker, pieces):
    timeline, starts = MarkedTimeline(marker), []
    for i, piece in enumerate(pieces):  # a pause after every piece, longer than the piece
        starts.append(max(timeline.audio().size, round(i * 1.5 * PIECE_S * SAMPLE_RATE_HZ)))
        timeline.add(i * 1.5 * PIECE_S, piece)
    audio = timeline.audio()
    found = marker.watermarker.detect(audio, SAMPLE_RATE_HZ)
    assert found.detected and found.payload == marker.payload
    for start in starts[1:-1]:  # pieces away from the edges are found where they are
        middle_s = (start / SAMPLE_RATE_HZ) + PIECE_S / 2
        assert any(lo <= middle_s <= hi for lo, hi in found.marked_s), (middle_s, found.marked_s)
    assert timeline.speech_samples == sum(p.size for p in pieces)


def test_the_same_pieces_each_marked_from_zero_do_not(marker, pieces):
    """Why positions matter: marked on their own, short pieces each hold only the start of the period."""
    gap = np.zeros(round(0.5 * PIECE_S * SAMPLE_RATE_HZ), dtype=np.float32)
    audio = np.concatenate([part for piece in pieces for part in (marker(piece), gap)])
    assert marker.watermarker.detect(audio, SAMPLE_RATE_HZ).payload != marker.payload


def _lay_out(pieces: list[np.ndarray], gaps: list[int]) -> tuple[np.ndarray, list[int]]:
    """The whole timeline (pieces with the given gaps of silence before each) and each piece's start."""
    parts, starts, cursor = [], [], 0
    for piece, gap in zip(pieces, gaps, strict=True):
        parts += [np.zeros(gap, np.float32), piece]
        starts.append(cursor + gap)
        cursor += gap + piece.size
    return np.concatenate(parts), starts


def test_stream_with_pauses_equals_marking_the_whole_timeline(marker, pieces):
    """Pauses of at least the look-ahead (152 ms) between pieces: every piece, returned at once, is exactly what
    marking the whole timeline in one go gives there, and the timeline carries the payload."""
    rng = np.random.default_rng(3)
    gaps = [int(g) for g in rng.integers(round(0.16 * SAMPLE_RATE_HZ), 2 * SAMPLE_RATE_HZ, len(pieces))]
    timeline, starts = _lay_out(pieces, gaps)
    whole = marker.watermarker.embed(timeline, SAMPLE_RATE_HZ, marker.payload)
    stream = marker.stream()
    for piece, start in zip(pieces, starts, strict=True):
        marked = stream.add(piece, start)
        assert marked.shape == piece.shape
        np.testing.assert_allclose(marked, whole[start : start + piece.size], atol=1e-6, rtol=0)
    assert marker.watermarker.detect(whole, SAMPLE_RATE_HZ).payload == marker.payload


def test_back_to_back_pieces_differ_only_before_each_join(marker, pieces):
    """Pieces that follow each other within the look-ahead: only the last 152 ms before a join can differ from
    whole-timeline marking (they were marked before the next piece existed), by no more than the mark's own size;
    the SNR bound and the payload hold."""
    gaps = [0, 0, 800, 0, 1600] + [0] * (len(pieces) - 5)
    timeline, starts = _lay_out(pieces, gaps)
    whole = marker.watermarker.embed(timeline, SAMPLE_RATE_HZ, marker.payload)
    stream = marker.stream()
    streamed = np.zeros_like(timeline)
    for piece, start in zip(pieces, starts, strict=True):
        streamed[start : start + piece.size] = stream.add(piece, start)
    lookahead = 2048 + 256 + 128
    near_join = np.zeros(timeline.size, dtype=bool)
    for start in starts[1:]:
        near_join[max(0, start - lookahead) : start] = True
    np.testing.assert_allclose(streamed[~near_join], whole[~near_join], atol=1e-6, rtol=0)
    # There the mark was chosen against silence instead of the next piece: a different mark of the same size.
    rms = lambda x: float(np.sqrt(np.mean(x**2)))  # noqa: E731
    assert rms(streamed[near_join] - whole[near_join]) <= rms((whole - timeline)[near_join])
    assert 10 * np.log10(np.sum(timeline**2) / np.sum((streamed - timeline) ** 2)) >= 25.0
    assert marker.watermarker.detect(streamed, SAMPLE_RATE_HZ).payload == marker.payload


def test_each_live_sample_is_embedded_once(marker, pieces, monkeypatch):
    """Count what the embedder does: every piece sample is pushed once and nothing else is pushed (the pauses
    are skipped as silence, nothing is prepended), and with pauses of at least the look-ahead every segment of
    the timeline is analysed at most once."""
    from safety.watermark.spread.embed import StreamingEmbedder

    pushed, skipped, analysed = [], [], []
    real_push, real_skip, real_mark = (
        StreamingEmbedder.push,
        StreamingEmbedder.skip_silence,
        StreamingEmbedder._mark_segments,
    )

    def skip_silence(self, samples):
        skipped.append(samples)
        self._skipping = True
        try:
            return real_skip(self, samples)
        finally:
            self._skipping = False

    def push(self, chunk):
        if not getattr(self, "_skipping", False):
            pushed.append(chunk.size)
        return real_push(self, chunk)

    def mark_segments(self, count):
        analysed.extend(range(self._segment, self._segment + count))
        return real_mark(self, count)

    monkeypatch.setattr(StreamingEmbedder, "push", push)
    monkeypatch.setattr(StreamingEmbedder, "skip_silence", skip_silence)
    monkeypatch.setattr(StreamingEmbedder, "_mark_segments", mark_segments)
    gaps = [round(0.2 * SAMPLE_RATE_HZ)] * len(pieces)
    _, starts = _lay_out(pieces, gaps)
    stream = marker.stream()
    for piece, start in zip(pieces, starts, strict=True):
        stream.add(piece, start)
    assert pushed == [piece.size for piece in pieces]  # each live sample enters the embedder once
    assert len(analysed) == len(set(analysed))  # no segment is marked twice
    segment = 2048
    speech_segments = {(s + 128 + i) // segment for p, s in zip(pieces, starts, strict=True) for i in range(p.size)}
    assert speech_segments <= set(analysed)


def test_short_pieces_spread_over_a_timeline_carry_the_payload(marker, pieces):
    """Pieces of 0.35 s, each under a fifth of the period, with pauses of 0.3-0.6 s between them."""
    short = [part for piece in pieces for part in (piece[: piece.size // 2], piece[piece.size // 2 :])]
    rng = np.random.default_rng(5)
    gaps = [int(g) for g in rng.integers(round(0.3 * SAMPLE_RATE_HZ), round(0.6 * SAMPLE_RATE_HZ), len(short))]
    timeline, starts = _lay_out(short, gaps)
    stream = marker.stream()
    streamed = np.zeros_like(timeline)
    for piece, start in zip(short, starts, strict=True):
        streamed[start : start + piece.size] = stream.add(piece, start)
    found = marker.watermarker.detect(streamed, SAMPLE_RATE_HZ)
    assert found.detected and found.payload == marker.payload


def test_overlapping_pieces_are_refused(marker, pieces):
    stream = marker.stream()
    stream.add(pieces[0], 1000)
    with pytest.raises(ValueError):
        stream.add(pieces[1], 1000 + pieces[0].size - 1)
