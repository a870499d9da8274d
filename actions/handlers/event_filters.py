"""Countries and sectors named in a message, for the events list and subscriptions.

NLU extracts a ``sector`` entity only where its training data had one, and no country
entity at all, so "what events are coming up in Laos?" would list every country. This
module reads the message text itself. Latin script is matched by whole words after
lower-casing and folding Vietnamese diacritics ("Việt Nam", "viet nam"). Khmer and Lao
are written without spaces between words, so their names are matched as substrings.

Several different countries (or sectors) in one message mean no single filter, and
:func:`named_country` and :func:`named_sector` then return :data:`SEVERAL`.
"""

from __future__ import annotations

import re
from typing import Final

from nlu.text import fold_diacritics, normalize

#: Returned when a message names more than one country or sector.
SEVERAL: Final = "several"

#: Folded, lower-case Latin phrases (whole words) for each country code.
_COUNTRY_WORDS: Final[dict[str, tuple[str, ...]]] = {
    "vn": ("viet nam", "vietnam", "vn", "lao cai", "ha noi", "hanoi", "ho chi minh", "hcm", "tphcm", "sai gon", "saigon"),
    "la": ("laos", "lao pdr", "vientiane", "vieng chan"),
    "kh": ("cambodia", "campuchia", "cam pu chia", "kampuchea", "phnom penh", "phnompenh"),
}
#: Khmer and Lao spellings (substrings) for each country code.
_COUNTRY_SUBSTRINGS: Final[dict[str, tuple[str, ...]]] = {
    # Vietnam, Hanoi (Khmer), Vietnam, Hanoi (Lao).
    "vn": ("វៀតណាម", "ហាណូយ", "ຫວຽດນາມ", "ຮ່າໂນ້ຍ"),
    # Laos, Vientiane (Khmer); Lao PDR, the country Laos, in Laos, Vientiane (Lao). A bare
    # "ລາວ" is also the Lao pronoun "he/she", so it counts only after one of these words.
    "la": ("ឡាវ", "វៀងច័ន្ទ", "ສປປ ລາວ", "ສປປລາວ", "ສ.ປ.ປ ລາວ", "ປະເທດລາວ", "ປະເທດ ລາວ", "ຢູ່ລາວ", "ໃນລາວ", "ວຽງຈັນ"),
    # Cambodia, the country of the Khmer, Phnom Penh (Khmer); Cambodia, Phnom Penh (Lao).
    "kh": ("កម្ពុជា", "ប្រទេសខ្មែរ", "ភ្នំពេញ", "ກຳປູເຈຍ", "ພະນົມເປັນ"),
}
#: Words before a country name that make it a language ("tiếng Lào", "ភាសាឡាវ", "ພາສາລາວ").
_LANGUAGE_WORDS: Final = ("tieng",)
_LANGUAGE_PREFIXES: Final = ("ភាសា", "ພາສາ")
#: Vietnamese words after a toneless "lao" that make it another word than Laos ("lao động" labour).
_NOT_LAOS_AFTER: Final = frozenset({"dong", "cong", "vao", "ly", "tu", "phoi", "tam", "luc", "xao"})

#: Folded, lower-case Latin phrases (whole words) for each sector id.
_SECTOR_WORDS: Final[dict[str, tuple[str, ...]]] = {
    "textiles": ("textile", "textiles", "garment", "garments", "apparel", "det may", "may mac", "det nhuom"),
    "footwear": ("footwear", "shoe", "shoes", "giay dep", "da giay"),
    "furniture": ("furniture", "wooden furniture", "do go", "noi that", "che bien go", "san pham go", "nganh go"),
    "handicraft": ("handicraft", "handicrafts", "crafts", "thu cong", "my nghe"),
    "food": ("food", "food processing", "thuc pham", "che bien thuc pham"),
    "packaging": ("packaging", "bao bi"),
}
#: Khmer and Lao sector names (substrings), as in the NLU synonyms and the sample events.
_SECTOR_SUBSTRINGS: Final[dict[str, tuple[str, ...]]] = {
    "textiles": ("វាយនភណ្ឌ", "កាត់ដេរ", "ສິ່ງທໍ", "ຕັດຫຍິບ", "ແຜ່ນແພ"),
    "footwear": ("ស្បែកជើង", "ເກີບ"),
    "furniture": ("គ្រឿងសង្ហារិម", "ເຟີນິເຈີ", "ເຟີນີເຈີ"),
    "handicraft": ("សិប្បកម្ម", "ຫັດຖະກຳ"),
    "food": ("អាហារ", "ອາຫານ"),
    "packaging": ("វេចខ្ចប់", "ບັນຈຸພັນ", "ຫຸ້ມຫໍ່"),
}
#: Event kinds a message can ask for, each with the catalogue kinds it lists. Trade fairs
#: and exhibitions go together: owners use the words for both, and Khmer (ពិព័រណ៍) and
#: Lao (ງານວາງສະແດງ) name both with one word.
KIND_FILTERS: Final[dict[str, tuple[str, ...]]] = {
    "fairs": ("trade_fair", "exhibition"),
    "workshop": ("workshop",),
    "training": ("training",),
}
#: Folded, lower-case Latin phrases (whole words) for each kind filter.
_KIND_WORDS: Final[dict[str, tuple[str, ...]]] = {
    "fairs": (
        "trade fair",
        "trade fairs",
        "trade show",
        "trade shows",
        "fair",
        "fairs",
        "expo",
        "exhibition",
        "exhibitions",
        "hoi cho",
        "trien lam",
    ),
    "workshop": ("workshop", "workshops", "seminar", "seminars", "hoi thao"),
    "training": ("training", "trainings", "training course", "training courses", "tap huan", "dao tao"),
}
#: Khmer and Lao names (substrings) for each kind filter, as in the sample events' titles.
_KIND_SUBSTRINGS: Final[dict[str, tuple[str, ...]]] = {
    "fairs": ("ពិព័រណ៍", "ງານວາງສະແດງ"),
    "workshop": ("សិក្ខាសាលា", "ສຳມະນາ"),
    "training": ("បណ្តុះបណ្តាល", "ຝຶກອົບຮົມ"),
}
#: Lao "am" typed as two characters (nikhahit and aa) instead of U+0EB3; NFC keeps both forms.
_LAO_AM_SPLIT = "\u0ecd\u0eb2"
_LAO_AM = "\u0eb3"


