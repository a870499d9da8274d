"""Chat flows of the events handlers (list, remind me, .ics, subscribe, unsubscribe) on a real database."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import icalendar
import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

import actions.handlers.events as events_handlers
from actions.context import TurnContext
from actions.reply import Reply
from actions.router import load_handlers, route
from bot.events.importer import import_events
from bot.events.presentation import country_label
from bot.i18n import gettext
from bot.scheduler import ledger
from bot.scheduler.policy import ReminderPolicy
from bot.settings import PROJECT_ROOT, get_settings
from bot.storage.db import session_scope
from bot.storage.models import Assessment, Event, EventReminder, ReminderDelivery, Subscription, User
from bot.storage.types import utc_now
from tests.events.conftest import add_event, add_user

load_handlers()


@pytest.fixture(autouse=True)
def var_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the handlers' settings at a temporary var folder (for .ics files)."""
    settings = get_settings().model_copy(update={"var_dir": tmp_path / "var"})
    monkeypatch.setattr(events_handlers, "get_settings", lambda: settings)
    return tmp_path / "var"


@pytest.fixture
def now() -> dt.datetime:
    return utc_now().replace(microsecond=0)


@pytest.fixture
def catalogue(db_engine: Engine, now: dt.datetime, policy: ReminderPolicy) -> dict[str, int]:
    """Five upcoming events: three Vietnamese textiles, one Lao food, one Cambodian for every sector."""
    ids = {}
    for index in range(3):
        ids[f"vn-textiles-{index}"] = add_event(
            db_engine,
            now,
            policy,
            uid=f"vn-t-{index}",
            starts_at=now + dt.timedelta(days=10 + index),
            titles={"en": f"Sample: VN textiles {index}", "vi": f"Mẫu: Dệt may {index}"},
        )
    ids["la-food"] = add_event(
        db_engine,
        now,
        policy,
        uid="la-f",
        country="la",
        sectors=["food"],
        starts_at=now + dt.timedelta(days=5),
        titles={"en": "Sample: LA food"},
    )
    ids["kh-all"] = add_event(
        db_engine,
        now,
        policy,
        uid="kh-a",
        country="kh",
        sectors=[],
        starts_at=now + dt.timedelta(days=20),
        titles={"en": "Sample: KH all"},
    )
    return ids


class Turns:
    """Runs turns of one user against the database, like the action server does."""

    def __init__(self, engine: Engine, user_id: int) -> None:
        self.engine = engine
        self.user_id = user_id

    def _context(
        self, session: Session, *, intent: str | None, command: str | None, text: str, entities: list[dict[str, str]]
    ) -> TurnContext:
        user = session.get(User, self.user_id)
        assert user is not None
        return TurnContext(
            sender_id=f"{user.channel}:{user.external_id}",
            text=text,
            intent=intent,
            confidence=1.0,
            entities=entities,
            command=command,
            user=user,
            language=user.language or "en",
            session=session,
        )

    def say(self, intent: str, text: str = "", **entities: str) -> list[Reply]:
        with session_scope(self.engine) as session:
            entity_list = [{"entity": name, "value": value} for name, value in entities.items()]
            return route(self._context(session, intent=intent, command=None, text=text, entities=entity_list))

    def press(self, command: str) -> list[Reply]:
        with session_scope(self.engine) as session:
            payload = "/press" + json.dumps({"cmd": command})
            return route(
                self._context(
                    session, intent="press", command=command, text=payload, entities=[{"entity": "cmd", "value": command}]
                )
            )


def commands(replies: list[Reply]) -> list[str]:
    return [command for reply in replies for _title, command in reply.buttons]


def user_turns(engine: Engine, external_id: str, **fields: Any) -> Turns:
    return Turns(engine, add_user(engine, external_id, channel="console", **fields))


