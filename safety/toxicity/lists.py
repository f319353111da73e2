"""Where the toxicity word lists come from: bundled lists, NLLB Toxicity-200 folders, and the allow-list.

Bundled lists (``ToxicityOptions.bundled_lists``), per SeamlessM4T code:

* the lists of the ``glin-profanity`` Python package (about 25 languages), read through the installed package;
* copies of npm packages under ``assets/toxicity/<package>/<code>.txt`` (``assets/toxicity/README.md`` names
  each package, its version and licence): LDNOOBW's ``naughty-words``, ``washyourmouthoutwithsoap`` for the
  speech-output languages no hand-written list covers, ``allprofanity`` for Bengali and Telugu, and short
  Parley-written lists for Urdu and Swahili, which no registry package covers.

NLLB Toxicity-200 lists come from a folder (``ToxicityOptions.toxicity_dir``): one word or phrase per line, one
file per language (``eng_Latn_twl.txt``, ``spa.txt``), optionally rot13-encoded, in subfolders too, or the
release's password-protected ``<code>_twl.zip`` archives as downloaded.

The bundled lists hold ordinary words too, above all the machine-translated ones (Indonesian *terima kasih*
"thank you", Portuguese *cerveja* "beer"): ``assets/toxicity/allow.tsv`` lists those reviewed by hand, per
language, and the detector never flags them.
"""

from __future__ import annotations

import codecs
import csv
import zipfile
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

TOXICITY_ASSETS = Path(__file__).resolve().parent.parent.parent / "assets" / "toxicity"
ALLOW_LIST = TOXICITY_ASSETS / "allow.tsv"
#: Entries the frequency filter of ``extract.py`` left out and the hand review put back (curses are frequent words).
RESTORED = TOXICITY_ASSETS / "restored.tsv"
#: Stems of list words that are frequent ordinary words no list holds (``extract.py`` writes it): never stem-matched.
STEM_EXCEPTIONS = TOXICITY_ASSETS / "stem_exceptions.tsv"

#: glin-profanity's list names (its ``DictionaryLoader.LANGUAGE_FILES`` keys) to SeamlessM4T codes. Esperanto has
#: no SeamlessM4T code and is left out.
GLIN_LANGUAGES = {
    "arabic": "arb", "chinese": "cmn", "czech": "ces", "danish": "dan", "dutch": "nld", "english": "eng",
    "finnish": "fin", "french": "fra", "german": "deu", "hindi": "hin", "hungarian": "hun", "italian": "ita",
    "japanese": "jpn", "korean": "kor", "norwegian": "nob", "persian": "pes", "polish": "pol",
    "portuguese": "por", "russian": "rus", "spanish": "spa", "swedish": "swe", "thai": "tha", "turkish": "tur",
}  # fmt: skip
#: glin-profanity keeps one Chinese list; the traditional-script and Cantonese outputs use it too.
GLIN_EXTRA_CODES = {"cmn_Hant": "chinese", "yue": "chinese"}

#: File-name codes that are not SeamlessM4T codes: NLLB/ISO 639-3 macrolanguages and common ISO 639-1 codes.
CODE_ALIASES = {
    "zho": "cmn", "ara": "arb", "fas": "pes", "per": "pes", "msa": "zsm", "nor": "nob",
    "ar": "arb", "bn": "ben", "cs": "ces", "da": "dan", "de": "deu", "el": "ell", "en": "eng", "es": "spa",
    "et": "est", "fa": "pes", "fi": "fin", "fr": "fra", "he": "heb", "hi": "hin", "hu": "hun", "id": "ind",
    "it": "ita", "ja": "jpn", "km": "khm", "ko": "kor", "lo": "lao", "ms": "zsm", "my": "mya", "nb": "nob",
    "nl": "nld", "no": "nob", "pl": "pol", "pt": "por", "ro": "ron", "ru": "rus", "sv": "swe", "th": "tha",
    "tr": "tur", "uk": "ukr", "ur": "urd", "vi": "vie", "zh": "cmn",
}  # fmt: skip
NLLB_LIST_SUFFIX = "_twl"
#: The Toxicity-200 archives are password-protected so that opening them is a deliberate act; the password is the
#: one their README publishes (facebookresearch/flores, toxicity/README.md).
TOXICITY_200_PASSWORD = b"tL4nLLb"
#: Languages close enough to share their swear words, spelling included: each also uses the other's bundled lists.
#: Czech and Slovak are mutually intelligible and their obscenities are the same words (*kurva*, *do piče*);
#: Standard Malay and Indonesian are one language in two standards.
SHARED_LISTS = {"slk": ("ces",), "ces": ("slk",), "zsm": ("ind",)}
#: Folders whose entries use bad-words-next's pattern syntax: ``*`` at either end stands for any letters (a stem,
#: ``курв*``), ``+`` repeats the letter before it, ``_`` stands for a space or punctuation.
PATTERN_LISTS = frozenset({"bad-words-next", "persian-text-guard"})
#: The one pattern character the detector reads (:data:`safety.toxicity.text.STEM`); lists.py rewrites the rest.
OPEN_END = "*"


