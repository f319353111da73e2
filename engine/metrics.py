"""Simultaneous-translation latency metrics, as SimulEval defines them.

Each output word *i* has a delay d_i: the seconds of source audio that had been read when it was emitted
(non-computation-aware), or that plus the computation time spent so far (computation-aware, SimulEval's "elapsed").
With |X| the source duration:

* **AL**, Average Lagging (Ma et al., 2019, "STACL"): mean over i ≤ τ of d_i − (i − 1)/γ with γ = |Y|/|X|, where τ
  is the index of the first word emitted after the whole source was read (or the last word). |Y| is the reference
  length when one is given, else the hypothesis length.
* **LAAL**, Length-Adaptive AL (Papi et al., 2022): the same with γ = max(|Y_hyp|, |Y_ref|)/|X|, so an
  over-generating system is not rewarded for its extra words.
* **Ending offset**: d_last − |X|, how long after the speaker stopped the last word appeared.

If the first word arrives after the source ended, AL and LAAL are that first delay (SimulEval's convention).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Latency:
    al_s: float
    laal_s: float
    ending_offset_s: float


def _lagging(delays: Sequence[float], source_s: float, rate_words: float) -> float:
    if delays[0] > source_s:
        return float(delays[0])
    gamma = rate_words / source_s
    total, tau = 0.0, 0
    for i, d in enumerate(delays):
        if d > source_s:
            break
        total += d - i / gamma
        tau = i + 1
        if d == source_s:
            break
    return total / tau


def latency(delays_s: Sequence[float], source_s: float, reference_words: int | None = None) -> Latency:
    """AL, LAAL and ending offset for one utterance or stream.

    ``delays_s`` has one entry per output word, non-decreasing; pass non-computation-aware or computation-aware
    delays to get that flavour of each metric.
    """
    if not delays_s:
        raise ValueError("latency needs at least one output word")
    if source_s <= 0:
        raise ValueError("source duration must be positive")
    if any(b < a for a, b in itertools.pairwise(delays_s)):
        raise ValueError("delays must be non-decreasing")
    hyp = len(delays_s)
    ref = hyp if reference_words is None else reference_words
    return Latency(
        al_s=_lagging(delays_s, source_s, ref),
        laal_s=_lagging(delays_s, source_s, max(hyp, ref)),
        ending_offset_s=delays_s[-1] - source_s,
    )
