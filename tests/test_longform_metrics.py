"""Long-form latency: re-segmentation by edit distance, StreamLAAL and LongYAAL on streams worked out by hand."""

import pytest

from engine.longform_metrics import (
    ReferenceSentence,
    TimedWord,
    characters,
    long_form_latency,
    resegment,
    timed_units,
)


def test_exact_hypothesis_splits_at_the_reference_boundaries():
    assert resegment(["a", "b", "c", "d", "e"], [["a", "b", "c"], ["d", "e"]]) == [[0, 1, 2], [3, 4]]


def test_insertions_join_the_sentence_before_and_substitutions_keep_their_place():
    # a=a, x~b (substituted), c=c, y inserted after c (sentence 1), d=d, e=e
    assert resegment(["a", "x", "c", "y", "d", "e"], [["a", "b", "c"], ["d", "e"]]) == [[0, 1, 2, 3], [4, 5]]


def test_a_sentence_the_hypothesis_missed_gets_no_words():
    assert resegment(["a", "b"], [["a", "b"], ["c", "d"]]) == [[0, 1], []]
    assert resegment([], [["a"], ["b"]]) == [[], []]


def test_matching_ignores_case_and_punctuation():
    assert resegment(["hello", "world", "again"], [["Hello,", "world."], ["Again!"]]) == [[0, 1], [2]]


def test_characters_for_unsegmented_scripts():
    assert characters("你好 世界") == ["你", "好", "世", "界"]
    assert [w.text for w in timed_units([("你好", 1.0)], characters)] == ["你", "好"]


def stream():
    sentences = [ReferenceSentence("a b c", 0.0, 3.0), ReferenceSentence("d e", 5.0, 7.0)]
    delays = {"a": 1.0, "b": 2.0, "c": 3.5, "z": 4.5, "d": 6.0, "e": 7.5}
    return sentences, [TimedWord(w, d) for w, d in delays.items()]


def test_stream_laal_and_long_yaal_by_hand():
    # "z" is inserted after "c": sentence 1 gets a b c z (delays 1, 2, 3.5, 4.5 from its start), sentence 2 gets
    # d e (6 - 5 = 1 and 7.5 - 5 = 2.5).
    # Sentence 1, LAAL: |X| = 3, gamma = max(4, 3)/3, 1/gamma = 0.75: terms 1, 2 - 0.75, 3.5 - 1.5 (tau) -> 4.25/3
    # Sentence 2, LAAL: |X| = 2, gamma = 1: terms 1, 2.5 - 1 (tau) -> 1.25
    # LongYAAL, recording end 7 s (end of the last sentence): sentence 1 counts every word before 7 - 0:
    #   (1 + 1.25 + 2 + (4.5 - 2.25)) / 4 = 1.625; sentence 2 only those before 7 - 5 = 2: 1.0
    sentences, output = stream()
    result = long_form_latency(output, sentences)
    assert result.stream_laal_s == pytest.approx((4.25 / 3 + 1.25) / 2)
    assert result.long_yaal_s == pytest.approx((1.625 + 1.0) / 2)
    assert (result.scored_sentences, result.sentences) == (2, 2)


def test_a_later_recording_end_lets_late_words_count():
    # With the recording ending at 8 s, "e" (2.5 s into sentence 2) is before 8 - 5 = 3: sentence 2's YAAL is 1.25.
    sentences, output = stream()
    result = long_form_latency(output, sentences, recording_end_s=8.0)
    assert result.long_yaal_s == pytest.approx((1.625 + 1.25) / 2)


def test_unscored_sentences_are_skipped_and_an_empty_stream_has_no_figure():
    sentences, output = stream()
    first_only = long_form_latency(output[:3], sentences)
    assert first_only.scored_sentences == 1
    # a b c in sentence 1 alone: gamma = 1: 1, 1, 1.5 (tau) -> 3.5/3
    assert first_only.stream_laal_s == pytest.approx(3.5 / 3)
    empty = long_form_latency([], sentences)
    assert empty.stream_laal_s is None and empty.long_yaal_s is None and empty.scored_sentences == 0


def test_bad_references():
    with pytest.raises(ValueError):
        ReferenceSentence("a", 2.0, 1.0)
    with pytest.raises(ValueError):
        long_form_latency([], [])
