"""Copy the word lists of three npm packages into ``assets/toxicity/<package>/<code>.txt``, one entry per line.

Run once by hand when a package is updated; Parley itself never needs npm. Download the tarballs with
``npm pack naughty-words@1.2.0 washyourmouthoutwithsoap@1.0.2 allprofanity@2.4.0``, then
``python assets/toxicity/extract_npm.py DIR`` (DIR holds the three ``.tgz`` files). The entries are copied as the
packages publish them (sorted, deduplicated); ordinary words the lists hold are overridden by ``allow.tsv``, not
edited here, so the copies stay comparable with their sources.
"""

from __future__ import annotations

import json
import re
import sys
import tarfile
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: naughty-words (LDNOOBW): file stem -> SeamlessM4T code. Esperanto, Kabyle, Klingon and Québécois have no code.
NAUGHTY_WORDS = {
    "ar": "arb", "cs": "ces", "da": "dan", "de": "deu", "en": "eng", "es": "spa", "fa": "pes", "fi": "fin",
    "fil": "tgl", "fr": "fra", "hi": "hin", "hu": "hun", "it": "ita", "ja": "jpn", "ko": "kor", "nl": "nld",
    "no": "nob", "pl": "pol", "pt": "por", "ru": "rus", "sv": "swe", "th": "tha", "tr": "tur", "zh": "cmn",
}  # fmt: skip
#: washyourmouthoutwithsoap: machine-translated from one English list, so used only for the speech-output
#: languages no hand-written list covers.
WASH = {
    "ca": "cat", "cy": "cym", "et": "est", "id": "ind", "mt": "mlt", "ro": "ron", "sk": "slk", "uk": "ukr",
    "uz": "uzn", "vi": "vie",
}  # fmt: skip
#: allprofanity: dist/languages/<name>-words.js -> SeamlessM4T code.
ALLPROFANITY = {"bengali": "ben", "telugu": "tel"}


def _members(tarball: Path) -> dict[str, bytes]:
    with tarfile.open(tarball) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]


def _write(package: str, code: str, entries: list[str]) -> None:
    folder = HERE / package
    folder.mkdir(exist_ok=True)
    clean = sorted({e.strip() for e in entries if e.strip()})
    (folder / f"{code}.txt").write_text("\n".join(clean) + "\n", encoding="utf-8")


def main(folder: Path) -> None:
    files = _members(next(folder.glob("naughty-words-*.tgz")))
    for stem, code in NAUGHTY_WORDS.items():
        _write("naughty-words", code, json.loads(files[f"package/{stem}.json"]))
    lists = json.loads(_members(next(folder.glob("washyourmouthoutwithsoap-*.tgz")))["package/data/build.json"])
    for stem, code in WASH.items():
        _write("washyourmouthoutwithsoap", code, lists[stem])
    files = _members(next(folder.glob("allprofanity-*.tgz")))
    for name, code in ALLPROFANITY.items():
        source = files[f"package/dist/languages/{name}-words.js"].decode("utf-8")
        _write("allprofanity", code, re.findall(r'^\s*"([^"]+)",?\s*$', source, flags=re.MULTILINE))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
