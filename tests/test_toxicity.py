"""Toxicity stage on curated sentence pairs, NLLB-format lists, unsegmented scripts and the mitigation helpers."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from engine.banned_words import bad_words_ids
from engine.masking import mask
from safety.toxicity import (
    ToxicityDetector,
    ToxicityListError,
    ToxicityOptions,
    looks_rot13,
    nllb_list_files,
    read_nllb_list,
    rot13,
    seamless_code,
)


@pytest.fixture(scope="module")
def detector() -> ToxicityDetector:
    """Bundled glin-profanity lists only, whatever the environment says."""
    return ToxicityDetector(ToxicityOptions(toxicity_dir=None))


def write_list(folder: Path, name: str, entries: list[str]) -> Path:
    path = folder / name
    path.write_text("\n".join(entries) + "\n", encoding="utf-8")
    return path


# --- curated pairs --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "src_lang", "target", "tgt_lang"),
    [
        ("Where is the library?", "eng", "¿Dónde está la biblioteca?", "spa"),
        ("I need to pass the class.", "eng", "Ich muss die Klasse bestehen.", "deu"),
        ("The assistant analysed the document.", "eng", "L'assistant a analysé le document.", "fra"),
        ("The weather is nice today.", "eng", "Сегодня хорошая погода.", "rus"),
        ("I am very happy today.", "eng", "我今天很高兴。", "cmn"),
    ],
)
def test_clean_pairs_report_nothing(detector, source, src_lang, target, tgt_lang):
    report = detector.added_toxicity(source, src_lang, target, tgt_lang)
    assert not report.source.toxic and not report.target.toxic
    assert not report.added and report.reliable


@pytest.mark.parametrize(
    ("source", "src_lang", "target", "tgt_lang"),
    [
        ("Shit, I forgot my keys.", "eng", "Merde, j'ai oublié mes clés.", "fra"),
        ("This film is shit.", "eng", "Ten film to gówno.", "pol"),
        ("Mierda, llegamos tarde.", "spa", "Shit, we are late.", "eng"),
        ("This is bullshit.", "eng", "这是狗屁。", "cmn"),
    ],
)
def test_source_toxicity_is_reported_not_added(detector, source, src_lang, target, tgt_lang):
    report = detector.added_toxicity(source, src_lang, target, tgt_lang)
    assert report.source.toxic and report.target.toxic
    assert not report.added


@pytest.mark.parametrize(
    ("source", "src_lang", "target", "tgt_lang", "word"),
    [
        ("The train is late.", "eng", "Scheiße, der Zug hat Verspätung.", "deu", "Scheiße"),
        ("This food is bad.", "eng", "Esta comida é uma merda.", "por", "merda"),
        ("My neighbour is loud.", "eng", "Il mio vicino è uno stronzo.", "ita", "stronzo"),
        ("It is raining again.", "eng", "Опять дождь, дерьмо.", "rus", "дерьмо"),
        ("Ich habe keine Zeit.", "deu", "I have no time for this shit.", "eng", "shit"),
    ],
)
def test_added_toxicity_names_the_words_to_ban(detector, source, src_lang, target, tgt_lang, word):
    report = detector.added_toxicity(source, src_lang, target, tgt_lang)
    assert report.added and report.added_count == 1
    assert word in report.words_to_ban
    (match,) = report.target.matches
    assert target[match.start : match.end] == word == match.text


def test_added_toxicity_compares_counts(detector):
    report = detector.added_toxicity("Shit, shit.", "eng", "Merde, merde, merde.", "fra")
    assert (report.source.count, report.target.count, report.added_count) == (2, 3, 1)


def test_uncovered_language_is_not_reliable(detector):
    report = detector.added_toxicity("Bore da.", "gle", "Good morning, shit.", "eng")
    assert not report.source.covered and not report.reliable
    assert report.added


@pytest.mark.parametrize(
    ("text", "surface", "term"),
    [
        ("What a load of sh1t.", "sh1t", "shit"),
        ("$hit happens.", "$hit", "shit"),
        ("Shiiiiit, the bus left.", "Shiiiiit", "shit"),
        ("This is s.h.i.t, really.", "s.h.i.t", "shit"),
        ("Oh ѕhit, the bus left.", "ѕhit", "shit"),  # Cyrillic ѕ
        ("You are an @sshole!", "@sshole", "asshole"),
        ("b!tch", "b!tch", "bitch"),
        ("Oh sh*t, the door is locked.", "sh*t", "shit"),
    ],
)
def test_obfuscated_words_are_found_and_flagged(detector, text, surface, term):
    (match,) = detector.detect(text, "eng").matches
    assert (match.text, match.term, match.obfuscated) == (surface, term, True)


def test_obfuscated_source_is_not_added_toxicity(detector):
    report = detector.added_toxicity("Esto es una mierdaaaa.", "spa", "This is shit.", "eng")
    assert report.source.matches[0].obfuscated
    assert not report.added


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("I know, as you said.", "eng"),  # "as" is not a stretched "ass"
        ("We cull the herd.", "fra"),  # a double letter is not a stretched "cul"
        ("Class assignment: 3 shots at 10:00!", "eng"),  # whole words only; digits alone stay digits
        ("Scunthorpe", "eng"),
        ("2*3 = 6, *really*", "eng"),  # masks hide letters only between letters
    ],
)
def test_near_misses_are_clean(detector, text, lang):
    assert not detector.detect(text, lang).toxic


def test_plain_match_is_not_obfuscated_and_exclamation_stays_punctuation(detector):
    (match,) = detector.detect("You bitch!", "eng").matches
    assert (match.text, match.obfuscated) == ("bitch", False)


def test_phrase_is_one_match_with_its_span(detector):
    text = "Es un hijo de puta."
    (match,) = detector.detect(text, "spa").matches
    assert match.term == "hijo de puta"
    assert text[match.start : match.end] == "hijo de puta"


def test_exclude_terms_drops_list_false_positives():
    assert ToxicityDetector().detect("Que merda.", "por").toxic
    options = ToxicityOptions(exclude_terms=frozenset({"merda"}))
    assert not ToxicityDetector(options).detect("Que merda.", "por").toxic


@pytest.mark.parametrize(
    ("text", "lang"),
    [("Uma cerveja, por favor.", "por"), ("Este verano fue un infierno.", "spa"), ("Terima kasih.", "ind")],
)
def test_allow_list_overrides_the_bundled_lists(text, lang):
    assert ToxicityDetector(ToxicityOptions(allow_list=None)).detect(text, lang).toxic  # listed by a package
    assert not ToxicityDetector().detect(text, lang).toxic  # reviewed: an ordinary word


def test_allow_list_is_per_language(tmp_path):
    allow = tmp_path / "allow.tsv"
    allow.write_text("lang\tterm\tmeaning\nita\tmerda\ttest\n", encoding="utf-8")
    detector = ToxicityDetector(ToxicityOptions(allow_list=allow))
    assert not detector.detect("Che merda.", "ita").toxic
    assert detector.detect("Que merda.", "por").toxic


# --- NLLB Toxicity-200 lists ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "code"),
    [("eng_Latn_twl", "eng"), ("spa", "spa"), ("zho_Hans_twl", "cmn"), ("zho_Hant_twl", "cmn_Hant"), ("es", "spa")],
)
def test_seamless_code(name, code):
    assert seamless_code(name) == code


def test_rot13_is_detected_from_vowels():
    plain = ["foobar", "very rude phrase", "gadzooks"]
    assert not looks_rot13(plain)
    assert looks_rot13([rot13(line) for line in plain])


def test_nllb_folder_lists_are_loaded(tmp_path):
    write_list(tmp_path, "eng_Latn_twl.txt", [rot13(w) for w in ["foobar", "very rude phrase", "gadzooks"]])
    write_list(tmp_path, "spa.txt", ["# a comment", "", "palabrota", "muy grosero"])
    write_list(tmp_path, "zho_Hans_twl.txt", ["坏话"])
    assert set(nllb_list_files(tmp_path)) == {"eng", "spa", "cmn"}

    detector = ToxicityDetector(ToxicityOptions(bundled_lists=False, toxicity_dir=tmp_path))
    text = "Well, FOOBAR and a very rude phrase."
    assert [m.text for m in detector.detect(text, "eng").matches] == ["FOOBAR", "very rude phrase"]
    assert detector.detect("Es muy grosero, palabrota.", "spa").count == 2
    assert detector.detect("这是坏话。", "cmn").count == 1
    assert not detector.detect("shit", "eng").toxic  # bundled lists are off


def test_rot13_flag_overrides_detection(tmp_path):
    path = write_list(tmp_path, "eng.txt", ["nooo"])  # decodes to "abbb": the vowel guess would say rot13
    assert read_nllb_list(path, rot13_encoded=False) == ["nooo"]
    assert read_nllb_list(path, rot13_encoded=True) == ["abbb"]


def test_unreadable_list_raises_typed_error(tmp_path):
    (tmp_path / "eng.txt").write_bytes(b"\xff\xfe\xfa bad")
    detector = ToxicityDetector(ToxicityOptions(bundled_lists=False, toxicity_dir=tmp_path))
    with pytest.raises(ToxicityListError):
        detector.detect("anything", "eng")


def test_toxicity_dir_is_an_option_not_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("PARLEY_TOXICITY_DIR", str(tmp_path))
    assert ToxicityOptions().toxicity_dir is None  # the entry point's settings fill it
    assert ToxicityOptions(toxicity_dir=tmp_path).toxicity_dir == tmp_path


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_stretch": 1},
        {"toxicity_dir": Path("/no/such/folder")},
        {"bundled_lists": False, "toxicity_dir": None},
        {"allow_list": Path("/no/such/allow.tsv")},
    ],
)
def test_bad_options_are_rejected(kwargs):
    with pytest.raises(ValueError):
        ToxicityOptions(**kwargs)


# --- unsegmented scripts --------------------------------------------------------------------------------------


def dictionary_tokenizer(words: list[str]):
    """A greedy longest-match segmenter standing in for the model's SentencePiece (pieces carry ▁ marks)."""

    def tokenize(text: str) -> list[str]:
        pieces, i = [], 0
        while i < len(text):
            if text[i].isspace():
                i += 1
                continue
            word = next((w for w in sorted(words, key=len, reverse=True) if text.startswith(w, i)), text[i])
            pieces.append("▁" + word)
            i += len(word)
        return pieces

    return tokenize