def test_list_filtered_by_owner_sector_and_country(db_engine: Engine, catalogue: dict[str, int]) -> None:
    turns = user_turns(db_engine, "c1", sector="textiles", country="vn")

    replies = turns.say("list_events", "what events are coming up")

    texts = [reply.text for reply in replies]
    assert "Sample: VN textiles 0" in texts[1]
    assert len(replies) == 1 + 3 + 1
    assert all("LA food" not in text and "KH all" not in text for text in texts)
    for index, reply in enumerate(replies[1:4]):
        event_id = catalogue[f"vn-textiles-{index}"]
        assert [command for _title, command in reply.buttons] == [
            f"events:remind:{event_id}",
            f"events:ics:{event_id}",
            f"events:details:{event_id}",
        ]
    navigation = commands(replies[-1:])
    assert "events:sectors:list:textiles:vn" in navigation
    assert "events:countries:list:textiles:vn" in navigation
    assert "events:ask:textiles:vn" in navigation
    assert not any(command.startswith("events:list:") for command in navigation)


def test_list_pages_and_narrowing(db_engine: Engine, catalogue: dict[str, int]) -> None:
    turns = user_turns(db_engine, "c2")

    first = turns.say("list_events")
    second = turns.press("events:list:any:any:1")
    by_country = turns.press("events:list:any:kh:0")
    by_sector = turns.press("events:list:food:any:0")
    sectors = turns.press("events:sectors:list:any:vn")

    assert "events:list:any:any:1" in commands(first)
    assert "(1–3 of 5)" in first[0].text
    assert "(4–5 of 5)" in second[0].text
    assert "Sample: VN textiles 2" in second[1].text
    assert [reply.text.split("\n")[0] for reply in by_country[1:-1]] == ["Workshop: Sample: KH all"]
    assert {line for reply in by_sector[1:-1] for line in reply.text.split("\n")[:1]} == {
        "Workshop: Sample: LA food",
        "Workshop: Sample: KH all",
    }
    assert "events:list:food:vn:0" in commands(sectors)
    with session_scope(db_engine) as session:
        user = session.get(User, turns.user_id)
        assert user is not None
        assert (user.sector, user.country) == ("food", "kh")


def test_list_of_fairs_only(db_engine: Engine, catalogue: dict[str, int], now: dt.datetime, policy: ReminderPolicy) -> None:
    for index, (kind, country) in enumerate(
        [("trade_fair", "vn"), ("exhibition", "vn"), ("trade_fair", "kh"), ("trade_fair", "vn")]
    ):
        add_event(db_engine, now, policy, uid=f"fair-{index}", kind=kind, country=country, titles={"en": f"Sample: fair {index}"})
    turns = user_turns(db_engine, "c3f")

    fairs = turns.say("list_events", "show me the trade fairs")
    second_page = turns.press("events:list:any:any:1:fairs")
    in_cambodia = turns.say("list_events", "trade fairs in Cambodia")
    workshops = turns.say("list_events", "any workshops coming up?")

    assert "Trade fair / Exhibition" in fairs[0].text
    assert "(1–3 of 4)" in fairs[0].text
    assert "events:list:any:any:1:fairs" in commands(fairs)
    assert "events:list:any:any:0" in commands(fairs)
    assert "(4–4 of 4)" in second_page[0].text
    assert all("fair" in reply.text.split("\n")[0] for reply in fairs[1:-1] + second_page[1:-1])
    assert [reply.text.split("\n")[0] for reply in in_cambodia[1:-1]] == ["Trade fair: Sample: fair 2"]
    assert "(1–3 of 5)" in workshops[0].text


def test_list_in_vietnamese(db_engine: Engine, catalogue: dict[str, int]) -> None:
    turns = user_turns(db_engine, "c3", language="vi", country="vn")

    replies = turns.say("list_events", "co su kien nao sap toi")

    assert replies[0].language == "vi"
    assert replies[0].text.startswith("Sự kiện sắp tới")
    assert "Mẫu: Dệt may 0" in replies[1].text
    assert replies[1].buttons[0][0] == gettext("events.button.remind", "vi")


def test_remind_me_plans_reminders(db_engine: Engine, catalogue: dict[str, int]) -> None:
    turns = user_turns(db_engine, "c4")
    event_id = catalogue["vn-textiles-0"]

    replies = turns.press(f"events:remind:{event_id}")
    again = turns.press(f"events:remind:{event_id}")

    assert "1 week, 1 day, and 2 hours" in replies[0].text
    assert f"events:unremind:{event_id}" in commands(replies)
    assert again[0].text == gettext("events.remind.already", "en", title="Sample: VN textiles 0")
    with session_scope(db_engine) as session:
        assert session.scalars(select(EventReminder).where(EventReminder.user_id == turns.user_id)).all() != []
        planned = session.scalars(select(ReminderDelivery.kind).where(ReminderDelivery.user_id == turns.user_id)).all()
        assert sorted(kind.split(":")[1] for kind in planned) == ["P1D", "P7D", "PT2H"]


