"""Message catalogues: every text a user sees, in vi, en, km and lo.

Catalogues are gettext ``.po`` files read with Babel at first use:
``bot/locale/<language>/LC_MESSAGES/<domain>.po``, where the domain is the part of the
message id before the first dot (``core.greeting`` is in ``core.po``). Message ids are
stable keys, not English text, so English is a catalogue like the others.

A message whose text depends on a number is a gettext plural entry (``msgid`` and
``msgid_plural`` both the message id, one ``msgstr[N]`` per plural form of the language:
two in English, one in Vietnamese, Khmer and Lao). :func:`ngettext` picks the form, and
:func:`gettext` does so too when it gets a ``count`` parameter.
"""

from __future__ import annotations

import functools
import gettext as gnu_gettext
import io
import logging
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from bot.settings import DEFAULT_LANGUAGE, SUPPORTED_LANGUAGES

logger = logging.getLogger(__name__)

LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"

__all__ = [
    "LOCALE_DIR",
    "MissingMessageError",
    "catalogue",
    "domains",
    "gettext",
    "ngettext",
    "normalize_language",
    "plural_forms",
]


class MissingMessageError(KeyError):
    """A message id that no catalogue has, in any language."""


def normalize_language(language: str | None) -> str:
    """Return a supported language code for ``language`` (e.g. ``vi-VN`` gives ``vi``)."""
    if language:
        code = language.replace("_", "-").split("-")[0].lower()
        if code in SUPPORTED_LANGUAGES:
            return code
    return DEFAULT_LANGUAGE


def domains() -> list[str]:
    """Return the catalogue domains found in the English folder."""
    return sorted(path.stem for path in (LOCALE_DIR / "en" / "LC_MESSAGES").glob("*.po"))


@functools.cache
def _read_catalog(language: str, domain: str) -> Catalog | None:
    """Return the parsed ``.po`` file of one language and domain, or None when it is missing."""
    path = LOCALE_DIR / language / "LC_MESSAGES" / f"{domain}.po"
    if not path.exists():
        return None
    with path.open("rb") as handle:
        # The locale gives Babel the language's plural rule (nplurals=1 for vi, km, lo).
        return read_po(handle, locale=language)


@functools.cache
def catalogue(language: str, domain: str) -> dict[str, str]:
    """Return message id -> text for one language and domain ({} when the file is missing).

    A plural message maps to its last form (the general plural, "{count} answers"), so
    that every id has one text whose format fields can be checked.
    """
    po = _read_catalog(language, domain)
    if po is None:
        return {}
    texts = {str(message.id): str(message.string) for message in po if message.id and message.string and not message.pluralizable}
    texts.update({message_id: forms[-1] for message_id, forms in plural_forms(language, domain).items()})
    return texts


@functools.cache
def plural_forms(language: str, domain: str) -> dict[str, tuple[str, ...]]:
    """Return message id -> plural forms for the plural messages of one language and domain."""
    po = _read_catalog(language, domain)
    if po is None:
        return {}
    forms_by_id: dict[str, tuple[str, ...]] = {}
    for message in po:
        if message.id and message.pluralizable and isinstance(message.string, (tuple, list)):
            forms = tuple(str(form) for form in message.string)
            if all(forms):
                forms_by_id[str(message.id[0])] = forms
    return forms_by_id


@functools.cache
def _translations(language: str, domain: str) -> gnu_gettext.GNUTranslations | None:
    """Return the catalogue compiled in memory, whose ``ngettext`` applies the plural rule."""
    po = _read_catalog(language, domain)
    if po is None:
        return None
    buffer = io.BytesIO()
    write_mo(buffer, po)
    buffer.seek(0)
    return gnu_gettext.GNUTranslations(buffer)


def ngettext(message_id: str, count: int, language: str | None, /, **params: object) -> str:
    """Return the form of plural message ``message_id`` for ``count`` in ``language``, formatted.

    ``count`` is also passed to the format as ``{count}``. A message missing in
    ``language`` falls back to English; a message id that is not a plural message in any
    catalogue raises :class:`MissingMessageError`.
    """
    language = normalize_language(language)
    domain = message_id.split(".", 1)[0]
    for candidate in (language, DEFAULT_LANGUAGE):
        translations = _translations(candidate, domain)
        if translations is not None and message_id in plural_forms(candidate, domain):
            if candidate != language:
                logger.warning("plural message %s has no %s text; using %s", message_id, language, DEFAULT_LANGUAGE)
            text = translations.ngettext(message_id, message_id, count)
            return text.format(**{**params, "count": count})
    raise MissingMessageError(
        f"plural message id {message_id!r} is in no catalogue: add it with msgid_plural to bot/locale/*/LC_MESSAGES/{domain}.po"
    )


def gettext(message_id: str, language: str | None, /, **params: object) -> str:
    """Return the text of ``message_id`` in ``language``, formatted with ``params``.

    A text missing in ``language`` falls back to English and is logged; a message id
    missing everywhere raises :class:`MissingMessageError`, because that is a bug. For a
    plural message, an integer ``count`` parameter picks the plural form (see :func:`ngettext`).
    """
    language = normalize_language(language)
    domain = message_id.split(".", 1)[0]
    count = params.get("count")
    if isinstance(count, int) and not isinstance(count, bool) and message_id in plural_forms(DEFAULT_LANGUAGE, domain):
        return ngettext(message_id, count, language, **params)
    text = catalogue(language, domain).get(message_id)
    if text is None:
        text = catalogue(DEFAULT_LANGUAGE, domain).get(message_id)
        if text is None:
            raise MissingMessageError(
                f"message id {message_id!r} is in no catalogue: add it to bot/locale/*/LC_MESSAGES/{domain}.po"
            )
        logger.warning("message %s has no %s text; using %s", message_id, language, DEFAULT_LANGUAGE)
    if params:
        return text.format(**params)
    return text