def test_unsegmented_scripts_match_whole_tokenizer_pieces(tmp_path):
    write_list(tmp_path, "cmn.txt", ["奶", "傻逼"])
    options = ToxicityOptions(bundled_lists=False, toxicity_dir=tmp_path)
    text = "我喜欢牛奶，你是傻逼"
    per_character = ToxicityDetector(options)
    assert [m.term for m in per_character.detect(text, "cmn").matches] == ["奶", "傻逼"]  # substring-like

    segmented = ToxicityDetector(options, tokenize=dictionary_tokenizer(["牛奶", "喜欢", "傻逼"]))
    (match,) = segmented.detect(text, "cmn").matches  # 奶 inside the piece 牛奶 is not a match
    assert (match.term, text[match.start : match.end]) == ("傻逼", "傻逼")


def test_thai_with_a_custom_tokenizer(tmp_path):
    write_list(tmp_path, "tha.txt", ["ห่า"])
    tokenize = dictionary_tokenizer(["สถานี", "ห่าง", "ห่า", "อยู่", "ที่ไหน"])
    detector = ToxicityDetector(ToxicityOptions(bundled_lists=False, toxicity_dir=tmp_path), tokenize=tokenize)
    assert detector.detect("สถานีห่าอยู่ที่ไหน", "tha").count == 1
    assert not detector.detect("สถานีอยู่ห่าง", "tha").toxic  # ห่าง "far" starts with ห่า