def test_list_offers_cancel_after_remind(db_engine: Engine, catalogue: dict[str, int]) -> None:
    turns = user_turns(db_engine, "c4b", sector="textiles", country="vn")
    event_id = catalogue["vn-textiles-0"]
    turns.press(f"events:remind:{event_id}")

    listed = turns.say("list_events", "what events are coming up")
    details = turns.press(f"events:details:{event_id}")

    assert f"events:unremind:{event_id}" in commands(listed[1:2])
    assert f"events:remind:{event_id}" not in commands(listed)
    assert f"events:remind:{catalogue['vn-textiles-1']}" in commands(listed[2:3])
    assert commands(details)[0] == f"events:unremind:{event_id}"


def test_calendar_file_is_valid_ics(db_engine: Engine, catalogue: dict[str, int], var_dir: Path) -> None:
    turns = user_turns(db_engine, "c5", language="km")
    event_id = catalogue["la-food"]

    [reply] = turns.press(f"events:ics:{event_id}")

    assert reply.document is not None
    path = Path(reply.document)
    assert path.is_absolute()
    assert path.parent == (var_dir / "ics").resolve()
    calendar = icalendar.Calendar.from_ical(path.read_bytes())
    [vevent] = calendar.walk("VEVENT")
    assert str(vevent.get("UID")) == "la-f"
    assert vevent.get("DTSTART").dt.tzinfo.key == "Asia/Vientiane"
    assert str(vevent.get("DESCRIPTION")).count(gettext("events.details.sample", "km")) == 1
    assert str(vevent.get("LOCATION")).endswith(country_label("la", "km"))
    assert reply.to_rasa()["json_message"]["spin"]["document"] == str(path)


def test_details_and_unknown_event(db_engine: Engine, catalogue: dict[str, int]) -> None:
    turns = user_turns(db_engine, "c6")

    details = turns.press(f"events:details:{catalogue['kh-all']}")
    missing = turns.press("events:details:999999")
    garbage = turns.press("events:remind:abc")
    unknown = turns.press("events:fly:1")

    assert "All sectors" in details[0].text
    assert gettext("events.details.sample", "en") in details[0].text
    assert missing[0].text == gettext("events.not_found", "en")
    assert garbage[0].text == gettext("events.not_found", "en")
    assert unknown[0].text == gettext("core.unknown_button", "en")


def test_subscribe_and_unsubscribe(db_engine: Engine, catalogue: dict[str, int]) -> None:
    turns = user_turns(db_engine, "c7", sector="food", country="la")

    offer = turns.say("subscribe_events", "notify me about new events")
    done = turns.press("events:sub:food:la")
    again = turns.press("events:sub:food:la")
    everything = turns.press("events:sub:any:any")
    listing = turns.say("unsubscribe_events", "unsubscribe")

    assert "events:sub:food:la" in commands(offer)
    assert done[0].text == gettext("events.subscribe.done", "en", filter="Food processing · Laos")
    assert again[0].text == gettext("events.subscribe.already", "en", filter="Food processing · Laos")
    assert "All sectors · All countries" in everything[0].text
    with session_scope(db_engine) as session:
        subscriptions = session.scalars(
            select(Subscription).where(Subscription.user_id == turns.user_id).order_by(Subscription.id)
        ).all()
        assert [(item.sector, item.country) for item in subscriptions] == [("food", "la"), (None, None)]
        first_id, second_id = subscriptions[0].id, subscriptions[1].id
    assert f"events:unsub:{first_id}" in commands(listing)

    removed = turns.press(f"events:unsub:{first_id}")
    removed_again = turns.press(f"events:unsub:{first_id}")

    assert removed[0].text == gettext("events.unsubscribe.done", "en", filter="Food processing · Laos")
    assert removed_again[0].text == gettext("events.unsubscribe.nothing", "en")
    with session_scope(db_engine) as session:
        assert session.scalars(select(Subscription.id).where(Subscription.user_id == turns.user_id)).all() == [second_id]


