"""Latency metrics against worked examples computed by hand from the papers' formulas (see engine/metrics.py)."""

import pytest

from engine.metrics import (
    RealTimeReplay,
    average_lagging,
    computation_aware_delay_s,
    differentiable_average_lagging,
    latency,
    length_adaptive_average_lagging,
    normalised_erasure,
    yet_another_average_lagging,
)


def test_ideal_simultaneous_system_has_zero_lag():
    # 4 words over 4 s of source, each emitted the moment its share of the source is read: d_i = (i-1) * |X|/|Y|.
    # No word reaches |X| = 4, so tau = 4; every term is 0. DAL: d'_i = d_i (already 1/gamma apart).
    result = latency([0.0, 1.0, 2.0, 3.0], source_s=4.0)
    assert result.al_s == result.laal_s == result.dal_s == result.yaal_s == pytest.approx(0.0)
    assert result.ending_offset_s == pytest.approx(-1.0)


def test_the_tau_word_is_included():
    # The example: d = 1, 7, 8, |X| = 6, |Y*| = 3, so gamma = 0.5 words/s and (i-1)/gamma = 0, 2, 4.
    # tau = 2 (d_2 = 7 is the first delay >= 6) and it counts: AL = ((1 - 0) + (7 - 2)) / 2 = 3.
    result = latency([1.0, 7.0, 8.0], source_s=6.0, reference_words=3)
    assert result.al_s == pytest.approx(3.0)
    assert result.laal_s == pytest.approx(3.0)  # max(3, 3) words: the same gamma
    # DAL: d' = 1, max(7, 1 + 2) = 7, max(8, 7 + 2) = 9; terms 1, 5, 5 -> 11/3
    assert result.dal_s == pytest.approx(11 / 3)
    # YAAL counts only words before the end of the source: the first, (1 - 0) / 1
    assert result.yaal_s == pytest.approx(1.0)
    assert result.ending_offset_s == pytest.approx(2.0)


def test_a_word_exactly_at_the_end_is_tau():
    # |X| = 6, |Y| = 3: gamma = 0.5. d = 2, 3, 6: the third word is the first with d >= |X| (tau = 3).
    # AL = ((2 - 0) + (3 - 2) + (6 - 4)) / 3 = 5/3; YAAL stops before it: ((2 - 0) + (3 - 2)) / 2 = 1.5
    # DAL: d' = 2, max(3, 4) = 4, max(6, 6) = 6; terms 2, 2, 2 -> 2
    result = latency([2.0, 3.0, 6.0], source_s=6.0)
    assert result.al_s == pytest.approx(5 / 3)
    assert result.yaal_s == pytest.approx(1.5)
    assert result.dal_s == pytest.approx(2.0)
    assert result.ending_offset_s == pytest.approx(0.0)


def test_first_word_after_the_end_is_the_lag():
    # tau = 1, so AL = LAAL = d_1 (SimulEval's special case follows from the formula). gamma = 2/6: 1/gamma = 3.
    # DAL: d' = 7.5, max(8, 10.5) = 10.5; terms 7.5, 7.5 -> 7.5. YAAL: no word before the end.
    result = latency([7.5, 8.0], source_s=6.0)
    assert result.al_s == result.laal_s == pytest.approx(7.5)
    assert result.dal_s == pytest.approx(7.5)
    assert result.yaal_s is None


def test_laal_penalises_over_generation():
    # |X| = 4, hypothesis 4 words, reference 2 words.
    # AL: gamma = 2/4, (i-1)/gamma = 0, 2, 4, 6 -> terms 1, 0, -1, -2; d_4 = 4 = |X| is tau: AL = -2/4 = -0.5
    # LAAL: gamma = max(4, 2)/4 = 1 -> terms 1, 1, 1, 1: LAAL = 1.  DAL (gamma = |Y|/|X| = 1): 1.
    # YAAL: LAAL's gamma, the fourth word (d = |X|) left out: 1.
    result = latency([1.0, 2.0, 3.0, 4.0], source_s=4.0, reference_words=2)
    assert result.al_s == pytest.approx(-0.5)
    assert result.laal_s == pytest.approx(1.0)
    assert result.dal_s == pytest.approx(1.0)
    assert result.yaal_s == pytest.approx(1.0)


