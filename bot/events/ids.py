"""Ids and page numbers that arrive as text: chat buttons and command-line arguments."""

from __future__ import annotations

import re

#: Largest id or page number accepted: PostgreSQL's INTEGER maximum, the narrowest id
#: column of the supported databases. A larger value cannot name a row, and the database
#: would raise on it (SQLite past 2**63 - 1, PostgreSQL past this).
MAX_DATABASE_INTEGER = 2**31 - 1
#: ASCII digits only: ``str.isdigit`` also accepts characters such as "²" that ``int`` rejects.
_DATABASE_INTEGER = re.compile(r"[0-9]{1,10}")


def parse_database_integer(text: str) -> int | None:
    """Return the id or page number in ``text``, or None when it is not one.

    A button comes back from the client and an argument from a person, so ``text`` may
    contain anything. A value outside 0..MAX_DATABASE_INTEGER, or with other characters
    than ASCII digits, gives None, and the caller reports it instead of passing the value
    to the database.
    """
    if _DATABASE_INTEGER.fullmatch(text) is None:
        return None
    value = int(text)
    return value if value <= MAX_DATABASE_INTEGER else None