def test_stop_button_on_reminder(db_engine: Engine, catalogue: dict[str, int]) -> None:
    turns = user_turns(db_engine, "c8")
    event_id = catalogue["vn-textiles-1"]
    turns.press("events:sub:textiles:any")
    turns.press("events:sub:food:any")
    turns.press(f"events:remind:{event_id}")

    replies = turns.press(f"events:stop:{event_id}")

    assert gettext("events.stop.done", "en", title="Sample: VN textiles 1") in replies[0].text
    assert "Textiles · All countries" in replies[0].text
    with session_scope(db_engine) as session:
        left = session.scalars(select(Subscription.sector).where(Subscription.user_id == turns.user_id)).all()
        assert left == ["food"]
        assert session.scalars(select(EventReminder).where(EventReminder.user_id == turns.user_id)).all() == []
        statuses = set(session.scalars(select(ReminderDelivery.status).where(ReminderDelivery.user_id == turns.user_id)))
        assert statuses == {ledger.OBSOLETE}


def test_stop_everything(db_engine: Engine, catalogue: dict[str, int]) -> None:
    turns = user_turns(db_engine, "c9")
    turns.press("events:sub:any:vn")
    turns.press(f"events:remind:{catalogue['kh-all']}")

    listing = turns.press("events:subs")
    replies = turns.press("events:stopall")
    empty = turns.press("events:subs")

    assert "Sample: KH all" in listing[0].text
    assert "events:stopall" in commands(listing)
    assert replies[0].text == gettext("events.stop_all.done", "en")
    assert empty[0].text == gettext("events.subscriptions.none", "en")


def test_remind_cancelled_event(db_engine: Engine, catalogue: dict[str, int], policy: ReminderPolicy, now: dt.datetime) -> None:
    from bot.events.catalogue import cancel_event

    with session_scope(db_engine) as session:
        cancel_event(session, catalogue["la-food"], now, policy)
    turns = user_turns(db_engine, "c10")

    replies = turns.press(f"events:remind:{catalogue['la-food']}")

    assert replies[0].text == gettext("events.event_over", "en", title="Sample: LA food")


@pytest.fixture
def soon_event(db_engine: Engine, now: dt.datetime, policy: ReminderPolicy) -> Iterator[int]:
    yield add_event(db_engine, now, policy, uid="soon", starts_at=now + dt.timedelta(minutes=30))


def test_remind_too_close_to_start(db_engine: Engine, soon_event: int) -> None:
    turns = user_turns(db_engine, "c11")

    replies = turns.press(f"events:remind:{soon_event}")

    assert "no reminder will come" in replies[0].text
    with session_scope(db_engine) as session:
        assert session.scalars(select(ReminderDelivery).where(ReminderDelivery.user_id == turns.user_id)).all() == []


#: Button fields that no row can have: past SQLite's 64-bit and PostgreSQL's 32-bit
#: INTEGER, and a digit character that ``str.isdigit`` accepts but ``int`` rejects.
IMPOSSIBLE_IDS = ["99999999999999999999999", str(2**63), str(2**31), "²"]


@pytest.mark.parametrize("language", ["vi", "en"])
@pytest.mark.parametrize("field", IMPOSSIBLE_IDS)
def test_impossible_event_id_gets_not_found(db_engine: Engine, catalogue: dict[str, int], language: str, field: str) -> None:
    turns = user_turns(db_engine, f"ids-{language}", language=language)

    upcoming = [reply.text for reply in turns.say("list_events")]

    for action in ("details", "ics", "remind", "unremind", "stop"):
        replies = turns.press(f"events:{action}:{field}")

        assert replies[0].text == gettext("events.not_found", language), action
        assert replies[0].language == language
        assert [reply.text for reply in replies[1:]] == upcoming, action


@pytest.mark.parametrize("language", ["vi", "en"])
@pytest.mark.parametrize("field", IMPOSSIBLE_IDS)
def test_impossible_subscription_id_gets_nothing(db_engine: Engine, language: str, field: str) -> None:
    turns = user_turns(db_engine, f"unsub-{language}", language=language)

    replies = turns.press(f"events:unsub:{field}")

    assert replies[0].text == gettext("events.unsubscribe.nothing", language)
    assert replies[0].language == language