class ToxicityListError(ValueError):
    """A word list that cannot be read or decoded."""


def seamless_code(name: str) -> str:
    """SeamlessM4T code for a list name: ``eng_Latn_twl`` -> ``eng``, ``zho_Hant`` -> ``cmn_Hant``, ``es`` -> ``spa``.

    Unknown codes come back as given (lower-cased): a list for a language the model cannot produce never matches.
    """
    parts = name.lower().removesuffix(NLLB_LIST_SUFFIX).split("_")
    code = CODE_ALIASES.get(parts[0], parts[0])
    script = parts[1] if len(parts) > 1 else ""
    return f"{code}_Hant" if code == "cmn" and script == "hant" else code


def rot13(text: str) -> str:
    return codecs.encode(text, "rot13")


def looks_rot13(lines: Sequence[str]) -> bool:
    """Guess whether Latin-script lines are rot13-encoded.

    Vowels are about 40 % of the letters of words in Latin-script languages; rot13 turns them into n, r, v, b, h
    (about 20 %). Whichever reading has more vowels is the plain one. Lines without Latin letters give False.
    """
    text = "".join(lines).lower()
    plain_vowels = sum(text.count(v) for v in "aeiou")
    decoded_vowels = sum(rot13(text).count(v) for v in "aeiou")
    return decoded_vowels > plain_vowels


def _read_lines(path: Path) -> list[str]:
    """Entries of a one-per-line list (or of the ``.txt`` files in a Toxicity-200 ``.zip``): blank lines and ``#``
    comments skipped."""
    try:
        if path.suffix == ".zip":
            with zipfile.ZipFile(path) as archive:
                names = [n for n in archive.namelist() if n.endswith(".txt")]
                text = "\n".join(archive.read(n, pwd=TOXICITY_200_PASSWORD).decode("utf-8") for n in names)
        else:
            text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError, zipfile.BadZipFile, RuntimeError, NotImplementedError) as e:
        raise ToxicityListError(f"cannot read toxicity list {path}: {e}") from e
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def read_nllb_list(path: Path, rot13_encoded: bool | None = None) -> list[str]:
    """Entries of one NLLB Toxicity-200 list file; ``rot13_encoded=None`` guesses the encoding (:func:`looks_rot13`)."""
    entries = _read_lines(path)
    if rot13_encoded is None:
        rot13_encoded = looks_rot13(entries)
    return [rot13(entry) for entry in entries] if rot13_encoded else entries


def nllb_list_files(folder: Path) -> dict[str, list[Path]]:
    """The list files under a folder (subfolders too), grouped by SeamlessM4T code: ``*.txt`` files, and the
    Toxicity-200 release's ``<code>_twl.zip`` archives as downloaded (a ``.txt`` beside its ``.zip`` wins)."""
    files: dict[str, list[Path]] = {}
    paths = sorted(folder.rglob("*.txt"))
    unzipped = {p.with_suffix("") for p in paths}
    paths += [p for p in sorted(folder.rglob("*.zip")) if p.with_suffix("") not in unzipped]
    for path in paths:
        files.setdefault(seamless_code(path.stem), []).append(path)
    return files


