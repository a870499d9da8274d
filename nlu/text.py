"""Text normalisation, script detection and word segmentation.

This module is imported by the Rasa process (Python 3.10) and by the app (Python 3.11),
so it uses the standard library only; the Khmer and Lao segmenters are imported lazily.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable, Iterator

#: Characters that render as nothing but split or join words in some keyboards.
ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff\u00ad"

_ZERO_WIDTH_TABLE = {ord(char): None for char in ZERO_WIDTH}
_SPACES = re.compile(r"\s+")

KHMER_RANGE = ("\u1780", "\u17ff")
LAO_RANGE = ("\u0e80", "\u0eff")

#: Vietnamese letters that are not a Latin letter plus combining marks.
_VIETNAMESE_BASE = str.maketrans({"đ": "d", "Đ": "D"})

#: Letters that only Vietnamese uses among the four languages (beyond plain ASCII).
_VIETNAMESE_LETTERS = frozenset("ăâđêôơưĂÂĐÊÔƠƯ")

#: Frequent Vietnamese words written without diacritics, used to tell them from English.
_VIETNAMESE_FOLDED_WORDS = frozenset(
    """
    toi ban co khong la va cua cho nhung mot cac duoc voi nay lam sao the nao gi
    nhu vay neu thi de hay minh chung ta ho can muon biet giup xin chao cam on
    giam tang san pham nha may doanh nghiep bao bi nhua nang luong nuoc thai det
    nhuom go tre may mac giay da thuc pham che bien su kien hoi cho danh gia ngon ngu
    xoa du lieu huy dang ky nhac toi tro giup tam biet vang dung roi sai khong phai
    o dau khi nao bao nhieu tai sao nguoi lao dong moi truong xanh ben vung
    tieng viet anh chuyen doi sang tra loi bang nhe di lai sau hen gap thoi noi
    tiep het thong tin ca nhan luon chac chan ko chua thoat qua bo ket vien tu van
    truc thue thu nhap tinh troi mua ngay mai hom bong han quoc ke chuyen cuoi xo so
    mien bac dien thoai tot kiem tra muc cong ty tieu chuan hang xuat khau chau tuyen
    thang nhan nhung ve cung vi them bot nhieu it lon nho moi cu duoc hoac hoi
    huan sap khoa lop hoc thao trien dao tao
    """.split()  # noqa: SIM905 (a word list reads better as text)
)

#: Frequent English words, so that "the", "can" or "on" alone do not make a sentence
#: Vietnamese: several of them are also Vietnamese words once diacritics are removed.
_ENGLISH_WORDS = frozenset(
    """
    a an the is are was were be been am i you he she it we they me my your our their
    this that these those what which who whom whose when where why how and or but if
    then so not no yes of to in on at by for with from about into over after before
    do does did done have has had can could will would should may might must shall
    please want need like get got go make show tell give let stop start help thanks thank
    hello hi hey bye goodbye ok okay sure there here all any some more most much many
    up out off just only also very too again now today tomorrow yesterday
    """.split()  # noqa: SIM905 (a word list reads better as text)
)


def normalize(text: str) -> str:
    """Return ``text`` in NFC with zero-width and other format characters removed.

    Control characters and line or paragraph separators become spaces, and whitespace
    runs collapse to one space. NFKC is never used because it splits the Lao vowel
    U+0EB3, which breaks Lao segmentation.
    """
    # Invisible characters go before NFC, so that a mark typed after one still
    # composes with its letter ("e", U+200B, U+0302 becomes "ê").
    text = text.translate(_ZERO_WIDTH_TABLE)
    text = "".join(char for char in text if unicodedata.category(char) != "Cf")
    text = unicodedata.normalize("NFC", text)
    text = "".join(" " if unicodedata.category(char) in ("Cc", "Zl", "Zp") else char for char in text)
    return _SPACES.sub(" ", text).strip()


def fold_diacritics(text: str) -> str:
    """Return ``text`` with Vietnamese (and other Latin) diacritics removed.

    Only Latin letters are folded: Khmer and Lao vowel signs are combining marks
    too, and removing them would destroy those words.
    """
    decomposed = unicodedata.normalize("NFD", text.translate(_VIETNAMESE_BASE))
    kept = []
    previous_is_latin = False
    for char in decomposed:
        if unicodedata.combining(char):
            if previous_is_latin:
                continue
        else:
            previous_is_latin = char.isascii()
        kept.append(char)
    return unicodedata.normalize("NFC", "".join(kept))


def _count_in_range(text: str, bounds: tuple[str, str]) -> int:
    low, high = bounds
    return sum(1 for char in text if low <= char <= high)


def detect_language(text: str) -> str | None:
    """Guess the language of ``text``: ``km``, ``lo``, ``vi``, ``en`` or None.

    Khmer and Lao are told by script. Latin text is Vietnamese when it has
    Vietnamese letters or tone marks, or when at least a third of its words are common
    Vietnamese words typed without diacritics and they outnumber common English words;
    otherwise English. Text with no letters
    (emoji, digits) returns None so the caller keeps the language it already knows.
    """
    text = normalize(text)
    khmer = _count_in_range(text, KHMER_RANGE)
    lao = _count_in_range(text, LAO_RANGE)
    latin = sum(1 for char in text if char.isalpha() and char.isascii())
    if max(khmer, lao) and max(khmer, lao) >= latin / 2:
        return "km" if khmer >= lao else "lo"

    words = re.findall(r"[^\W\d_]+", text.lower())
    if not words:
        return None

    if any(char in _VIETNAMESE_LETTERS for char in text):
        return "vi"
    if fold_diacritics(text) != text and any(unicodedata.combining(char) for char in unicodedata.normalize("NFD", text)):
        return "vi"

    vietnamese_words = sum(1 for word in words if word in _VIETNAMESE_FOLDED_WORDS)
    english_words = sum(1 for word in words if word in _ENGLISH_WORDS)
    if vietnamese_words > english_words and vietnamese_words * 3 >= len(words):
        return "vi"
    return "en"


@functools.cache
def _khmer_segmenter() -> Callable[[str], list[str]]:
    from khmernltk import word_tokenize

    word_tokenize("សួស្តី")  # Loads the CRF model now rather than on a user's turn.
    return word_tokenize  # type: ignore[no-any-return]


@functools.cache
def _lao_segmenter() -> Callable[[str], list[str]]:
    from laonlp.tokenize import word_tokenize

    return word_tokenize  # type: ignore[no-any-return]


def warm_up() -> None:
    """Load the Khmer and Lao segmentation models so the first user turn is not slow."""
    _khmer_segmenter()
    _lao_segmenter()


def _script_runs(text: str) -> Iterator[tuple[str, str]]:
    """Yield (script, run) pairs where script is ``km``, ``lo`` or ``other``."""
    current_script = ""
    run: list[str] = []
    for char in text:
        if KHMER_RANGE[0] <= char <= KHMER_RANGE[1]:
            script = "km"
        elif LAO_RANGE[0] <= char <= LAO_RANGE[1]:
            script = "lo"
        else:
            script = "other"
        if script != current_script and run:
            yield current_script, "".join(run)
            run = []
        current_script = script
        run.append(char)
    if run:
        yield current_script, "".join(run)


def segment(text: str) -> list[str]:
    """Split normalised ``text`` into words, segmenting Khmer and Lao runs.

    Other scripts split on whitespace and punctuation. Empty tokens and bare
    punctuation are dropped.
    """
    tokens: list[str] = []
    for script, run in _script_runs(normalize(text)):
        if script == "km":
            pieces = _khmer_segmenter()(run)
        elif script == "lo":
            pieces = _lao_segmenter()(run)
        else:
            pieces = re.findall(r"\w+", run)
        for piece in pieces:
            piece = piece.strip()
            if piece and any(char.isalnum() or unicodedata.category(char).startswith("M") for char in piece):
                tokens.append(piece)
    return tokens