@pytest.mark.parametrize("language", ["vi", "en"])
@pytest.mark.parametrize("field", IMPOSSIBLE_IDS)
def test_impossible_page_gets_expired_button(db_engine: Engine, language: str, field: str) -> None:
    turns = user_turns(db_engine, f"page-{language}", language=language)

    replies = turns.press(f"events:list:any:any:{field}")

    assert replies[0].text == gettext("core.unknown_button", language)
    assert replies[0].language == language


@pytest.mark.parametrize("language", ["vi", "en", "km", "lo"])
@pytest.mark.parametrize("mode", ["list", "sub"])
def test_sector_choice_can_be_cancelled(db_engine: Engine, catalogue: dict[str, int], language: str, mode: str) -> None:
    turns = user_turns(db_engine, f"cancel-{mode}-{language}", language=language)

    [choice] = turns.press(f"events:sectors:{mode}:food:vn")
    cancel_title, cancel_command = choice.buttons[-1]
    [cancelled] = turns.press(cancel_command)

    assert cancel_title == gettext("events.button.cancel", language)
    assert cancel_title == gettext("assess.button.cancel", language), "cancel looks different from the assessment's"
    assert cancelled.text == gettext("events.choice_cancelled", language)
    assert cancelled.language == language
    assert cancelled.buttons[0] == (gettext("events.button.list", language), "events:list:food:vn:0")
    assert (gettext("core.menu.assess", language), "assess:start") in cancelled.buttons
    with session_scope(db_engine) as session:
        user = session.get(User, turns.user_id)
        assert user is not None
        assert (user.sector, user.country) == (None, None)
        assert session.scalars(select(Subscription).where(Subscription.user_id == turns.user_id)).all() == []


def test_country_choice_can_be_cancelled(db_engine: Engine, catalogue: dict[str, int]) -> None:
    turns = user_turns(db_engine, "cancel-country")

    [choice] = turns.press("events:countries:list:textiles:any")
    [cancelled] = turns.press(choice.buttons[-1][1])

    assert choice.buttons[-1] == (gettext("events.button.cancel", "en"), "events:cancel:textiles:any")
    assert cancelled.text == gettext("events.choice_cancelled", "en")
    assert cancelled.buttons[0][1] == "events:list:textiles:any:0"


@pytest.mark.parametrize(
    ("language", "text"),
    [
        ("en", "what events are coming up in Laos?"),
        ("vi", "su kien sap toi o Lao"),
        ("vi", "Sự kiện sắp tới ở Lào"),
        ("vi", "có sự kiện nào ở Viêng Chăn không"),
        ("km", "មានព្រឹត្តិការណ៍អ្វីខ្លះនៅឡាវ"),
        ("lo", "ມີງານຫຍັງແດ່ຢູ່ປະເທດລາວ"),
    ],
)
def test_list_filtered_by_country_in_text(db_engine: Engine, catalogue: dict[str, int], language: str, text: str) -> None:
    turns = user_turns(db_engine, f"country-{language}-{len(text)}", language=language, country="vn")

    replies = turns.say("list_events", text)

    assert (
        gettext(
            "events.filter",
            language,
            sector=gettext("events.sector.all", language),
            country=gettext("events.country.la", language),
        )
        in replies[0].text
    )
    assert [reply.buttons[0][1] for reply in replies[1:-1]] == [f"events:remind:{catalogue['la-food']}"]
    assert "events:ask:any:la" in commands(replies[-1:])


def test_labour_safety_is_not_laos(db_engine: Engine, catalogue: dict[str, int]) -> None:
    turns = user_turns(db_engine, "labour", language="vi", country="vn")

    replies = turns.say("list_events", "sự kiện về an toàn lao động")

    assert "events:ask:any:vn" in commands(replies[-1:])


def test_two_countries_in_text_list_all(db_engine: Engine, catalogue: dict[str, int]) -> None:
    turns = user_turns(db_engine, "two-countries", country="vn")

    replies = turns.say("list_events", "events in Cambodia or Laos")

    assert "events:ask:any:any" in commands(replies[-1:])


