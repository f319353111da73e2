"""Precision and recall of the safety detectors on Parley's curated sets, and their speed.

Run: ``.venv/bin/python bench/safety.py`` (``--repeat N`` timing passes). Reads
``assets/eval/toxicity.tsv`` and ``assets/eval/gender.tsv``; each row's predicted label is compared with its
``expected`` label, and precision / recall are printed per label, with their macro average and the accuracy.
The toxicity detector runs with the bundled glin-profanity lists and per-character matching for unsegmented
scripts (no model tokenizer here), so its figures are those of Parley without a model or NLLB lists.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

# The repository root goes first: otherwise this file, bench/safety.py, would shadow the safety package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from safety.gender import GenderBiasChecker
from safety.toxicity import ToxicityDetector, ToxicityOptions

EVAL_DIR = Path(__file__).resolve().parent.parent / "assets" / "eval"


@dataclass(frozen=True)
class Pair:
    src_lang: str
    source: str
    tgt_lang: str
    target: str
    expected: str


def read_pairs(path: Path) -> list[Pair]:
    with path.open(encoding="utf-8") as f:
        rows = csv.DictReader((line for line in f if not line.startswith("#")), delimiter="\t")
        return [Pair(r["src_lang"], r["source"], r["tgt_lang"], r["target"], r["expected"]) for r in rows]


def toxicity_label(detector: ToxicityDetector, pair: Pair) -> str:
    report = detector.added_toxicity(pair.source, pair.src_lang, pair.target, pair.tgt_lang)
    if report.added:
        return "added_toxic"
    if any(m.obfuscated for m in report.source.matches):
        return "obfuscated"
    return "source_toxic" if report.source.toxic else "clean"


def gender_label(checker: GenderBiasChecker, pair: Pair) -> str:
    report = checker.check(pair.source, pair.src_lang, pair.target, pair.tgt_lang)
    if report.contradiction:
        return "contradiction"
    if report.ambiguous:
        return f"ambiguous+{report.assumed or 'neutral'}"
    return "marked-consistent" if report.source_gender is not None else "no-person"


@dataclass(frozen=True)
class Scores:
    per_label: dict[str, tuple[float, float, int]]  # label -> (precision, recall, support)
    accuracy: float

    @property
    def macro(self) -> tuple[float, float]:
        values = list(self.per_label.values())
        return sum(v[0] for v in values) / len(values), sum(v[1] for v in values) / len(values)


def score(expected: Sequence[str], predicted: Sequence[str]) -> Scores:
    per_label = {}
    for label in sorted(set(expected)):
        true_positive = sum(e == p == label for e, p in zip(expected, predicted, strict=True))
        predicted_count = sum(p == label for p in predicted)
        support = sum(e == label for e in expected)
        precision = true_positive / predicted_count if predicted_count else 0.0
        per_label[label] = (precision, true_positive / support, support)
    accuracy = sum(e == p for e, p in zip(expected, predicted, strict=True)) / len(expected)
    return Scores(per_label, accuracy)


def checks_per_second(predict: Callable[[Pair], str], pairs: Sequence[Pair], repeat: int) -> float:
    """Pairs checked per second, lists already loaded (the first, untimed pass loads them)."""
    for pair in pairs:
        predict(pair)
    start = time.perf_counter()
    for _ in range(repeat):
        for pair in pairs:
            predict(pair)
    return repeat * len(pairs) / (time.perf_counter() - start)


def report(name: str, predict: Callable[[Pair], str], pairs: Sequence[Pair], repeat: int) -> None:
    predicted = [predict(pair) for pair in pairs]
    scores = score([p.expected for p in pairs], predicted)
    print(f"\n{name}: {len(pairs)} pairs")
    print(f"  {'label':<22}{'precision':>10}{'recall':>8}{'n':>5}")
    for label, (precision, recall, support) in scores.per_label.items():
        print(f"  {label:<22}{precision:>10.2f}{recall:>8.2f}{support:>5}")
    macro_p, macro_r = scores.macro
    print(f"  {'macro average':<22}{macro_p:>10.2f}{macro_r:>8.2f}")
    print(f"  accuracy {scores.accuracy:.2f}; {checks_per_second(predict, pairs, repeat):,.0f} checks/s")
    misses = [(p, got) for p, got in zip(pairs, predicted, strict=True) if got != p.expected]
    for pair, got in misses:
        print(f"  miss: {pair.src_lang}->{pair.tgt_lang} {pair.target!r}: expected {pair.expected}, got {got}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20, help="timing passes over each set")
    args = parser.parse_args(argv)
    detector = ToxicityDetector(ToxicityOptions(toxicity_dir=None))
    checker = GenderBiasChecker()
    report(
        "Toxicity (added-toxicity labels)",
        lambda pair: toxicity_label(detector, pair),
        read_pairs(EVAL_DIR / "toxicity.tsv"),
        args.repeat,
    )
    report("Gender bias", lambda pair: gender_label(checker, pair), read_pairs(EVAL_DIR / "gender.tsv"), args.repeat)


if __name__ == "__main__":
    main()
