"""Event validation, reminder kinds and quiet hours: pure functions, no database."""

from __future__ import annotations

import datetime as dt
import itertools
import time
from zoneinfo import ZoneInfo

import pytest

from bot.events.records import InvalidEventError, build_record
from bot.scheduler import kinds
from bot.scheduler.quiet_hours import QuietHours, adjust_for_quiet_hours, is_quiet

HANOI = ZoneInfo("Asia/Ho_Chi_Minh")
QUIET = QuietHours(dt.time(21, 0), dt.time(7, 0))


def local(year: int, month: int, day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=HANOI)


def record(**overrides: object):  # type: ignore[no-untyped-def]
    fields: dict[str, object] = {
        "uid": "u1",
        "kind": "workshop",
        "titles": {"en": "Sample: A"},
        "starts_at": "2027-03-15 09:00",
        "country": "la",
    }
    fields.update(overrides)
    return build_record(**fields)  # type: ignore[arg-type]


def test_naive_start_is_venue_local_time() -> None:
    event = record(starts_at="2027-03-15 09:00", country="la")

    assert event.timezone == "Asia/Vientiane"
    assert event.starts_at == dt.datetime(2027, 3, 15, 2, 0, tzinfo=dt.UTC)


def test_offset_start_is_kept_as_instant() -> None:
    event = record(starts_at="2027-03-15T09:00:00+00:00")

    assert event.starts_at == dt.datetime(2027, 3, 15, 9, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"uid": " "}, "uid is missing"),
        ({"kind": "party"}, "kind 'party' is invalid"),
        ({"titles": {}}, "title is missing"),
        ({"titles": {"fr": "Atelier"}}, "title language 'fr'"),
        ({"country": "th"}, "country 'th' is invalid"),
        ({"timezone": "Asia/Bangkok"}, "timezone 'Asia/Bangkok' is invalid"),
        ({"starts_at": "15/03/2027"}, "start '15/03/2027' is invalid"),
        ({"starts_at": ""}, "start is missing"),
        ({"ends_at": "2027-03-15 08:00"}, "is before start"),
        ({"sectors": ["textiles", "cars"]}, "sector 'cars' is invalid"),
        ({"url": "example.org/x"}, "link 'example.org/x' is invalid"),
        ({"status": "postponed"}, "status 'postponed' is invalid"),
        ({"is_sample": "maybe"}, "is_sample 'maybe' is invalid"),
    ],
)
def test_invalid_field_rejected(overrides: dict[str, object], fragment: str) -> None:
    with pytest.raises(InvalidEventError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        record(**overrides)


def test_kind_and_status_aliases() -> None:
    event = record(kind="Trade fair", status="CONFIRMED", sectors=["Food", "textiles", "food"])

    assert event.kind == "trade_fair"
    assert event.status == "scheduled"
    assert event.sectors == ("food", "textiles")


def test_content_hash_ignores_nothing() -> None:
    base = record()

    assert record().content_hash() == base.content_hash()
    assert record(place="Hall 2").content_hash() != base.content_hash()
    assert record(titles={"en": "Sample: B"}).content_hash() != base.content_hash()


@pytest.mark.parametrize(
    ("seconds", "text"), [(604800, "P7D"), (86400, "P1D"), (7200, "PT2H"), (45, "PT45S"), (90061, "P1DT1H1M1S")]
)
def test_offset_round_trip(seconds: int, text: str) -> None:
    assert kinds.format_offset(seconds) == text
    assert kinds.parse_offset(text) == seconds


def test_remind_kind_round_trip() -> None:
    start = dt.datetime(2027, 3, 15, 2, 0, tzinfo=dt.UTC)
    kind = kinds.remind_kind(7200, start)

    parsed = kinds.parse_kind(kind)

    assert kind == "remind:PT2H:20270315T020000Z"
    assert len(kind) <= kinds.KIND_MAX_LENGTH
    assert parsed.offset_seconds == 7200
    assert parsed.starts_at == start


def test_unknown_kind_rejected() -> None:
    with pytest.raises(ValueError, match="invalid"):
        kinds.parse_kind("remind:soon")


@pytest.mark.parametrize(("hour", "quiet"), [(20, False), (21, True), (23, True), (0, True), (6, True), (7, False), (12, False)])
def test_quiet_window_crosses_midnight(hour: int, quiet: bool) -> None:
    assert is_quiet(local(2027, 3, 1, hour, 30 if hour == 6 else 0), HANOI, QUIET) is quiet


def test_quiet_reminder_moves_to_morning() -> None:
    due = local(2027, 3, 1, 22, 0)
    start = local(2027, 3, 2, 10, 0)

    moved = adjust_for_quiet_hours(due, start, HANOI, QUIET)

    assert moved == local(2027, 3, 2, 7, 0)


def test_early_morning_reminder_moves_to_same_morning() -> None:
    moved = adjust_for_quiet_hours(local(2027, 3, 2, 5, 0), local(2027, 3, 2, 9, 0), HANOI, QUIET)

    assert moved == local(2027, 3, 2, 7, 0)


def test_reminder_for_dawn_event_moves_to_evening() -> None:
    due = local(2027, 3, 2, 4, 30)
    start = local(2027, 3, 2, 6, 30)

    moved = adjust_for_quiet_hours(due, start, HANOI, QUIET, not_before=local(2027, 3, 1, 12, 0))

    assert moved == local(2027, 3, 1, 20, 59)


def test_reminder_keeps_time_when_evening_passed() -> None:
    due = local(2027, 3, 2, 4, 30)

    moved = adjust_for_quiet_hours(due, local(2027, 3, 2, 6, 30), HANOI, QUIET, not_before=local(2027, 3, 1, 23, 0))

    assert moved == due


def test_disabled_quiet_hours() -> None:
    assert not is_quiet(local(2027, 3, 1, 23), HANOI, QuietHours(dt.time(0), dt.time(0)))


async def test_token_bucket_never_bursts() -> None:
    from bot.scheduler.ratelimit import GRID_TOLERANCE, TokenBucket

    rate = 200.0
    bucket = TokenBucket(rate)
    times = []
    for _ in range(60):
        await bucket.acquire()
        times.append(time.monotonic())

    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert min(gaps) >= (1 - GRID_TOLERANCE) / rate - 0.0005
    window = 0.1
    most_in_window = max(sum(1 for other in times if start <= other < start + window) for start in times)
    assert most_in_window <= rate * window + 1