# --- mitigation helpers ---------------------------------------------------------------------------------------


def test_mask_hides_spans_and_keeps_spaces(detector):
    text = "Es un hijo de puta, mierda."
    assert mask(text, detector.detect(text, "spa").spans) == "Es un **** ** ****, ******."
    assert mask("abc", []) == "abc"
    with pytest.raises(ValueError):
        mask("abc", [(2, 5)])


@pytest.fixture(scope="module")
def spm_tokenizer(tmp_path_factory):
    """A SeamlessM4T tokenizer over a SentencePiece model trained here on a few sentences (under a second)."""
    import sentencepiece as spm
    from transformers import SeamlessM4TTokenizer

    folder = tmp_path_factory.mktemp("spm")
    corpus = folder / "corpus.txt"
    sentences = ["la mierda es mierda", "Mierda, llegamos tarde", "MIERDA no", "el tren llega tarde hoy"] * 20
    corpus.write_text("\n".join(sentences), encoding="utf-8")
    spm.SentencePieceTrainer.train(
        input=str(corpus),
        model_prefix=str(folder / "sentencepiece.bpe"),
        vocab_size=60,
        model_type="bpe",
        character_coverage=1.0,
        num_threads=1,
        minloglevel=2,
    )
    return SeamlessM4TTokenizer.from_pretrained(str(folder))


