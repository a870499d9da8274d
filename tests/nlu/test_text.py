"""Tests for nlu.text: normalisation, diacritic folding, language detection, segmentation."""

from __future__ import annotations

import unicodedata

import pytest

from nlu.text import detect_language, fold_diacritics, normalize, segment

LAO_AM = "\u0eb3"  # LAO VOWEL SIGN AM; NFKC splits it into U+0ECD U+0EB2.


# normalize


def test_normalize_composes_decomposed_vietnamese() -> None:
    decomposed = unicodedata.normalize("NFD", "Việt Nam bao bì nhựa")
    assert decomposed != "Việt Nam bao bì nhựa"
    assert normalize(decomposed) == "Việt Nam bao bì nhựa"


def test_normalize_removes_zero_width_characters() -> None:
    assert normalize("bao\u200bbì\u200c \ufeffnhựa\u2060\u00ad") == "baobì nhựa"


def test_normalize_composes_mark_after_zero_width() -> None:
    # An old keyboard typed "e", a zero-width space, then the combining circumflex and dot.
    result = normalize("Vie\u200b\u0302\u0323t")
    assert result == "Việt"
    assert unicodedata.is_normalized("NFC", result)


def test_normalize_turns_control_characters_into_spaces() -> None:
    assert normalize("xin\x00chào\tbạn\r\nơi\u2028nhé") == "xin chào bạn ơi nhé"


def test_normalize_drops_format_characters() -> None:
    assert normalize("ok\u200eay") == "okay"


def test_normalize_collapses_and_strips_whitespace() -> None:
    assert normalize("  hello \u00a0\u3000 world  ") == "hello world"


def test_normalize_keeps_lao_am_vowel() -> None:
    water = "ນ" + "\u0ec9" + LAO_AM  # ນ້ຳ, "water"
    assert normalize(water) == water
    assert LAO_AM in normalize(water)


@pytest.mark.parametrize("text", ["", "   ", "\x00\x01", "\u200b"])
def test_normalize_empty_results(text: str) -> None:
    assert normalize(text) == ""


def test_normalize_is_idempotent() -> None:
    samples = ["Vie\u0302\u0323t  Nam\u200b", "តើខ្ញុំអាច", "ຂ້ອຍ ນ້ຳ", "😀 ok\x07"]
    for sample in samples:
        assert normalize(normalize(sample)) == normalize(sample)


# fold_diacritics


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("bao bì nhựa", "bao bi nhua"),
        ("Đường Ương", "Duong Uong"),
        ("giảm tiêu thụ năng lượng", "giam tieu thu nang luong"),
        ("How are you?", "How are you?"),
    ],
)
def test_fold_diacritics_latin(text: str, expected: str) -> None:
    assert fold_diacritics(text) == expected


@pytest.mark.parametrize("text", ["តើខ្ញុំអាចកាត់បន្ថយ", "ນ້ຳ ຂ້ອຍຢາກຫຼຸດ"])
def test_fold_diacritics_keeps_khmer_and_lao_marks(text: str) -> None:
    assert fold_diacritics(text) == text


# detect_language


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Làm sao giảm bao bì nhựa?", "vi"),
        ("lam sao giam bao bi nhua", "vi"),
        ("cho toi xem cac su kien sap toi", "vi"),
        ("chuyen sang tieng Anh", "vi"),
        ("ban co the giup toi khong", "vi"),
        ("tap huan sap toi", "vi"),
        ("khoa dao tao ve trien lam", "vi"),
        ("tap water is dirty", "en"),
        ("How can I reduce plastic packaging?", "en"),
        ("quit the assessment", "en"),
        ("stop the quiz", "en"),
        ("can the bot help me", "en"),
        ("I prefer Lao", "en"),
        ("go on", "en"),
        ("តើខ្ញុំអាចកាត់បន្ថយការវេចខ្ចប់ប្លាស្ទិកយ៉ាងដូចម្តេច?", "km"),
        ("ຂ້ອຍຢາກຫຼຸດການໃຊ້ພລາສຕິກ", "lo"),
        ("OK ຂ້ອຍຢາກຖາມ", "lo"),
        ("GOTS សម្រាប់ក្រណាត់", "km"),
    ],
)
def test_detect_language(text: str, expected: str) -> None:
    assert detect_language(text) == expected


@pytest.mark.parametrize("text", ["", "😀😀", "123 456", "?!", "\u200b"])
def test_detect_language_without_letters(text: str) -> None:
    assert detect_language(text) is None


# segment


def test_segment_splits_khmer_words() -> None:
    text = "តើខ្ញុំអាចកាត់បន្ថយការវេចខ្ចប់ប្លាស្ទិកយ៉ាងដូចម្តេច"
    tokens = segment(text)
    assert len(tokens) >= 5
    assert "".join(tokens) == text


def test_segment_splits_lao_words() -> None:
    text = "ຂ້ອຍຢາກປະເມີນທຸລະກິດຂອງຂ້ອຍ"
    tokens = segment(text)
    assert len(tokens) >= 4
    assert "".join(tokens) == text


def test_segment_keeps_lao_am_vowel_in_word() -> None:
    text = "ຈະບຳບັດນ້ຳເສຍແນວໃດ"
    tokens = segment(text)
    assert "".join(tokens) == text
    assert all(not token.startswith(LAO_AM) for token in tokens)
    assert any("ນ້ຳ" in token for token in tokens)


def test_segment_mixed_scripts() -> None:
    tokens = segment("GOTS ແມ່ນຫຍັງ? và OEKO-TEX")
    assert tokens[0] == "GOTS"
    assert tokens[-2:] == ["OEKO", "TEX"]
    assert "và" in tokens
    assert "?" not in tokens


def test_segment_drops_punctuation_and_emoji() -> None:
    assert segment("Chào bạn 👋 !!!") == ["Chào", "bạn"]


@pytest.mark.parametrize("text", ["", "😀", "   ", "\x00"])
def test_segment_empty_results(text: str) -> None:
    assert segment(text) == []
