"""Latency metrics against cases computed by hand."""

import pytest

from engine.metrics import latency


def test_ideal_simultaneous_system_has_zero_lag():
    # 4 words over 4 s of source, each emitted the moment its share of the source is read: d_i = (i-1) * |X|/|Y|
    result = latency([0.0, 1.0, 2.0, 3.0], source_s=4.0)
    assert result.al_s == pytest.approx(0.0)
    assert result.laal_s == pytest.approx(0.0)
    assert result.ending_offset_s == pytest.approx(-1.0)


def test_hand_computed_al():
    # |X| = 6 s, |Y| = 3, gamma = 0.5 words/s, so the ideal delays are 0, 2, 4 s.
    # d = 2, 3, 6: the third word is the first at d >= |X| (tau = 3).
    # AL = ((2 - 0) + (3 - 2) + (6 - 4)) / 3 = 5/3
    result = latency([2.0, 3.0, 6.0], source_s=6.0)
    assert result.al_s == pytest.approx(5 / 3)
    assert result.ending_offset_s == pytest.approx(0.0)


def test_words_after_the_end_are_cut_at_tau():
    # d = 1, 7, 8 with |X| = 6: only the first word counts (the second is past the end of the source).
    # gamma = 3/6; AL = (1 - 0) / 1 = 1
    result = latency([1.0, 7.0, 8.0], source_s=6.0)
    assert result.al_s == pytest.approx(1.0)
    assert result.ending_offset_s == pytest.approx(2.0)


def test_first_word_after_the_end_is_the_lag():
    result = latency([7.5, 8.0], source_s=6.0)
    assert result.al_s == result.laal_s == pytest.approx(7.5)


def test_laal_penalises_over_generation_with_a_reference():
    # |X| = 4, hypothesis 4 words, reference 2 words.
    # AL with the reference length: gamma = 2/4; terms d_i - (i-1)*2 -> 1-0, 2-2, 3-4, 4-6 = 1, 0, -1, -2
    #   d reaches |X| at the 4th word, so tau = 4: AL = -2/4 = -0.5
    # LAAL: gamma = max(4, 2)/4 = 1; terms 1-0, 2-1, 3-2, 4-3 = 1 each: LAAL = 1
    result = latency([1.0, 2.0, 3.0, 4.0], source_s=4.0, reference_words=2)
    assert result.al_s == pytest.approx(-0.5)
    assert result.laal_s == pytest.approx(1.0)


def test_computation_aware_delays_are_larger():
    plain = latency([1.0, 2.0], source_s=3.0)
    aware = latency([1.4, 2.9], source_s=3.0)
    assert aware.al_s > plain.al_s


@pytest.mark.parametrize(
    ("delays", "source"), [([], 1.0), ([1.0], 0.0), ([2.0, 1.0], 3.0)], ids=["empty", "no-source", "decreasing"]
)
def test_bad_input(delays, source):
    with pytest.raises(ValueError):
        latency(delays, source)
