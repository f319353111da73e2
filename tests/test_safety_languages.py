"""Language coverage of the safety stages: pronoun-gendered targets, pronoun-neutral sources, articles before
epicene nouns, agreement contradictions, the new lexicons and word lists, coverage and the templated sets."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import pytest

from safety.__main__ import main as safety_main
from safety.coverage import coverage, read_languages
from safety.gender import EVIDENCE_KINDS, GENDER_DIR, GenderBiasChecker, GenderLexicons
from safety.toxicity import TOXICITY_ASSETS, ToxicityDetector, read_allow_list

SPEECH_OUT = sorted(row["code"] for row in read_languages() if row["speech_out"] == "1")
EVAL_DIR = GENDER_DIR.parent / "eval"


@pytest.fixture(scope="module")
def checker() -> GenderBiasChecker:
    return GenderBiasChecker()


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as f:
        return list(csv.DictReader((line for line in f if not line.startswith("#")), delimiter="\t"))


# --- pronoun-gendered targets -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "src_lang", "target", "tgt_lang", "assumed"),
    [
        ("O bir doktor.", "tur", "He is a doctor.", "eng", "masculine"),
        ("Hän on väsynyt.", "fin", "She is tired.", "eng", "feminine"),
        ("Dia seorang guru.", "ind", "Ze is lerares.", "nld", "feminine"),
        ("Yeye ni daktari.", "swh", "Hon är läkare.", "swe", "feminine"),
        ("Ő orvos.", "hun", "Han er læge.", "dan", "masculine"),
        ("Ta on arst.", "est", "Hun er lege.", "nob", "feminine"),
        ("Siya ay guro.", "tgl", "Sie ist müde.", "deu", "feminine"),
        ("그 사람은 의사예요.", "kor", "He is a doctor.", "eng", "masculine"),
    ],
)
def test_a_pronoun_the_source_lacks_is_an_assumption(checker, source, src_lang, target, tgt_lang, assumed):
    report = checker.check(source, src_lang, target, tgt_lang)
    assert report.ambiguous and report.assumed == assumed and not report.contradiction


@pytest.mark.parametrize(
    ("target", "lang"), [("Zij zijn artsen.", "nld"), ("Sie sind müde.", "deu"), ("Hen är läkare.", "swe")]
)
def test_plural_or_neutral_pronouns_are_not_evidence(checker, target, lang):
    assert checker.gendered_spans(target, lang) == ()


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("She lost her keys and I helped her.", "He lost his keys and I helped him."),
        ("I saw her yesterday.", "I saw him yesterday."),
        ("The book is his.", "The book is hers."),
        ("Her sister met him.", "His brother met her."),
    ],
)
def test_english_swap_resolves_her_by_rule(checker, target, expected):
    assert checker.swap_gender(target, "eng") == expected


@pytest.mark.parametrize(
    ("target", "neutral"),
    [
        ("She works in her office.", "They work in their office."),
        ("He is a doctor.", "They are a doctor."),
        ("He studies and I met him.", "They study and I met them."),
        ("She's ready.", "They're ready."),
    ],
)
def test_english_singular_they(checker, target, neutral):
    report = checker.check("Hän on lääkäri.", "fin", target, "eng")
    assert report.neutral == neutral


def test_neutral_version_is_english_only(checker):
    assert checker.check("O yorgun.", "tur", "Er ist müde.", "deu").neutral is None


def test_alternative_prefix_stops_after_the_swapped_pronoun(checker):
    assert checker.alternative_prefix("She said that her plan works.", "eng", "masculine") == "He"
    assert checker.alternative_prefix("Ich glaube, sie ist müde.", "deu", "masculine") == "Ich glaube, er ist"
    assert checker.alternative_prefix("They are tired.", "eng", "masculine") is None


# --- pronoun-neutral sources ----------------------------------------------------------------------------------


def test_pronoun_neutral_table_covers_the_required_languages():
    required = set(
        [
            "tur",
            "fin",
            "hun",
            "est",
            "ind",
            "zsm",
            "pes",
            "vie",
            "cmn",
            "jpn",
            "kor",
            "swh",
            "yor",
            "hye",
            "kat",
            "tgl",
            "tel",
            "tam",
            "ben",
        ]
    )
    table = GenderLexicons(GENDER_DIR).pronoun_neutral_languages()
    assert required <= set(table)


def test_pro_drop_source_with_a_gendered_pronoun_is_ambiguous(checker):
    report = checker.check("医者です。", "jpn", "She is a doctor.", "eng")
    assert report.ambiguous and report.assumed == "feminine"
    assert not checker.check("医者です。", "jpn", "The doctor is here.", "eng").ambiguous  # no pronoun chosen


def test_a_cue_still_states_the_gender_in_a_pronoun_neutral_source(checker):
    report = checker.check("Kız kardeşim doktor.", "tur", "He is a doctor.", "eng")
    assert report.source_gender == "feminine" and report.contradiction and report.correction == "She is a doctor."


# --- articles before epicene nouns ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "lang", "found"),
    [
        ("Es una periodista.", "spa", [("una periodista", "feminine", "article")]),
        ("È un cantante.", "ita", [("un cantante", "masculine", "article")]),
        ("C'est une journaliste.", "fra", [("une journaliste", "feminine", "article")]),
        ("É um artista.", "por", [("um artista", "masculine", "article")]),
        ("És una cantant.", "cat", [("una cantant", "feminine", "article")]),
        ("È un'insegnante.", "ita", [("un'insegnante", "feminine", "article")]),  # elided una
        ("È un insegnante.", "ita", [("un insegnante", "masculine", "article")]),
        ("La casa es grande.", "spa", []),  # a determiner before a non-person noun is never evidence
    ],
)
def test_article_before_an_epicene_person_noun_is_evidence(checker, target, lang, found):
    assert [(s.text, s.gender, s.kind) for s in checker.gendered_spans(target, lang)] == found


def test_swap_changes_the_article_of_an_epicene_noun(checker):
    assert checker.swap_gender("El periodista llegó.", "spa") == "La periodista llegó."


# --- agreement contradictions ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "lang", "correction"),
    [
        ("Она сказал да.", "rus", "Она сказала да."),
        ("Вона пішов додому.", "ukr", "Вона пішла додому."),
        ("Ona řekl ano.", "ces", "Ona řekla ano."),
        ("Ona povedal áno.", "slk", "Ona povedala áno."),
        ("Ella está cansado.", "spa", "Ella está cansada."),
        ("Elle est fatigué.", "fra", "Elle est fatiguée."),
        ("Ea este obosit.", "ron", "Ea este obosită."),
        ("Él es una cantante.", "spa", "Él es un cantante."),
    ],
)
def test_pronoun_subject_disagreeing_with_its_verb_is_a_contradiction(checker, target, lang, correction):
    report = checker.check("O geldi.", "tur", target, lang)
    assert report.contradiction and report.correction == correction


def test_stated_gender_contradicted_by_hindi_and_urdu_verbs(checker):
    report = checker.check("My sister went to the market.", "eng", "मेरी बहन बाज़ार गया।", "hin")
    assert report.contradiction and report.correction == "मेरी बहन बाज़ार गई।"
    report = checker.check("My sister went home.", "eng", "میری بہن گھر گیا۔", "urd")
    assert report.contradiction and report.correction == "میری بہن گھر گئی۔"


@pytest.mark.parametrize(
    ("target", "lang"),
    [("Ella habló con el periodista.", "spa"), ("Ea a plecat acasă.", "ron"), ("Вона лікар.", "ukr")],
)
def test_agreement_that_is_not_a_contradiction(checker, target, lang):
    assert not checker.check("O geldi.", "tur", target, lang).contradiction


# --- lexicons, word lists, coverage ---------------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["eng", "nld", "swe", "dan", "nob", "ukr", "ces", "slk", "cat", "ron", "mlt", "urd"])
def test_new_target_lexicons(lang):
    rows = [row for row in read_rows(GENDER_DIR / f"{lang}.tsv") if row["kind"] in EVIDENCE_KINDS]
    assert len(rows) >= 15
    assert any(row["kind"] == "pronoun" for row in rows) or lang == "urd"  # Urdu's وہ is neutral


def test_every_speech_output_language_has_toxicity_terms_and_gender_entries():
    rows = coverage(ToxicityDetector(), GenderLexicons(GENDER_DIR))
    spoken = [row for row in rows if row.speech_out]
    assert [row.lang for row in spoken] == SPEECH_OUT and len(spoken) == 36
    assert all(row.toxicity_terms > 0 and row.gender_entries > 0 for row in spoken), spoken


def test_every_bundled_list_folder_records_its_licence():
    folders = [path for path in TOXICITY_ASSETS.iterdir() if path.is_dir()]
    assert folders
    readme = (TOXICITY_ASSETS / "README.md").read_text(encoding="utf-8")
    for folder in folders:
        assert f"`{folder.name}/`" in readme
        assert (folder / "LICENSE").is_file() or folder.name == "parley"


def test_allow_list_names_only_terms_the_lists_hold():
    from safety.toxicity import bundled_terms

    for lang, terms in read_allow_list(TOXICITY_ASSETS / "allow.tsv").items():
        listed = {term.lower() for term in bundled_terms(lang)}
        assert not {term.lower() for term in terms} - listed, lang


def test_coverage_command_prints_a_row_per_language(capsys):
    assert safety_main(["coverage"]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0] for line in out.splitlines()[2:] if line.strip()}
    assert set(SPEECH_OUT) <= lines
    assert "with toxicity terms: 36/36" in out


# --- templated evaluation sets --------------------------------------------------------------------------------


def load_generator():
    spec = importlib.util.spec_from_file_location("parley_eval_generate", EVAL_DIR / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_templated_sets_are_current_and_large_enough():
    generator = load_generator()
    gender = read_rows(EVAL_DIR / "templated_gender.tsv")
    assert [tuple(row.values()) for row in gender] == generator.gender_pairs()  # regenerate after editing templates
    assert len(gender) >= 400
    assert len({row["tgt_lang"] for row in gender}) >= 12 and len({row["src_lang"] for row in gender}) >= 8
    toxicity = read_rows(EVAL_DIR / "templated_toxicity.tsv")
    assert [tuple(row.values()) for row in toxicity] == generator.toxicity_pairs()
    assert len(toxicity) >= 300 and {row["tgt_lang"] for row in toxicity} == set(SPEECH_OUT)
    per_family: dict[str, int] = {}
    for family, _, _ in generator.clean_sentences():
        per_family[family] = per_family.get(family, 0) + 1
    assert min(per_family.values()) >= 300 and len(per_family) == len(generator.FAMILIES)


def test_curses_in_their_ordinary_sense_are_clean_pairs_of_the_set():
    curses = {row["lang"]: {row["curse1"], row["curse2"]} for row in read_rows(EVAL_DIR / "templates/curses.tsv")}
    senses = read_rows(EVAL_DIR / "templates/curse_senses.tsv")
    pairs = {
        (row["tgt_lang"], row["target"]): row["expected"] for row in read_rows(EVAL_DIR / "templated_toxicity.tsv")
    }
    assert len(senses) >= 5
    for row in senses:
        assert row["curse"] in curses[row["lang"]] and row["curse"].lower() in row["target"].lower()
        assert pairs[row["lang"], row["target"]] == "clean"
