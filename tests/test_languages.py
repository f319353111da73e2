import pytest

from engine.languages import Capability, UnknownLanguageError, all_languages, get_language, languages_with


def test_table_covers_the_model():
    langs = all_languages()
    codes = [lang.code for lang in langs]
    assert len(codes) == len(set(codes)) >= 100
    assert len(languages_with(Capability.SPEECH_OUTPUT)) == 36
    assert len(languages_with(Capability.TEXT)) >= 95
    assert len(languages_with(Capability.SPEECH_INPUT)) >= 100
    assert all(lang.english_name and lang.native_name for lang in langs)
    # every speech-output language is also a text language
    assert all(lang.text for lang in langs if lang.speech_output)


@pytest.mark.parametrize("query", ["spa", "SPA", "__spa__", "Spanish", "español", " spanish "])
def test_lookup_by_code_or_name(query):
    assert get_language(query).code == "spa"


def test_unknown_code_names_nearest():
    with pytest.raises(UnknownLanguageError, match="Did you mean") as e:
        get_language("spn")
    assert "spa" in str(e.value)
    with pytest.raises(UnknownLanguageError, match=r"Did you mean.*fra"):
        get_language("frnch")


def test_capability_missing_says_what_still_works():
    with pytest.raises(UnknownLanguageError, match=r"not supported for speech output\. It can still be translated"):
        get_language("ell", Capability.SPEECH_OUTPUT)
    with pytest.raises(UnknownLanguageError, match=r"not supported for text\. It can be used as spoken input"):
        get_language("ast", Capability.TEXT)


def test_label_shows_native_name():
    assert get_language("deu").label == "German — Deutsch (deu)"
    assert get_language("eng").label == "English (eng)"