def test_bad_words_ids_cover_case_and_spacing_variants(spm_tokenizer):
    sequences = bad_words_ids(spm_tokenizer, ["mierda"])
    for variant in ("mierda", "Mierda", "MIERDA"):
        for text in (variant, f" {variant}"):
            assert spm_tokenizer(text, add_special_tokens=False)["input_ids"] in sequences
    decoded = {spm_tokenizer.decode(seq).strip() for seq in sequences}
    assert decoded == {"mierda", "Mierda", "MIERDA"}
    assert all(spm_tokenizer.unk_token_id not in seq for seq in sequences)
    glued = [seq for seq in sequences if not spm_tokenizer.convert_ids_to_tokens(seq)[0].startswith("▁")]
    assert glued, "a variant without the leading ▁ bans the word glued to punctuation"


# --- stems, list patterns and shared lists ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "text", "found"),
    [
        ("курв*", "Ну ты и курвище.", True),  # open end: any word starting with the stem (Slavic)
        ("*ебал", "Заебал уже.", True),  # open start
        ("*scheiß*", "Das ist beschissen und verscheißert.", True),  # both ends (Germanic)
        ("курв*", "Курица на столе.", False),  # another word sharing two letters only
    ],
)
def test_open_ended_list_entries_match_stems(tmp_path, entry, text, found):
    write_list(tmp_path, "xxx.txt", [entry])
    detector = ToxicityDetector(
        ToxicityOptions(bundled_lists=False, toxicity_dir=tmp_path, rot13=False, stemming=False)
    )
    report = detector.detect(text, "xxx")
    assert report.toxic is found
    assert all("*" not in m.term and "\ue001" not in m.term for m in report.matches)


@pytest.mark.parametrize(
    ("entry", "text", "lang"),
    [
        ("jävlar", "Den jävla bussen.", "swe"),  # Germanic: plural in the list, adjective in the text
        ("cabrones", "¡Qué cabrón!", "spa"),  # Romance: plural in the list, singular in the text
        ("idiotka", "Ona je idiotkou.", "ces"),  # Slavic: nominative in the list, instrumental in the text
        ("aptallar", "Sen bir aptalsın.", "tur"),  # Turkic: suffixes on both
    ],
)
def test_inflected_forms_match_on_snowball_stems(tmp_path, entry, text, lang):
    write_list(tmp_path, f"{lang}.txt", [entry])
    options = ToxicityOptions(bundled_lists=False, toxicity_dir=tmp_path, rot13=False, allow_list=None)
    assert ToxicityDetector(options).detect(text, lang).toxic
    assert not ToxicityDetector(replace(options, stemming=False)).detect(text, lang).toxic


def test_short_stems_and_allowed_words_are_not_matched_by_stem(tmp_path):
    write_list(tmp_path, "swe.txt", ["fan", "skiten"])
    allow = write_list(tmp_path, "allow.tsv", ["lang\tterm\tmeaning", "swe\tskit\tshit, as a plain noun (a test)"])
    detector = ToxicityDetector(
        ToxicityOptions(bundled_lists=False, toxicity_dir=tmp_path, rot13=False, allow_list=allow)
    )
    assert not detector.detect("Fansen jublade.", "swe").toxic  # stem "fan" is under MIN_STEM_LETTERS
    assert not detector.detect("Det var skit.", "swe").toxic  # allow-listed, so its stem is too
    assert detector.detect("Skiten luktar.", "swe").toxic  # the listed form itself still matches


def test_slovak_uses_the_czech_lists():
    from safety.toxicity.lists import asset_list_files

    slovak_own = {e for path in asset_list_files("slk") for e in path.read_text(encoding="utf-8").split()}
    czech = [e for path in asset_list_files("ces") for e in path.read_text(encoding="utf-8").split()]
    word = next(e for e in czech if e.isalpha() and e not in slovak_own)
    assert ToxicityDetector().detect(f"Povedal {word}.", "slk").toxic


def test_pattern_syntax_is_rewritten_only_for_pattern_lists():
    from safety.toxicity.lists import from_pattern

    assert from_pattern("s+c+heis+e") == "scheise"
    assert from_pattern("hija_de_puta") == "hija de puta"
    assert from_pattern("курв*") == "курв*"


@pytest.mark.parametrize(
    ("clean", "toxic", "lang"),
    [
        ("I cut my finger.", "Stop fingering it.", "eng"),  # Germanic: "fingering" is listed, "finger" is not
        ("Pieprz i sól, proszę.", "Ten pieprzony autobus.", "pol"),  # Slavic: pepper, not its verb
    ],
)
def test_stems_that_are_ordinary_words_are_not_matched_by_stem(detector, clean, toxic, lang):
    assert not detector.detect(clean, lang).toxic
    assert detector.detect(toxic, lang).toxic


