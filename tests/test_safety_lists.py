"""The word lists added for coverage: the reviewed entries put back after the frequency filter, and the Arabic,
Hindi and Thai registry lists (one check per script family: Latin and Cyrillic, Arabic, Devanagari, Thai)."""

from __future__ import annotations

import csv

import pytest

from safety.toxicity import TOXICITY_ASSETS, ToxicityDetector, ToxicityOptions
from safety.toxicity.lists import bundled_terms, read_restored
from safety.toxicity.stems import trimmed


@pytest.fixture(scope="module")
def detector() -> ToxicityDetector:
    return ToxicityDetector()


def test_every_restored_entry_is_one_the_frequency_filter_left_out():
    """restored.tsv only undoes the filter: each row names the package whose left_out.tsv holds the entry."""
    with (TOXICITY_ASSETS / "restored.tsv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader((line for line in f if not line.startswith("#")), delimiter="\t"))
    assert len(rows) > 200
    for row in rows:
        left_out = (TOXICITY_ASSETS / row["package"] / "left_out.tsv").read_text(encoding="utf-8")
        assert f"{row['lang']}\t{row['entry']}\tZipf" in left_out, row
        assert row["meaning"], row
    assert sum(len(entries) for entries in read_restored().values()) == len(rows)


@pytest.mark.parametrize(
    ("lang", "text", "clean"),
    [
        ("swe", "Skit, bussen är sen igen.", "Bussen är sen igen."),
        ("rus", "Блять, автобус опять опоздал.", "Автобус опять опоздал."),
        ("dan", "Fanden, bussen er forsinket igen.", "Bussen er forsinket igen."),
        ("pes", "اتوبوس لعنتی دوباره دیر کرد.", "اتوبوس دوباره دیر کرد."),
    ],
)
def test_restored_curses_are_found_and_the_sentence_without_them_is_clean(detector, lang, text, clean):
    assert detector.detect(text, lang).toxic
    assert not detector.detect(clean, lang).toxic


def test_what_the_review_left_out_stays_unflagged(detector):
    """Frequent ordinary words the filter dropped and the review did not restore (French *chat*, Arabic
    *مجنون* "crazy", Persian *مادر* "mother")."""
    assert not detector.detect("Le chat dort.", "fra").toxic
    assert not detector.detect("هو ليس مجنون", "arb").toxic
    assert not detector.detect("مادر من معلم است.", "pes").toxic


def test_arabic_list_finds_a_curse_with_its_article_and_allows_the_plain_animal(detector):
    assert detector.detect("اللعنة، تأخر الحافلة مرة أخرى", "arb").toxic
    assert not detector.detect("الكلب ينام في الحديقة", "arb").toxic  # كلب "dog" is allow-listed
    assert "اللعنة" in bundled_terms("arb")


def test_devanagari_hindi_list_finds_an_insult_and_not_a_name(detector):
    assert detector.detect("वह हरामी है", "hin").toxic
    assert not detector.detect("गौतम दिल्ली में रहता है।", "hin").toxic  # a given name the list holds


def test_thai_list_matches_inside_unsegmented_text_but_drops_short_entries(detector):
    """Thai has no spaces, so entries match inside words; entries under 4 characters (อี, part of อีก "again")
    were left out, so an ordinary sentence with อีก stays clean."""
    assert detector.detect("ไอ้โง่ รถเมล์มาสายอีกแล้ว", "tha").toxic  # only tnprofanity lists ไอ้โง่
    assert not detector.detect("รถเมล์มาสายอีกแล้ว", "tha").toxic
    thai = (TOXICITY_ASSETS / "tnprofanity" / "tha.txt").read_text(encoding="utf-8").split()
    assert thai and min(len(entry) for entry in thai) >= 4


def test_languages_without_a_stemmer_match_a_list_word_with_a_short_ending(detector):
    """Welsh has no Snowball stemmer: *cach* "shit" in a list finds *cachu*, up to two letters more and no further;
    a word with combining marks is never trimmed (Telugu రొట్టె "bread" would leave a list word)."""
    assert "cach" in [t.lower() for t in bundled_terms("cym")]
    assert detector.detect("Cachu, mae'r bws yn hwyr.", "cym").toxic
    assert not detector.detect("Mae'r bws yn hwyr.", "cym").toxic
    assert not detector.detect("Cachiadau bws.", "cym").toxic  # five letters more: another word
    assert not detector.detect("అన్నా తాజా రొట్టె కొన్నారు.", "tel").toxic
    plain = ToxicityDetector(ToxicityOptions(suffix_letters=0))
    assert not plain.detect("Cachu, mae'r bws yn hwyr.", "cym").toxic


def test_trimmed_keeps_four_letters_and_leaves_marked_words_whole():
    assert trimmed("cachu", 1) == "cach"
    assert trimmed("cachu", 2) == ""  # three letters would be left
    assert trimmed("रोटियां", 1) == ""
    with pytest.raises(ValueError, match="suffix_letters"):
        ToxicityOptions(suffix_letters=-1)
