"""Message catalogues: every text a user sees, in vi, en, km and lo.

Catalogues are gettext ``.po`` files read with Babel at first use:
``bot/locale/<language>/LC_MESSAGES/<domain>.po``, where the domain is the part of the
message id before the first dot (``core.greeting`` is in ``core.po``). Message ids are
stable keys, not English text, so English is a catalogue like the others.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

from babel.messages.pofile import read_po

from bot.settings import DEFAULT_LANGUAGE, SUPPORTED_LANGUAGES

logger = logging.getLogger(__name__)

LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"

__all__ = ["LOCALE_DIR", "MissingMessageError", "catalogue", "domains", "gettext", "normalize_language"]


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
def catalogue(language: str, domain: str) -> dict[str, str]:
    """Return message id -> text for one language and domain ({} when the file is missing)."""
    path = LOCALE_DIR / language / "LC_MESSAGES" / f"{domain}.po"
    if not path.exists():
        return {}
    with path.open("rb") as handle:
        po = read_po(handle)
    return {str(message.id): str(message.string) for message in po if message.id and message.string}


def gettext(message_id: str, language: str | None, /, **params: object) -> str:
    """Return the text of ``message_id`` in ``language``, formatted with ``params``.

    A text missing in ``language`` falls back to English and is logged; a message id
    missing everywhere raises :class:`MissingMessageError`, because that is a bug.
    """
    language = normalize_language(language)
    domain = message_id.split(".", 1)[0]
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
