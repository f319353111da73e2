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
