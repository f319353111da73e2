"""Latency of an unsegmented stream, where a live session really runs: StreamLAAL and LongYAAL.

Sentence-level metrics (:mod:`engine.metrics`) need the output cut into the reference's sentences, which a live
system never does. Both long-form metrics first *re-segment* the hypothesis: its words are aligned to the
concatenated reference words by edit distance (mWERSegmenter's idea, Matusov et al., 2005: the cut points are
where the reference's sentence boundaries fall on the alignment), then each sentence is scored on its own, with
delays measured from the sentence's start in the source and its source span as |X|:

* **StreamLAAL** (Papi et al., 2024, "StreamAtt", §5): LAAL per sentence, averaged over sentences that received
  words (simulstream's ``stream_laal``).
* **LongYAAL** (Polák et al., 2025, "Better Late Than Never"): YAAL per sentence, where every word emitted before
  the end of the *recording* counts (not only those before the sentence's end); averaged over sentences with at
  least one such word. The paper re-segments with its SoftSegmenter; here both metrics share the edit-distance
  alignment, so the two figures differ only by the metric.

Words are matched case-insensitively without punctuation; unsegmented scripts (Chinese, Japanese, Thai) are scored
per character by passing ``units=characters``.
"""

from __future__ import annotations

import statistics
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from engine.metrics import length_adaptive_average_lagging, yet_another_average_lagging

Units = Callable[[str], list[str]]


def words(text: str) -> list[str]:
    """Latency units of a segmented script: whitespace-separated words."""
    return text.split()


def characters(text: str) -> list[str]:
    """Latency units of an unsegmented script: every non-space character."""
    return [c for c in text if not c.isspace()]


@dataclass(frozen=True)
class ReferenceSentence:
    """One sentence of the reference translation and where its source lies in the stream."""

    #: The reference translation of the sentence.
    text: str
    #: Source span of the sentence, seconds from the start of the stream.
    start_s: float
    end_s: float

    def __post_init__(self) -> None:
        if not 0 <= self.start_s < self.end_s:
            raise ValueError("a reference sentence needs 0 <= start_s < end_s")


@dataclass(frozen=True)
class TimedWord:
    """One output unit and its delay."""

    #: The word (or character, for unsegmented scripts) as displayed.
    text: str
    #: Seconds from the start of the stream (plain or computation-aware, see engine.metrics).
    delay_s: float


@dataclass(frozen=True)
class LongFormLatency:
    """Long-form latency of one stream (seconds); None where no sentence could be scored."""

    #: Mean LAAL over re-segmented sentences that received words.
    stream_laal_s: float | None
    #: Mean YAAL over re-segmented sentences with a word before the end of the recording.
    long_yaal_s: float | None
    #: Sentences that received at least one word.
    scored_sentences: int
    #: Sentences in the reference.
    sentences: int

    def __post_init__(self) -> None:
        if not 0 <= self.scored_sentences <= self.sentences:
            raise ValueError("scored_sentences must lie between 0 and the number of sentences")


def timed_units(pieces: Iterable[tuple[str, float]], units: Units = words) -> list[TimedWord]:
    """Output pieces (committed text, its delay) split into units that share the piece's delay."""
    return [TimedWord(unit, delay) for text, delay in pieces for unit in units(text)]


def _normalised(unit: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKC", unit).casefold() if unicodedata.category(c)[0] != "P")


def _edit_distance_table(hypothesis: Sequence[str], reference: Sequence[str]) -> np.ndarray:
    """table[j, i]: edits turning the first i hypothesis units into the first j reference units.

    Rows are filled one reference unit at a time; the insertions along a row are a running minimum
    (table[j, i] = min_k (base[k] + i - k)), so each row is a few numpy operations.
    """
    n, m = len(hypothesis), len(reference)
    hyp = np.empty(n, dtype=object)
    hyp[:] = list(hypothesis)
    table = np.empty((m + 1, n + 1), dtype=np.int64)
    table[0] = np.arange(n + 1)
    positions = np.arange(n + 1)
    for j in range(1, m + 1):
        base = table[j - 1] + 1  # the reference unit left unmatched
        base[1:] = np.minimum(base[1:], table[j - 1, :-1] + (hyp != reference[j - 1]))
        table[j] = np.minimum.accumulate(base - positions) + positions
    return table


def resegment(hypothesis: Sequence[str], references: Sequence[Sequence[str]]) -> list[list[int]]:
    """Indices of the hypothesis units that fall into each reference sentence, by edit-distance alignment.

    A matched or substituted unit goes to its reference unit's sentence; an inserted unit to the sentence of the
    reference unit before it (the first sentence at the very start). The result is monotone: sentence by sentence,
    the hypothesis in order.
    """
    hyp = [_normalised(u) for u in hypothesis]
    ref = [_normalised(u) for sentence in references for u in sentence]
    owner = [k for k, sentence in enumerate(references) for _ in sentence]
    table = _edit_distance_table(hyp, ref)
    assigned = [0] * len(hyp)
    j, i = len(ref), len(hyp)
    while i > 0:
        if j > 0 and table[j, i] == table[j - 1, i - 1] + (hyp[i - 1] != ref[j - 1]):
            assigned[i - 1] = owner[j - 1]
            i, j = i - 1, j - 1
        elif table[j, i] == table[j, i - 1] + 1:
            assigned[i - 1] = owner[j - 1] if j > 0 else 0
            i -= 1
        else:
            j -= 1
    segments: list[list[int]] = [[] for _ in references]
    for index, sentence in enumerate(assigned):
        segments[sentence].append(index)
    return segments


def long_form_latency(
    output: Sequence[TimedWord],
    sentences: Sequence[ReferenceSentence],
    units: Units = words,
    recording_end_s: float | None = None,
) -> LongFormLatency:
    """StreamLAAL and LongYAAL of one stream.

    ``recording_end_s`` bounds LongYAAL's words; by default the end of the last reference sentence, as in
    simulstream. Sentences that receive no words are skipped, as both reference implementations do.
    """
    if not sentences:
        raise ValueError("long-form latency needs at least one reference sentence")
    references = [units(s.text) for s in sentences]
    end_s = max(s.end_s for s in sentences) if recording_end_s is None else recording_end_s
    laal, yaal = [], []
    for sentence, reference, indices in zip(
        sentences, references, resegment([w.text for w in output], references), strict=True
    ):
        if not indices:
            continue
        delays = [output[i].delay_s - sentence.start_s for i in indices]
        source_s = sentence.end_s - sentence.start_s
        laal.append(length_adaptive_average_lagging(delays, source_s, len(reference)))
        score = yet_another_average_lagging(delays, source_s, len(reference), cutoff_s=end_s - sentence.start_s)
        if score is not None:
            yaal.append(score)
    return LongFormLatency(
        stream_laal_s=statistics.mean(laal) if laal else None,
        long_yaal_s=statistics.mean(yaal) if yaal else None,
        scored_sentences=len(laal),
        sentences=len(sentences),
    )
