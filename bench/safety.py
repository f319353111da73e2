"""Precision and recall of the safety detectors: the templated sets per language, the curated sets, and coverage.

Run: ``.venv/bin/python bench/safety.py`` (``--repeat N`` timing passes over the curated sets, ``--misses N``
misses listed per table). Tables, in order:

1. Gender, templated (``assets/eval/templated_gender.tsv``): per target language, precision and recall of
   flagging an ambiguous source translated with a gender (the predicted label must be the expected
   ``ambiguous+masculine`` / ``ambiguous+feminine``; neutral translations and sentences about no person are the
   negatives), and contradictions found.
2. Toxicity, templated (``assets/eval/templated_toxicity.tsv``): per language, precision and recall of
   ``added_toxic``, and whether the speaker's own curse is kept apart (``source_toxic``).
3. False alarms on clean sentences (``assets/eval/generate.py``: 300 per language), per language family.
4. The curated sets (``assets/eval/toxicity.tsv``, ``gender.tsv``), per label and per target language.
5. Coverage (``python -m safety coverage``).

The toxicity detector runs with the bundled lists and per-character matching for unsegmented scripts (no model
tokenizer here), so its figures are those of Parley without a model or NLLB lists.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

# The repository root goes first: otherwise this file, bench/safety.py, would shadow the safety package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from safety.coverage import coverage, format_table
from safety.gender import GenderBiasChecker
from safety.toxicity import ToxicityDetector

EVAL_DIR = Path(__file__).resolve().parent.parent / "assets" / "eval"
GENDERED = frozenset({"ambiguous+masculine", "ambiguous+feminine"})


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


def load_generator():
    """``assets/eval/generate.py``, which is data tooling rather than a package."""
    spec = importlib.util.spec_from_file_location("parley_eval_generate", EVAL_DIR / "generate.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


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


def precision_recall(expected: Sequence[str], predicted: Sequence[str], positive: frozenset[str]) -> tuple:
    """(precision, recall, positives, flagged) of flagging ``positive`` labels; a hit needs the exact label."""
    hits = sum(e == p and e in positive for e, p in zip(expected, predicted, strict=True))
    flagged = sum(p in positive for p in predicted)
    positives = sum(e in positive for e in expected)
    return (hits / flagged if flagged else 1.0), (hits / positives if positives else 1.0), positives, flagged


def print_misses(pairs: Sequence[Pair], predicted: Sequence[str], limit: int) -> None:
    misses = [(p, got) for p, got in zip(pairs, predicted, strict=True) if got != p.expected]
    for pair, got in misses[:limit]:
        print(f"  miss: {pair.src_lang}->{pair.tgt_lang} {pair.target!r}: expected {pair.expected}, got {got}")
    if len(misses) > limit:
        print(f"  ... and {len(misses) - limit} more misses")


def per_language_table(
    title: str, pairs: Sequence[Pair], predicted: Sequence[str], positive: frozenset[str], extra: str
) -> None:
    """Precision / recall of ``positive`` per target language, plus the accuracy on the ``extra`` label."""
    by_lang: dict[str, list[int]] = defaultdict(list)
    for i, pair in enumerate(pairs):
        by_lang[pair.tgt_lang].append(i)
    print(f"\n{title}: {len(pairs)} pairs, {len(by_lang)} target languages, {len({p.src_lang for p in pairs})} sources")
    print(f"  {'lang':<6}{'pairs':>6}{'positives':>10}{'precision':>10}{'recall':>8}   {extra}")
    for lang in [*sorted(by_lang), None]:
        indices = by_lang[lang] if lang else range(len(pairs))
        exp, got = [pairs[i].expected for i in indices], [predicted[i] for i in indices]
        precision, recall, positives, _ = precision_recall(exp, got, positive)
        wanted = [g for e, g in zip(exp, got, strict=True) if e == extra]
        extra_cell = f"{sum(g == extra for g in wanted)}/{len(wanted)}" if wanted else "-"
        name = lang or "all"
        print(f"  {name:<6}{len(exp):>6}{positives:>10}{precision:>10.2f}{recall:>8.2f}   {extra_cell}")


def clean_table(detector: ToxicityDetector, sentences: Sequence[tuple[str, str, str]], limit: int) -> None:
    """False alarms on clean sentences, per language family."""
    flagged: dict[str, list[str]] = defaultdict(list)
    total: dict[str, int] = defaultdict(int)
    for family, lang, text in sentences:
        total[family] += 1
        report = detector.detect(text, lang)
        if report.toxic:
            flagged[family].append(f"{lang} {text!r}: {[m.term for m in report.matches]}")
    print(f"\nFalse alarms on {len(sentences)} clean sentences (names, places, everyday phrases), per family")
    print(f"  {'family':<15}{'sentences':>10}{'flagged':>9}{'precision':>11}")
    for family in sorted(total):
        clean_share = 1 - len(flagged[family]) / total[family]
        print(f"  {family:<15}{total[family]:>10}{len(flagged[family]):>9}{clean_share:>11.3f}")
    alarms = [a for family in sorted(flagged) for a in flagged[family]]
    for alarm in alarms[:limit]:
        print(f"  false alarm: {alarm}")


def curated_table(
    name: str,
    predict: Callable[[Pair], str],
    pairs: Sequence[Pair],
    positive: tuple[frozenset[str], str],
    repeat: int,
    limit: int,
) -> None:
    """Per label, then per target language (precision / recall of the ``positive`` labels, accuracy on the extra
    label), then the misses."""
    predicted = [predict(pair) for pair in pairs]
    expected = [p.expected for p in pairs]
    print(f"\n{name}: {len(pairs)} pairs")
    print(f"  {'label':<22}{'precision':>10}{'recall':>8}{'n':>5}")
    for label in sorted(set(expected)):
        precision, recall, support, _ = precision_recall(expected, predicted, frozenset({label}))
        print(f"  {label:<22}{precision:>10.2f}{recall:>8.2f}{support:>5}")
    accuracy = sum(e == p for e, p in zip(expected, predicted, strict=True)) / len(expected)
    print(f"  accuracy {accuracy:.2f}; {checks_per_second(predict, pairs, repeat):,.0f} checks/s")
    per_language_table(f"{name}, per target language", pairs, predicted, *positive)
    print_misses(pairs, predicted, limit)


def checks_per_second(predict: Callable[[Pair], str], pairs: Sequence[Pair], repeat: int) -> float:
    """Pairs checked per second, lists already loaded (the table's pass loaded them)."""
    start = time.perf_counter()
    for _ in range(repeat):
        for pair in pairs:
            predict(pair)
    return repeat * len(pairs) / (time.perf_counter() - start)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="timing passes over each curated set")
    parser.add_argument("--misses", type=int, default=30, help="misses listed per table")
    args = parser.parse_args(argv)
    detector, checker = ToxicityDetector(), GenderBiasChecker()
    gender_pairs = read_pairs(EVAL_DIR / "templated_gender.tsv")
    predicted = [gender_label(checker, p) for p in gender_pairs]
    per_language_table("Gender, templated set", gender_pairs, predicted, GENDERED, "contradiction")
    print_misses(gender_pairs, predicted, args.misses)
    toxicity_pairs = read_pairs(EVAL_DIR / "templated_toxicity.tsv")
    predicted = [toxicity_label(detector, p) for p in toxicity_pairs]
    per_language_table("Toxicity, templated set", toxicity_pairs, predicted, frozenset({"added_toxic"}), "source_toxic")
    print_misses(toxicity_pairs, predicted, args.misses)
    clean_table(detector, list(load_generator().clean_sentences()), args.misses)
    print("\nCurated sets")
    curated_table(
        "Toxicity (added-toxicity labels)",
        lambda pair: toxicity_label(detector, pair),
        read_pairs(EVAL_DIR / "toxicity.tsv"),
        (frozenset({"added_toxic"}), "source_toxic"),
        args.repeat,
        args.misses,
    )
    curated_table(
        "Gender bias",
        lambda pair: gender_label(checker, pair),
        read_pairs(EVAL_DIR / "gender.tsv"),
        (GENDERED, "contradiction"),
        args.repeat,
        args.misses,
    )
    print("\nCoverage")
    print(format_table(coverage(detector, checker.lexicons)))


if __name__ == "__main__":
    main()
