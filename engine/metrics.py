"""Simultaneous-translation latency metrics, as the papers define them (and SimulEval / OmniSTEval compute them).

Each output word *i* (1-based) has a delay d_i: the seconds of source audio that had been read when it was emitted
("non-computation-aware", SimulEval's ``delays``), or the moment it would reach a listener if the audio arrived in
real time (computation-aware, see :func:`computation_aware_delay_s`). |X| is the source duration, |Y| the
hypothesis length in words and |Y*| the reference length.

* **AL**, Average Lagging (Ma et al., 2019, "STACL", eq. 5): AL = 1/τ · Σ_{i=1..τ} (d_i − (i − 1)/γ), γ = |Y*|/|X|
  (|Y| without a reference), where τ is the index of the *first* word emitted once the whole source was read
  (d_τ ≥ |X|); that word counts. Without such a word τ = |Y|. When the first word comes after the end, τ = 1 and
  AL = d_1, which is SimulEval's special case falling out of the formula.
* **LAAL**, Length-Adaptive AL (Papi et al., 2022, "Over-Generation Cannot Be Rewarded"): the same with
  γ = max(|Y|, |Y*|)/|X|, so a system that emits more words than the reference is not rewarded for them.
* **DAL**, Differentiable AL (Cherry & Foster, 2019, "Thinking Slow About Latency Evaluation"): every word counts, and
  each is taken to come at least 1/γ after the previous one: d'_1 = d_1, d'_i = max(d_i, d'_{i−1} + 1/γ);
  DAL = 1/|Y| · Σ_i (d'_i − (i − 1)/γ) with γ = |Y|/|X|.
* **YAAL**, Yet Another AL (Polák et al., 2025, "Better Late Than Never"): LAAL's γ, but only the words emitted
  strictly before a cutoff count (the end of the source for one utterance, the end of the recording in long form):
  the first word at or after it ends the sum and is left out. None when no word comes before the cutoff.
* **Ending offset**: d_|Y| − |X|, how long after the speaker stopped the last word appeared.
* **Normalised erasure** (Arivazhagan et al., 2020, "Re-translation versus Streaming for Simultaneous
  Translation"): flicker of the displayed text, the characters taken back between successive displays per
  character of the final text (:func:`normalised_erasure`).

Delays are used in the order given, as the formulas do: they need not be monotone (a computation-aware replay of a
re-segmented stream may not be). A hypothesis without words has no lag to average: :func:`latency` returns None for
it, and aggregates skip it, as SimulEval does.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Latency:
    """The latency metrics of one utterance (seconds)."""

    #: Average Lagging, γ from the reference length (the hypothesis length when no reference is given).
    al_s: float
    #: Length-Adaptive Average Lagging, γ from the longer of hypothesis and reference.
    laal_s: float
    #: Differentiable Average Lagging, γ from the hypothesis length.
    dal_s: float
    #: Yet Another Average Lagging (words before the end of the source only); None if every word came after it.
    yaal_s: float | None
    #: Last word's delay minus the source duration.
    ending_offset_s: float

    def __post_init__(self) -> None:
        values = [self.al_s, self.laal_s, self.dal_s, self.ending_offset_s]
        if self.yaal_s is not None:
            values.append(self.yaal_s)
        if not all(math.isfinite(v) for v in values):
            raise ValueError("latency metrics must be finite numbers")


def _check(delays_s: Sequence[float], source_s: float) -> None:
    if not delays_s:
        raise ValueError("latency needs at least one output word")
    if not source_s > 0:
        raise ValueError("the source duration must be positive")
    if not all(math.isfinite(d) for d in delays_s):
        raise ValueError("delays must be finite numbers")


def _lagging_to_tau(delays_s: Sequence[float], source_s: float, words_per_s: float) -> float:
    """Σ_{i=1..τ} (d_i − (i−1)/γ) / τ, τ the first word with d_i ≥ |X| (included), else the last word."""
    total, tau = 0.0, 0
    for i, delay in enumerate(delays_s):
        total += delay - i / words_per_s
        tau = i + 1
        if delay >= source_s:
            break
    return total / tau


def average_lagging(delays_s: Sequence[float], source_s: float, reference_words: int | None = None) -> float:
    """AL (Ma et al., 2019) with γ = |Y*|/|X|; γ = |Y|/|X| when ``reference_words`` is None."""
    _check(delays_s, source_s)
    words = len(delays_s) if reference_words is None else reference_words
    if words < 1:
        raise ValueError("the reference must have at least one word")
    return _lagging_to_tau(delays_s, source_s, words / source_s)


def length_adaptive_average_lagging(delays_s: Sequence[float], source_s: float, reference_words: int) -> float:
    """LAAL (Papi et al., 2022): AL with γ = max(|Y|, |Y*|)/|X|."""
    _check(delays_s, source_s)
    return _lagging_to_tau(delays_s, source_s, max(len(delays_s), reference_words) / source_s)


def differentiable_average_lagging(delays_s: Sequence[float], source_s: float) -> float:
    """DAL (Cherry & Foster, 2019): every word, each at least 1/γ after the previous, γ = |Y|/|X|."""
    _check(delays_s, source_s)
    gap_s = source_s / len(delays_s)  # 1/γ
    total, previous = 0.0, -math.inf
    for i, delay in enumerate(delays_s):
        previous = max(delay, previous + gap_s)
        total += previous - i * gap_s
    return total / len(delays_s)


def yet_another_average_lagging(
    delays_s: Sequence[float], source_s: float, reference_words: int, cutoff_s: float | None = None
) -> float | None:
    """YAAL (Polák et al., 2025): LAAL's γ over the words before ``cutoff_s`` (default: the end of the source).

    The first word at or after the cutoff ends the sum and is not counted; None when the first word already is.
    Long form (LongYAAL) passes the time left to the end of the recording as the cutoff.
    """
    _check(delays_s, source_s)
    cutoff = source_s if cutoff_s is None else cutoff_s
    words_per_s = max(len(delays_s), reference_words) / source_s
    total, counted = 0.0, 0
    for i, delay in enumerate(delays_s):
        if delay >= cutoff:
            break
        total += delay - i / words_per_s
        counted = i + 1
    return total / counted if counted else None


def latency(delays_s: Sequence[float], source_s: float, reference_words: int | None = None) -> Latency | None:
    """AL, LAAL, DAL, YAAL and ending offset for one utterance; None for a hypothesis without words.

    ``reference_words`` is |Y*|; without it the hypothesis stands in (then AL = LAAL).
    """
    if not delays_s:
        if not source_s > 0:
            raise ValueError("the source duration must be positive")
        return None
    reference = len(delays_s) if reference_words is None else reference_words
    return Latency(
        al_s=average_lagging(delays_s, source_s, reference),
        laal_s=length_adaptive_average_lagging(delays_s, source_s, reference),
        dal_s=differentiable_average_lagging(delays_s, source_s),
        yaal_s=yet_another_average_lagging(delays_s, source_s, reference),
        ending_offset_s=delays_s[-1] - source_s,
    )


def computation_aware_delay_s(source_time_s: float, queued_s: float, compute_s: float) -> float:
    """The one definition of a computation-aware delay: when the output would reach a listener if the audio
    arrived in real time, in seconds from the start of the stream.

    ``source_time_s`` is the source audio read when the output was decided; ``queued_s`` how long that audio then
    waited before the engine worked on it (the rest of its chunk arriving, earlier work still running);
    ``compute_s`` the compute spent on it until the output was ready. This is what SimulEval's "elapsed" means
    for one utterance and what a live listener sees; :class:`RealTimeReplay` derives queueing and compute from a
    session's stamps when the audio was pushed faster than real time.
    """
    if min(source_time_s, queued_s, compute_s) < 0:
        raise ValueError("source time, queueing and compute must be non-negative")
    return source_time_s + queued_s + compute_s


class RealTimeReplay:
    """Replays a session's pushes as if the audio had arrived in real time on one worker, giving each event its
    :func:`computation_aware_delay_s`.

    Push *k*'s audio has all arrived at ``arrival_s`` (the source time of its last sample); the worker starts it at
    max(arrival, end of push *k − 1*) and an event appears after the compute spent in the push up to that event.
    """

    def __init__(self) -> None:
        self._free_at_s = 0.0  # when the worker finished the previous push

    def push(self, arrival_s: float, push_compute_s: float, events: Sequence[tuple[float, float]]) -> list[float]:
        """``events``: (source_time_s, compute_into_push_s) per event of one push; returns their delays."""
        if push_compute_s < 0 or any(not 0 <= into <= push_compute_s + 1e-9 for _, into in events):
            raise ValueError("compute times must lie within the push's compute")
        start_s = max(arrival_s, self._free_at_s)
        self._free_at_s = start_s + push_compute_s
        return [computation_aware_delay_s(source, max(0.0, start_s - source), into) for source, into in events]


def normalised_erasure(displays: Sequence[str]) -> float:
    """Characters erased per character of the final display: Σ_t (|o_{t−1}| − |LCP(o_{t−1}, o_t)|) / |o_final|.

    ``displays`` is the text a viewer saw, in order (committed text plus the tentative tail after each update).
    0 means text only ever grew; 0.5 means half as many characters were taken back as were finally shown. An empty
    final display counts as one character, so a stream that showed and then withdrew text still scores its erasure.
    """
    erased = sum(len(a) - _common_prefix(a, b) for a, b in itertools.pairwise(displays))
    return erased / max(1, len(displays[-1])) if displays else 0.0


def _common_prefix(a: str, b: str) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
