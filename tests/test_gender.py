"""Gender-bias stage on curated sentence pairs, the lexicon files, and the alternative-building helpers."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from safety.gender import (
    EVIDENCE_KINDS,
    GENDER_DIR,
    GenderBiasChecker,
    GenderLexiconError,
    GenderOptions,
    GenderReport,
    other,
)

REQUIRED_TARGETS = ("spa", "fra", "ita", "por", "deu", "rus", "pol", "arb", "hin")
AGREEMENT_HEADER = "lang\tafter\tmasculine\tfeminine\tdetect\tskip\texcept\n"


@pytest.fixture(scope="module")
def checker() -> GenderBiasChecker:
    return GenderBiasChecker()


# --- curated pairs --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "src_lang", "target", "tgt_lang", "assumed"),
    [
        ("I am a doctor.", "eng", "Soy médico.", "spa", "masculine"),
        ("I am a doctor.", "eng", "Soy médica.", "spa", "feminine"),
        ("I am tired.", "eng", "Je suis fatiguée.", "fra", "feminine"),
        ("I am tired.", "eng", "Sono stanco.", "ita", "masculine"),
        ("Thank you.", "eng", "Obrigada.", "por", "feminine"),
        ("I am a teacher.", "eng", "Ich bin Lehrer.", "deu", "masculine"),
        ("I was tired.", "eng", "Я устала.", "rus", "feminine"),
        ("I was at home.", "eng", "Byłem w domu.", "pol", "masculine"),
        ("I am a doctor.", "eng", "أنا طبيبة.", "arb", "feminine"),
        ("I went home.", "eng", "मैं घर गया।", "hin", "masculine"),
        ("O bir doktor.", "tur", "Ella es médica.", "spa", "feminine"),
        ("Hän on opettaja.", "fin", "Er ist Lehrer.", "deu", "masculine"),
        ("Ő orvos.", "hun", "Lui è medico.", "ita", "masculine"),
        ("او دکتر است.", "pes", "Он врач.", "rus", "masculine"),
        ("Dia seorang dokter.", "ind", "Ela é médica.", "por", "feminine"),
        ("Tema on väsinud.", "est", "Она устала.", "rus", "feminine"),
    ],
)
def test_ambiguous_source_and_the_gender_the_translation_assumed(checker, source, src_lang, target, tgt_lang, assumed):
    report = checker.check(source, src_lang, target, tgt_lang)
    assert report.ambiguous
    assert report.assumed == assumed
    assert report.source_gender is None and not report.contradiction


@pytest.mark.parametrize(
    ("source", "src_lang", "target", "tgt_lang", "stated"),
    [
        ("My sister is a nurse.", "eng", "Mi hermana es enfermera.", "spa", "feminine"),
        ("He is ready.", "eng", "Il est prêt.", "fra", "masculine"),
        ("My mother was a teacher.", "eng", "Moja matka była nauczycielką.", "pol", "feminine"),
        ("Siskoni on lääkäri.", "fin", "Mi hermana es médica.", "spa", "feminine"),
        ("Je suis fatiguée.", "fra", "Estou cansada.", "por", "feminine"),  # a gendered source states it itself
    ],
)
def test_marked_and_consistent(checker, source, src_lang, target, tgt_lang, stated):
    report = checker.check(source, src_lang, target, tgt_lang)
    assert not report.ambiguous and not report.contradiction
    assert report.source_gender == report.assumed == stated


@pytest.mark.parametrize(
    ("source", "src_lang", "target", "tgt_lang", "wrong"),
    [
        ("My sister is a doctor.", "eng", "Mi hermana es médico.", "spa", "médico"),
        ("My sister is a doctor.", "eng", "Meine Schwester ist Arzt.", "deu", "Arzt"),
        ("She said yes.", "eng", "Она сказал «да».", "rus", "сказал"),
        ("My brother is a nurse.", "eng", "أخي ممرضة.", "arb", "ممرضة"),
        ("My sister went to the market.", "eng", "मेरी बहन बाज़ार गया।", "hin", "गया"),
        ("Estoy cansada.", "spa", "Je suis fatigué.", "fra", "fatigué"),
    ],
)
def test_contradiction_points_at_the_wrong_form(checker, source, src_lang, target, tgt_lang, wrong):
    report = checker.check(source, src_lang, target, tgt_lang)
    assert report.contradiction
    opposite = [s.text for s in report.spans if s.gender != report.source_gender]
    assert opposite == [wrong]


def test_speaker_stays_ambiguous_beside_a_third_person_cue(checker):
    report = checker.check("I told him I was tired.", "eng", "Le dije que estaba cansada.", "spa")
    assert report.source_gender == "masculine"  # "him"
    assert report.ambiguous and report.assumed == "feminine"
    assert not report.contradiction  # cansada is about the speaker


@pytest.mark.parametrize(
    ("source", "target", "tgt_lang"),
    [
        ("The weather is nice today.", "Hoy hace buen tiempo.", "spa"),
        ("The book was on the table.", "किताब मेज़ पर थी।", "hin"),  # feminine agreement with the book
        ("It is raining.", "Il pleut.", "fra"),  # impersonal il
    ],
)
def test_no_person_is_neither_ambiguous_nor_contradicted(checker, source, target, tgt_lang):
    report = checker.check(source, "eng", target, tgt_lang)
    assert not report.ambiguous and not report.contradiction and report.source_gender is None


def test_spans_point_into_the_target(checker):
    target = "La doctora está cansada en el hospital."
    report = checker.check("The doctor is tired at the hospital.", "eng", target, "spa")
    assert [(target[s.start : s.end], s.gender, s.kind) for s in report.spans] == [
        ("doctora", "feminine", "noun"),
        ("cansada", "feminine", "adj"),
    ]  # the determiners la / el are not evidence


@pytest.mark.parametrize(
    ("target", "lang", "found"),
    [
        ("Soy fotógrafa.", "spa", [("fotógrafa", "feminine")]),
        ("Estoy un poco nerviosa.", "spa", [("nerviosa", "feminine")]),  # un, poco passed over; lexicon word
        ("Estoy trabajando.", "spa", []),  # a gerund does not agree
        ("Soy yo.", "spa", []),  # too short to have an ending
        ("Sono esausto.", "ita", [("esausto", "masculine")]),
        ("Je me suis levée tard.", "fra", [("levée", "feminine")]),
        ("Wczoraj przeczytałam książkę.", "pol", [("przeczytałam", "feminine")]),  # any word
        ("Я рано заснула.", "rus", [("заснула", "feminine")]),
        ("Ich bin Pilotin.", "deu", [("Pilotin", "feminine")]),
        ("Ich bin Martin.", "deu", []),  # a name, not -in agreement
        ("Ich bin sicher.", "deu", []),  # -er is a swap target, not evidence
        ("أنا مرهقة.", "arb", [("مرهقة", "feminine")]),
    ],
)
def test_agreement_endings_catch_words_the_lexicon_lacks(checker, target, lang, found):
    assert [(s.text, s.gender) for s in checker.gendered_spans(target, lang)] == found


def test_arabic_clitics_and_vowel_marks(checker):
    (span,) = checker.gendered_spans("أنا الطَّبِيبَة", "arb")
    assert (span.text, span.gender) == ("الطَّبِيبَة", "feminine")


def test_language_without_lexicon_assumes_nothing(checker):
    report = checker.check("I am a doctor.", "eng", "Ik ben dokter.", "nld")
    assert report.ambiguous and report.assumed is None and not report.spans


def test_alternative_is_filled_by_replace(checker):
    report = checker.check("I am a doctor.", "eng", "Soy médico.", "spa")
    assert checker.marked_source("I am a doctor.", "eng", other(report.assumed)) == "I am a female doctor."
    filled = report.with_alternative("Soy médica.")
    assert isinstance(filled, GenderReport)
    assert (report.alternative, filled.alternative, filled.assumed) == (None, "Soy médica.", "masculine")


# --- alternatives ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "lang", "to", "expected"),
    [
        ("El médico está cansado en el hospital.", "spa", None, "La médica está cansada en el hospital."),
        ("Mi hermana es médico.", "spa", "feminine", "Mi hermana es médica."),
        ("Er ist ein Arzt.", "deu", None, "Sie ist eine Ärztin."),  # er ist is a pronoun form now
        ("SOY MÉDICO", "spa", None, "SOY MÉDICA"),
        ("Je suis allée au marché.", "fra", "masculine", "Je suis allé au marché."),
        ("Byłam zmęczona.", "pol", None, "Byłem zmęczony."),
        ("أنا الطبيبة", "arb", None, "أنا الطبيب"),
        ("मैं घर गया।", "hin", None, "मैं घर गई।"),
        ("Soy fotógrafa.", "spa", None, "Soy fotógrafo."),
        ("Ich bin die neue Managerin.", "deu", "masculine", "Ich bin der neue Manager."),
        ("Я рано заснула.", "rus", None, "Я рано заснул."),
        ("أنا مرهقة", "arb", None, "أنا مرهق"),
    ],
)
def test_swap_gender(checker, target, lang, to, expected):
    assert checker.swap_gender(target, lang, to=to) == expected


@pytest.mark.parametrize(
    ("target", "lang", "to"),
    [("Hoy hace buen tiempo.", "spa", None), ("Soy médica.", "spa", "feminine"), ("Ik ben dokter.", "nld", None)],
)
def test_swap_gender_returns_none_when_nothing_changes(checker, target, lang, to):
    assert checker.swap_gender(target, lang, to=to) is None


@pytest.mark.parametrize(
    ("source", "lang", "gender", "expected"),
    [
        ("I am a doctor.", "eng", "feminine", "I am a female doctor."),
        ("I am an engineer.", "eng", "masculine", "I am a male engineer."),
        ("I'm tired.", "eng", "feminine", "I, a woman, am tired."),
        ("Yesterday I was late.", "eng", "masculine", "Yesterday I, a man, was late."),
        ("O bir doktor.", "tur", "feminine", "O bir kadın doktor."),
    ],
)
def test_marked_source(checker, source, lang, gender, expected):
    assert checker.marked_source(source, lang, gender) == expected


@pytest.mark.parametrize(("source", "lang"), [("The weather is nice.", "eng"), ("Hän on väsynyt.", "fin")])
def test_marked_source_returns_none_when_it_cannot_mark(checker, source, lang):
    assert checker.marked_source(source, lang, "feminine") is None


# --- lexicon files --------------------------------------------------------------------------------------------


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as f:
        return list(csv.DictReader((line for line in f if not line.startswith("#")), delimiter="\t"))


@pytest.mark.parametrize("lang", REQUIRED_TARGETS)
def test_target_lexicon_has_no_form_of_both_genders(lang):
    rows = [row for row in read_rows(GENDER_DIR / f"{lang}.tsv") if row["kind"] in EVIDENCE_KINDS]
    assert len(rows) >= 20
    masculine, feminine = {r["masculine"] for r in rows}, {r["feminine"] for r in rows}
    assert not masculine & feminine


def test_a_new_language_is_a_new_file(tmp_path):
    for name in ("cues.tsv", "neutral.tsv", "clitics.tsv", "markers.tsv", "agreement.tsv"):
        (tmp_path / name).write_text((GENDER_DIR / name).read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "cat.tsv").write_text("masculine\tfeminine\tkind\ncansat\tcansada\tadj\n", encoding="utf-8")
    report = GenderBiasChecker(GenderOptions(tmp_path)).check("I am tired.", "eng", "Estic cansada.", "cat")
    assert report.ambiguous and report.assumed == "feminine"


@pytest.mark.parametrize(
    "content", ["masculine\tfeminine\tkind\ncansat\tcansada\tadverb\n", "masculine\tkind\ncansat\tadj\n"]
)
def test_malformed_lexicon_raises_typed_error(tmp_path, content):
    (tmp_path / "clitics.tsv").write_text("lang\tprefix\n", encoding="utf-8")
    (tmp_path / "agreement.tsv").write_text(AGREEMENT_HEADER, encoding="utf-8")
    (tmp_path / "cat.tsv").write_text("masculine\tfeminine\tkind\ncansat\tcansada\tadj\n", encoding="utf-8")
    assert GenderBiasChecker(GenderOptions(tmp_path)).gendered_spans("Estic cansada.", "cat")  # well-formed
    (tmp_path / "cat.tsv").write_text(content, encoding="utf-8")
    with pytest.raises(GenderLexiconError):
        GenderBiasChecker(GenderOptions(tmp_path)).gendered_spans("Estic cansada.", "cat")


@pytest.mark.parametrize(
    "row",
    [
        "cat\tsoc\tt|at\tda\tboth\t-\t-\n",  # endings do not pair up
        "cat\tsoc\tt\tda\tsometimes\t-\t-\n",  # unknown detect
        "cat\tsoc\t-\tda\tboth\t-\t-\n",  # the empty ending as evidence
    ],
)
def test_malformed_agreement_rule_raises_typed_error(tmp_path, row):
    (tmp_path / "clitics.tsv").write_text("lang\tprefix\n", encoding="utf-8")
    (tmp_path / "agreement.tsv").write_text(AGREEMENT_HEADER + row, encoding="utf-8")
    (tmp_path / "cat.tsv").write_text("masculine\tfeminine\tkind\n", encoding="utf-8")
    with pytest.raises(GenderLexiconError):
        GenderBiasChecker(GenderOptions(tmp_path)).gendered_spans("Soc cansada.", "cat")


def test_bad_lexicon_dir_is_rejected():
    with pytest.raises(ValueError):
        GenderOptions(Path("/no/such/folder"))


# --- evaluation sets ------------------------------------------------------------------------------------------


def test_eval_sets_are_well_formed():
    eval_dir = GENDER_DIR.parent / "eval"
    gender = read_rows(eval_dir / "gender.tsv")
    labels = {"ambiguous+masculine", "ambiguous+feminine", "ambiguous+neutral", "marked-consistent", "contradiction"}
    labels |= {"no-person"}
    assert len(gender) >= 60 and {r["expected"] for r in gender} == labels
    assert set(REQUIRED_TARGETS) <= {r["tgt_lang"] for r in gender}
    toxicity = read_rows(eval_dir / "toxicity.tsv")
    assert len(toxicity) >= 60
    assert {r["expected"] for r in toxicity} == {"clean", "source_toxic", "added_toxic", "obfuscated"}