def glin_terms(lang: str) -> list[str]:
    """The glin-profanity list for a SeamlessM4T code (empty when the package has none)."""
    from glin_profanity.data.dictionary import DictionaryLoader

    names = {code: name for name, code in GLIN_LANGUAGES.items()} | GLIN_EXTRA_CODES
    name = names.get(lang)
    return DictionaryLoader().get_words(name) if name else []


def asset_list_files(lang: str, folder: Path = TOXICITY_ASSETS) -> list[Path]:
    """The npm-derived and Parley lists for ``lang`` under ``assets/toxicity/<package>/``."""
    return sorted(folder.glob(f"*/{lang}.txt"))


def from_pattern(entry: str) -> str:
    """A bad-words-next pattern as a plain entry that keeps only its open ends: ``s+c+heis+e`` -> ``scheise``."""
    return entry.replace("+", "").replace("_", " ")


def bundled_terms(lang: str) -> list[str]:
    """Every bundled entry for ``lang``: glin-profanity, then the lists under ``assets/toxicity``.

    An entry may start or end with :data:`OPEN_END` (a stem); only the pattern lists hold such entries. A language
    in :data:`SHARED_LISTS` also gets the asset lists of its close relatives, and every language the entries of
    ``restored.tsv`` for it.
    """
    entries = glin_terms(lang)
    for path in [p for code in (lang, *SHARED_LISTS.get(lang, ())) for p in asset_list_files(code)]:
        lines = _read_lines(path)
        entries += [from_pattern(e) for e in lines] if path.parent.name in PATTERN_LISTS else lines
    return entries + list(read_restored().get(lang, ()))


def _read_tsv(path: Path, what: str) -> list[dict[str, str]]:
    """The rows of one of the project's tab-separated tables (lines starting with ``#`` are comments)."""
    try:
        with path.open(encoding="utf-8") as f:
            return list(csv.DictReader((line for line in f if not line.startswith("#")), delimiter="\t"))
    except (OSError, UnicodeDecodeError) as e:
        raise ToxicityListError(f"cannot read {what} {path}: {e}") from e


@lru_cache(maxsize=1)
def read_restored(path: Path = RESTORED) -> dict[str, tuple[str, ...]]:
    """``restored.tsv`` as language -> entries (columns ``lang``, ``entry``, ``package``, ``meaning``).

    The frequency filter drops frequent entries of the unreviewed lists, since ordinary words are frequent; but so
    are the curses people say most (Swedish *skit*, Russian *блять*), so a review of what it dropped puts those back.
    """
    rows = _read_tsv(path, "restored entries")
    restored: dict[str, list[str]] = {}
    for row in rows:
        restored.setdefault(row["lang"], []).append(row["entry"])
    return {lang: tuple(entries) for lang, entries in restored.items()}


def read_stem_exceptions(path: Path = STEM_EXCEPTIONS) -> dict[str, frozenset[str]]:
    """``stem_exceptions.tsv`` as language -> stems never to match by stem (columns ``lang``, ``stem``, …)."""
    rows = _read_tsv(path, "stem exceptions")
    stems: dict[str, set[str]] = {}
    for row in rows:
        stems.setdefault(row["lang"], set()).add(row["stem"])
    return {lang: frozenset(s) for lang, s in stems.items()}


def read_allow_list(path: Path) -> dict[str, frozenset[str]]:
    """``allow.tsv`` as language -> terms never to flag (columns ``lang``, ``term``, ``meaning``)."""
    rows = _read_tsv(path, "allow-list")
    allowed: dict[str, set[str]] = {}
    for number, row in enumerate(rows, start=2):
        if not row.get("lang") or not row.get("term"):
            raise ToxicityListError(f"{path}: row {number} lacks lang or term: {row}")
        allowed.setdefault(row["lang"], set()).add(row["term"])
    return {lang: frozenset(terms) for lang, terms in allowed.items()}