def test_unreviewed_lists_keep_no_frequent_word_that_no_other_list_holds():
    from safety.toxicity.lists import TOXICITY_ASSETS

    for package in ("safetext", "universal-profanity"):
        left_out = (TOXICITY_ASSETS / package / "left_out.tsv").read_text(encoding="utf-8").splitlines()[1:]
        assert left_out  # the filter ran
        for row in left_out[:50]:
            lang, entry, _ = row.split("\t")
            assert entry not in (TOXICITY_ASSETS / package / f"{lang}.txt").read_text(encoding="utf-8").split("\n")
    detector = ToxicityDetector()
    assert not detector.detect("الله أكبر", "arb").toxic  # safetext lists "God"
    assert not detector.detect("Saya miskin.", "ind").toxic  # universal-profanity lists "poor"


def test_toxicity_200_archives_and_subfolders_are_read(tmp_path):
    """The release's layout: ``<code>_twl.zip`` per language, password-protected, or unzipped into folders."""
    import subprocess

    from safety.toxicity.lists import TOXICITY_200_PASSWORD

    unzipped = tmp_path / "unzipped" / "NLLB-200_TWL"
    unzipped.mkdir(parents=True)
    plain = write_list(unzipped, "cat_Latn_twl.txt", ["collonada"])
    listed = write_list(tmp_path, "mlt_Latn_twl.txt", ["ħmara"])
    archives = tmp_path / "zips"
    archives.mkdir()
    subprocess.run(
        ["zip", "-q", "-j", "-P", TOXICITY_200_PASSWORD.decode(), str(archives / "mlt_Latn_twl.zip"), str(listed)],
        check=True,
    )
    listed.unlink()
    files = nllb_list_files(tmp_path)
    assert files["cat"] == [plain] and files["mlt"] == [archives / "mlt_Latn_twl.zip"]
    detector = ToxicityDetector(ToxicityOptions(bundled_lists=False, toxicity_dir=tmp_path, rot13=False))
    assert detector.detect("Ara, collonada!", "cat").toxic
    assert detector.detect("Int ħmara!", "mlt").toxic
    (archives / "broken_twl.zip").write_bytes(b"not a zip")
    with pytest.raises(ToxicityListError):
        read_nllb_list(archives / "broken_twl.zip")


def test_one_stemmer_shared_by_many_streams_threads_gives_each_word_its_own_stem():
    """Every live stream's thread judges with the one shared judge: its Snowball stemmer keeps the word it works on
    in the object, so unguarded threads corrupted each other's words (IndexError in a real run)."""
    from concurrent.futures import ThreadPoolExecutor

    from safety.toxicity.stems import Stemmer

    words = [f"{stem}{ending}" for stem in ("verdammt", "scheiß", "arschloch", "dummkopf", "mistkerl")
             for ending in ("", "e", "en", "er", "es", "ern", "ung", "ungen", "lich", "heit")] * 40  # fmt: skip
    words = [f"{w}{i}" for i, w in enumerate(words)]  # all distinct: every call reaches the stemmer
    want = [Stemmer("deu").stem(w) for w in words]
    shared = Stemmer("deu")
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(shared.stem, words))
    assert got == want


def test_streams_that_first_reach_a_language_at_once_all_get_its_whole_lists():
    """The first sentences of several streams into one language arrive close together: each must find the
    language's lists whole (the stems were built after the lists were published, so a thread arriving in between
    read a missing entry)."""
    import time
    from concurrent.futures import ThreadPoolExecutor

    shared = ToxicityDetector(ToxicityOptions(toxicity_dir=None))
    sentence = "you stupid bastards, shut up"

    def judge(delay_s: float):
        time.sleep(delay_s)  # arrivals spread over the lists' loading, some during the stems' building
        return [m.term for m in shared.detect(sentence, "eng").matches]

    with ThreadPoolExecutor(40) as pool:
        got = list(pool.map(judge, [i * 0.03 for i in range(40)]))
    want = [m.term for m in ToxicityDetector(ToxicityOptions(toxicity_dir=None)).detect(sentence, "eng").matches]
    assert want and got == [want] * 40


def test_prepared_lists_are_not_read_again_by_a_request(monkeypatch):
    """Start-up builds the lists (compose/pipeline.py prepares every language); a request then reads no list."""
    fresh = ToxicityDetector()
    fresh.prepare(["spa", "eng"])
    monkeypatch.setattr(fresh, "_list_entries", lambda lang: pytest.fail(f"the {lang} list was read by a request"))
    assert fresh.added_toxicity("You are an idiot.", "eng", "Eres un idiota.", "spa").source.toxic