def _prepare(text: str) -> tuple[str, list[str], list[str]]:
    """Return (normalised text, its Latin words folded, the same words as typed), lower case.

    A Latin word is a run of letters and digits that fold to ASCII ("việt" folds to
    "viet"), so the two word lists stay aligned.
    """
    clean = normalize(text).replace(_LAO_AM_SPLIT, _LAO_AM)
    folded_words: list[str] = []
    original_words: list[str] = []
    original: list[str] = []
    folded: list[str] = []
    for char in f"{clean.lower()} ":
        base = fold_diacritics(char)
        if len(base) == 1 and base.isascii() and base.isalnum():
            original.append(char)
            folded.append(base)
        elif original:
            original_words.append("".join(original))
            folded_words.append("".join(folded))
            original, folded = [], []
    return clean, folded_words, original_words


def _phrase_positions(words: list[str], phrase: str) -> list[int]:
    """Return the indexes in ``words`` where the whole-word ``phrase`` starts."""
    parts = phrase.split()
    size = len(parts)
    return [index for index in range(len(words) - size + 1) if words[index : index + size] == parts]


def _latin_matches(words: list[str], table: dict[str, tuple[str, ...]], *, skip_language: bool) -> set[str]:
    found = set()
    for code, phrases in table.items():
        for phrase in phrases:
            for index in _phrase_positions(words, phrase):
                if skip_language and index > 0 and words[index - 1] in _LANGUAGE_WORDS:
                    continue
                found.add(code)
    return found


def _substring_matches(text: str, table: dict[str, tuple[str, ...]], *, skip_language: bool) -> set[str]:
    found = set()
    for code, names in table.items():
        for name in names:
            for match in re.finditer(re.escape(name), text):
                before = text[: match.start()].rstrip()
                if skip_language and before.endswith(_LANGUAGE_PREFIXES):
                    continue
                found.add(code)
    return found


def _toneless_lao(folded_words: list[str], original_words: list[str]) -> bool:
    """Return True when "lao"/"lào" in the message means Laos.

    "Lào" with its tone mark is the Vietnamese name of Laos. A toneless "lao" is the
    country in English ("Lao" events) and in Vietnamese typed without diacritics. In
    Vietnamese with diacritics it is another word ("lao động"). So it counts only when
    the message has no Vietnamese diacritics and no such word follows it.
    """
    has_diacritics = any(not word.isascii() for word in original_words)
    for index, word in enumerate(folded_words):
        if word != "lao":
            continue
        if index > 0 and folded_words[index - 1] in _LANGUAGE_WORDS:
            continue
        following = folded_words[index + 1] if index + 1 < len(folded_words) else ""
        if following == "cai":
            continue  # Lào Cai, a province of Vietnam (in the Vietnam list)
        original = original_words[index]
        if original == "lào":
            return True
        if original == "lao" and not has_diacritics and following not in _NOT_LAOS_AFTER:
            return True
    return False


def _single(found: set[str]) -> str | None:
    if not found:
        return None
    if len(found) > 1:
        return SEVERAL
    return next(iter(found))


def named_country(text: str) -> str | None:
    """Return the country code (``vn``, ``la``, ``kh``) named in ``text``, SEVERAL, or None.

    Names of the countries and their capitals count, in Vietnamese (with or without
    diacritics), English, Khmer and Lao. A name used for a language ("tiếng Lào",
    "ភាសាវៀតណាម") does not.
    """
    clean, folded_words, original_words = _prepare(text)
    found = _latin_matches(folded_words, _COUNTRY_WORDS, skip_language=True)
    found |= _substring_matches(clean, _COUNTRY_SUBSTRINGS, skip_language=True)
    if _toneless_lao(folded_words, original_words):
        found.add("la")
    return _single(found)


def named_sector(text: str) -> str | None:
    """Return the sector id named in ``text`` (see ``bot.events.records.SECTORS``), SEVERAL, or None."""
    clean, folded_words, _original_words = _prepare(text)
    found = _latin_matches(folded_words, _SECTOR_WORDS, skip_language=False)
    found |= _substring_matches(clean, _SECTOR_SUBSTRINGS, skip_language=False)
    return _single(found)


def named_kind(text: str) -> str | None:
    """Return the kind filter (a key of :data:`KIND_FILTERS`) named in ``text``, SEVERAL, or None."""
    clean, folded_words, _original_words = _prepare(text)
    found = _latin_matches(folded_words, _KIND_WORDS, skip_language=False)
    found |= _substring_matches(clean, _KIND_SUBSTRINGS, skip_language=False)
    return _single(found)
