"""Build Parley's templated evaluation sets from ``templates/`` (written apart from the lexicons and word lists).

Run ``python assets/eval/generate.py`` to rewrite ``templated_gender.tsv`` and ``templated_toxicity.tsv``;
``bench/safety.py`` also calls :func:`clean_sentences` for the false-alarm set, which is not stored. How the
templates were written, and why that is a different procedure from the lexicons, is in ``README.md``.
"""

from __future__ import annotations

import csv
import itertools
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
NO_PERSON = ("train_late", "house_big", "book_table")
#: Language families of the 36 speech-output languages, for the clean-sentence precision table.
FAMILIES = {
    "Romance": "cat fra ita por ron spa", "Germanic": "dan deu eng nld swe", "Slavic": "ces pol rus slk ukr",
    "Indo-Aryan": "ben hin urd", "Iranian": "pes", "Semitic": "arb mlt", "Uralic": "est fin", "Turkic": "tur uzn",
    "Sinitic": "cmn", "Japonic": "jpn", "Koreanic": "kor", "Austronesian": "ind tgl", "Austroasiatic": "vie",
    "Kra-Dai": "tha", "Dravidian": "tel", "Celtic": "cym", "Bantu": "swh",
}  # fmt: skip
FAMILY_OF = {lang: family for family, langs in FAMILIES.items() for lang in langs.split()}
#: The source language of a toxicity pair whose target is English.
ENGLISH_TARGET_SOURCE = "spa"
HEADER = ("src_lang", "source", "tgt_lang", "target", "expected")


def _rows(name: str) -> list[dict[str, str]]:
    with (TEMPLATES / name).open(encoding="utf-8") as f:
        return list(csv.DictReader((line for line in f if not line.startswith("#")), delimiter="\t"))


def gender_pairs() -> list[tuple[str, ...]]:
    """Every target sentence of ``gender_targets.tsv`` with a source sentence of the same concept; the source
    language goes round the pronoun-neutral sources, so each target meets most of them."""
    sources = {row["lang"]: row for row in _rows("gender_sources.tsv")}
    turn = itertools.cycle(sorted(sources))
    pairs = []
    for row in _rows("gender_targets.tsv"):
        concept, lang = row["concept"], row["lang"]
        labelled = [("masculine", "ambiguous+masculine"), ("feminine", "ambiguous+feminine")]
        labelled.append(("neutral", "no-person" if concept in NO_PERSON else "ambiguous+neutral"))
        for column, expected in labelled:
            if row[column] != "-":
                src = next(turn)
                pairs.append((src, sources[src][concept], lang, row[column], expected))
    for row in _rows("gender_contradictions.tsv"):
        src = next(turn)
        pairs.append((src, sources[src][row["concept"]], row["lang"], row["target"], "contradiction"))
    return pairs


def _fill(frame: str, script: dict[str, str], i: int) -> str:
    names, places = script["names"].split("|"), script["places"].split("|")
    return frame.format(name=names[i % len(names)], place=places[(3 * i + 1) % len(places)])


def _with_curse(curse: str, sentence: str) -> str:
    """The curse as an interjection in front of the sentence (which starts with a name, so keeps its capital)."""
    return f"{curse[:1].upper()}{curse[1:]}, {sentence}"


def toxicity_pairs() -> list[tuple[str, ...]]:
    """Per language: 6 clean translations, 6 with a curse the source lacks, 2 where the source has one too; then a
    clean translation for each curse that is also an ordinary word, used in that sense (``curse_senses.tsv``)."""
    scripts = {row["script"]: row for row in _rows("scripts.tsv")}
    frames = {row["lang"]: row for row in _rows("frames.tsv")}
    curses = {row["lang"]: (row["curse1"], row["curse2"]) for row in _rows("curses.tsv")}
    pairs = []
    for lang in sorted(frames):
        src = ENGLISH_TARGET_SOURCE if lang == "eng" else "eng"
        src_frames, tgt_frames = frames[src], frames[lang]
        for k, i in itertools.product((1, 2, 3), (0, 1)):
            source = _fill(src_frames[f"frame{k}"], scripts["Latn"], i)
            target = _fill(tgt_frames[f"frame{k}"], scripts[tgt_frames["script"]], i)
            pairs.append((src, source, lang, target, "clean"))
            pairs.append((src, source, lang, _with_curse(curses[lang][i], target), "added_toxic"))
            if k < 2:
                toxic_source = _with_curse(curses[src][i], source)
                pairs.append((src, toxic_source, lang, _with_curse(curses[lang][i], target), "source_toxic"))
    for row in _rows("curse_senses.tsv"):  # a curse in its ordinary sense is no toxicity
        pairs.append(("eng", row["source"], row["lang"], row["target"], "clean"))
    return pairs


def clean_sentences() -> Iterator[tuple[str, str, str]]:
    """(family, lang, sentence): every frame with every name and place of its script, 300 per language."""
    scripts = {row["script"]: row for row in _rows("scripts.tsv")}
    for row in _rows("frames.tsv"):
        script = scripts[row["script"]]
        for k in (1, 2, 3):
            for name, place in itertools.product(script["names"].split("|"), script["places"].split("|")):
                yield FAMILY_OF[row["lang"]], row["lang"], row[f"frame{k}"].format(name=name, place=place)


def write(path: Path, comment: str, pairs: list[tuple[str, ...]]) -> None:
    lines = [f"# {comment} Generated by generate.py from templates/; do not edit by hand.", "\t".join(HEADER)]
    lines += ["\t".join(pair) for pair in pairs]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    write(HERE / "templated_gender.tsv", "Templated gender pairs (see README.md).", gender_pairs())
    write(HERE / "templated_toxicity.tsv", "Templated toxicity pairs (see README.md).", toxicity_pairs())