def test_hypothesis_shorter_than_the_reference():
    # d = 2, 5, |X| = 4, |Y*| = 4: gamma = 1 for AL and LAAL (max(2, 4) = 4). Terms 2 - 0, 5 - 1 (tau) -> 3.
    # DAL uses |Y| = 2: 1/gamma = 2; d' = 2, max(5, 4) = 5; terms 2, 3 -> 2.5.  YAAL: 2 / 1.
    result = latency([2.0, 5.0], source_s=4.0, reference_words=4)
    assert result.al_s == result.laal_s == pytest.approx(3.0)
    assert result.dal_s == pytest.approx(2.5)
    assert result.yaal_s == pytest.approx(2.0)


def test_non_monotone_delays_are_taken_in_order():
    # d = 3, 1, 5, 2, |X| = 4, 4 words: gamma = 1. AL: 3 - 0, 1 - 1, 5 - 2 (tau = 3, first d >= 4) -> 6/3 = 2.
    # DAL: d' = 3, max(1, 4) = 4, max(5, 5) = 5, max(2, 6) = 6; terms 3, 3, 3, 3 -> 3.
    # YAAL: 3 - 0, 1 - 1, then d = 5 ends the sum -> 3/2.  Ending offset: the last word, 2 - 4.
    result = latency([3.0, 1.0, 5.0, 2.0], source_s=4.0)
    assert result.al_s == pytest.approx(2.0)
    assert result.dal_s == pytest.approx(3.0)
    assert result.yaal_s == pytest.approx(1.5)
    assert result.ending_offset_s == pytest.approx(-2.0)


def test_empty_hypothesis_has_no_latency():
    assert latency([], source_s=3.0, reference_words=5) is None
    with pytest.raises(ValueError):
        latency([], source_s=0.0)


def test_single_metric_functions_agree_with_latency():
    delays, source = [0.5, 1.5, 2.0, 4.5], 4.0
    result = latency(delays, source, reference_words=6)
    assert average_lagging(delays, source, 6) == pytest.approx(result.al_s)
    assert length_adaptive_average_lagging(delays, source, 6) == pytest.approx(result.laal_s)
    assert differentiable_average_lagging(delays, source) == pytest.approx(result.dal_s)
    # Long form: a cutoff past the source end lets later words count (the 4.5 s word, before a 5 s recording end).
    # gamma = max(4, 6)/4 = 1.5: terms 0.5, 1.5 - 2/3, 2 - 4/3, 4.5 - 2 -> (0.5 + 5/6 + 2/3 + 2.5) / 4
    expected = (0.5 + 5 / 6 + 2 / 3 + 2.5) / 4
    assert yet_another_average_lagging(delays, source, 6, cutoff_s=5.0) == pytest.approx(expected)


def test_computation_aware_delay_is_source_time_plus_queueing_plus_compute():
    assert computation_aware_delay_s(1.0, 0.25, 0.5) == pytest.approx(1.75)
    with pytest.raises(ValueError):
        computation_aware_delay_s(1.0, -0.1, 0.5)


def test_real_time_replay_queues_behind_slow_pushes():
    replay = RealTimeReplay()
    # Push 1: audio complete at 0.5 s, 0.2 s of compute, one event 0.1 s in: appears at 0.5 + 0 + 0.1.
    assert replay.push(0.5, 0.2, [(0.5, 0.1)]) == pytest.approx([0.6])
    # Push 2: arrives at 1.0 (worker free since 0.7); decided at source 0.992 after all 0.8 s: 0.992 + 0.008 + 0.8.
    assert replay.push(1.0, 0.8, [(0.992, 0.8)]) == pytest.approx([1.8])
    # Push 3 arrives at 1.5 but waits for the worker until 1.8: 1.5 + 0.3 + 0.05.
    assert replay.push(1.5, 0.1, [(1.5, 0.05)]) == pytest.approx([1.85])
    with pytest.raises(ValueError):
        replay.push(2.0, 0.1, [(2.0, 0.5)])  # an event later than the push's own compute


def test_normalised_erasure_counts_characters_taken_back():
    # "el gato" -> "el perro": common prefix "el " (3), so 7 - 3 = 4 characters erased; then only growth.
    assert normalised_erasure(["el gato", "el perro", "el perro come"]) == pytest.approx(4 / 13)
    assert normalised_erasure(["Hola", "Hola mu", "Hola mundo"]) == 0.0
    assert normalised_erasure(["abc", ""]) == pytest.approx(3.0)  # all withdrawn: per one character
    assert normalised_erasure([]) == 0.0


@pytest.mark.parametrize(
    ("delays", "source", "reference"),
    [([1.0], 0.0, None), ([float("nan")], 3.0, None), ([1.0], 3.0, 0)],
    ids=["no-source", "nan-delay", "empty-reference"],
)
def test_bad_input(delays, source, reference):
    with pytest.raises(ValueError):
        average_lagging(delays, source, reference)