@pytest.mark.parametrize(
    ("language", "text", "expected"),
    [
        ("vi", "dang ky nhan tin su kien do go", "furniture"),
        ("vi", "đăng ký nhận tin sự kiện đồ gỗ ở Campuchia", "furniture:kh"),
        ("en", "notify me about new packaging events in Vietnam", "packaging:vn"),
        ("km", "ជូនដំណឹងខ្ញុំពីព្រឹត្តិការណ៍គ្រឿងសង្ហារិម", "furniture"),
    ],
)
def test_subscribe_uses_sector_in_text(db_engine: Engine, language: str, text: str, expected: str) -> None:
    turns = user_turns(db_engine, f"sub-{language}-{len(text)}", language=language, sector="food", country="la")

    [offer] = turns.say("subscribe_events", text)

    sector, _, country = expected.partition(":")
    assert offer.buttons[0][1] == f"events:sub:{sector}:{country or 'la'}"


def test_sector_entity_yields_to_text(db_engine: Engine) -> None:
    turns = user_turns(db_engine, "entity", language="vi", sector="food")

    [offer] = turns.say("subscribe_events", "dang ky nhan tin su kien do go", sector="food")

    assert offer.buttons[0][1] == "events:sub:furniture:any"


def _add_run(engine: Engine, user_id: int, sector: str, status: str, completed_at: dt.datetime | None) -> None:
    with session_scope(engine) as session:
        session.add(
            Assessment(
                user_id=user_id,
                questionnaire_id=sector,
                questionnaire_version="1",
                sector=sector,
                language="vi",
                status=status,
                completed_at=completed_at,
            )
        )


def test_list_sector_from_completed_run(db_engine: Engine, catalogue: dict[str, int], now: dt.datetime) -> None:
    # The owner started textiles first (stored on the user), cancelled it, then completed furniture.
    turns = user_turns(db_engine, "assessed", language="vi", sector="textiles", country="vn")
    _add_run(db_engine, turns.user_id, "general", "completed", now)
    _add_run(db_engine, turns.user_id, "furniture", "completed", now - dt.timedelta(days=1))
    _add_run(db_engine, turns.user_id, "textiles", "completed", now - dt.timedelta(days=30))
    _add_run(db_engine, turns.user_id, "textiles", "cancelled", None)

    listed = turns.say("list_events", "co su kien nao sap toi")
    offer = turns.say("subscribe_events", "bao cho toi khi co su kien moi")

    assert "events:ask:furniture:vn" in commands(listed[-1:])
    assert offer[0].buttons[0][1] == "events:sub:furniture:vn"


def test_list_sector_without_completed_run(db_engine: Engine, catalogue: dict[str, int]) -> None:
    turns = user_turns(db_engine, "not-assessed", sector="textiles", country="vn")
    _add_run(db_engine, turns.user_id, "furniture", "cancelled", None)

    listed = turns.say("list_events", "what events are coming up")

    assert "events:ask:textiles:vn" in commands(listed[-1:])


#: Words of the sample notice that say the event will not take place.
NOT_TAKING_PLACE = {"en": "will not take place", "vi": "sẽ không diễn ra", "km": "មិនប្រព្រឹត្តទៅ", "lo": "ບໍ່ຖືກຈັດຂຶ້ນ"}


@pytest.mark.parametrize("language", ["vi", "en", "km", "lo"])
@pytest.mark.parametrize("sample_file", ["samples.csv", "samples.ics"])
def test_sample_notice_shown_once(db_engine: Engine, policy: ReminderPolicy, language: str, sample_file: str) -> None:
    with session_scope(db_engine) as session:
        import_events(session, PROJECT_ROOT / "knowledge_base" / "events" / sample_file, utc_now(), policy)
        event_ids = session.scalars(select(Event.id)).all()
    turns = user_turns(db_engine, f"notice-{language}", language=language)

    assert event_ids
    for event_id in event_ids:
        [details] = turns.press(f"events:details:{event_id}")
        assert details.text.count(gettext("events.details.sample", language)) == 1
        assert details.text.lower().count(NOT_TAKING_PLACE[language]) == 1, details.text
