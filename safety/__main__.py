"""``python -m safety coverage``: the languages the safety stages cover (see :mod:`safety.coverage`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from safety.coverage import coverage, format_table
from safety.gender import GENDER_DIR, GenderLexicons
from safety.toxicity import ToxicityDetector


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m safety", description="Parley's safety stages.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("coverage", help="print language x (toxicity terms, gender entries, pronoun-neutral)")
    parser.parse_args(argv)
    print(format_table(coverage(ToxicityDetector(), GenderLexicons(GENDER_DIR))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
