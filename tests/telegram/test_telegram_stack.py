"""End-to-end: the real Rasa and action servers behind the bot, the fake Bot API in front."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import Engine, select

from bot.channels.telegram import running_bot
from bot.channels.telegram.handlers import TelegramBot
from bot.i18n import gettext
from bot.settings import Settings
from bot.storage.db import create_db_engine, session_scope
from bot.storage.models import HandoffMessage, User
from nlu.text import detect_language
from tests.fakes.bot_api import FakeBotApi, RecordedRequest
from tests.telegram.conftest import STAFF_CHAT_ID, telegram_settings

pytestmark = pytest.mark.stack

#: A knowledge-base answer can take a few seconds on 2 cores.
REPLY_TIMEOUT = 60.0

APOLOGIES = {
    gettext(message_id, language) for message_id in ("core.try_again", "core.error") for language in ("vi", "en", "km", "lo")
}


@pytest.fixture
def stack_engine(stack_settings: Settings) -> Engine:
    return create_db_engine(stack_settings.database_url)


@pytest.fixture
async def bot(stack_settings: Settings, fake_api: FakeBotApi, stack_engine: Engine) -> AsyncIterator[TelegramBot]:
    async with running_bot(telegram_settings(stack_settings, fake_api), engine=stack_engine) as running:
        yield running


async def _say(api: FakeBotApi, chat_id: int, text: str, language_code: str | None, *, expect: int = 1) -> list[RecordedRequest]:
    """Send a user message and wait for ``expect`` new bot messages (any method) in that chat."""
    before = len(api.bot_messages(chat_id))
    api.inject_message(chat_id, text, language_code=language_code)
    return await _wait_bot_messages(api, chat_id, before + expect)


async def _press(
    api: FakeBotApi, chat_id: int, title: str, language_code: str | None, *, expect: int = 1
) -> list[RecordedRequest]:
    before = len(api.bot_messages(chat_id))
    api.press_button(chat_id, title, language_code=language_code)
    return await _wait_bot_messages(api, chat_id, before + expect)


async def _wait_bot_messages(api: FakeBotApi, chat_id: int, count: int) -> list[RecordedRequest]:
    deadline = time.monotonic() + REPLY_TIMEOUT
    while len(api.bot_messages(chat_id)) < count:
        if time.monotonic() > deadline:
            texts = [message.get("text") for message in api.bot_messages(chat_id)]
            raise TimeoutError(f"chat {chat_id}: expected {count} bot messages, got {texts}")
        await _sleep()
    await _sleep(0.3)  # let the rest of the same turn arrive
    return api.successful("sendMessage", chat_id=chat_id)


async def _sleep(seconds: float = 0.05) -> None:
    import asyncio

    await asyncio.sleep(seconds)


def _titles(message: dict) -> list[str]:
    return [key["text"] for row in message.get("reply_markup", {}).get("inline_keyboard", []) for key in row]


def _user(engine: Engine, chat_id: int) -> User:
    with session_scope(engine) as session:
        user = session.scalars(select(User).where(User.channel == "telegram", User.external_id == str(chat_id))).one()
        session.expunge(user)
        return user


async def _owner_asks_and_presses(api: FakeBotApi, chat_id: int, language: str, question: str) -> None:
    await _say(api, chat_id, "/start", language, expect=3)
    greeting, privacy, language_prompt = api.bot_messages(chat_id)[:3]
    assert greeting["text"] == gettext("core.greeting", language)
    assert _titles(greeting) == [gettext(f"core.menu.{name}", language) for name in ("ask", "assess", "events", "language")]
    assert privacy["text"] == gettext("core.privacy_notice", language)
    assert _titles(privacy) == [gettext("core.consent.yes", language), gettext("core.consent.no", language)]
    assert language_prompt["text"] == gettext("core.language_prompt", language)
    assert len(_titles(language_prompt)) == 4

    await _press(api, chat_id, gettext("core.consent.yes", language), language)
    assert api.bot_messages(chat_id)[-1]["text"] == gettext("core.consent.thanks", language)
    assert len(api.successful("answerCallbackQuery")) >= 1

    before = len(api.bot_messages(chat_id))
    await _say(api, chat_id, question, language)
    answer = api.bot_messages(chat_id)[before:]
    text = "\n".join(message.get("text", "") for message in answer)
    assert text not in APOLOGIES
    assert detect_language(text) == language, text[:300]
    buttons = [title for message in answer for title in _titles(message)]
    assert buttons, "an answer offers next steps as buttons"

    before = len(api.bot_messages(chat_id))
    await _press(api, chat_id, buttons[0], language)
    after = api.bot_messages(chat_id)[before:]
    assert after
    assert after[0]["text"] not in APOLOGIES | {gettext("core.unknown_button", language)}


async def test_vietnamese_owner_asks_and_presses(bot: TelegramBot, fake_api: FakeBotApi) -> None:
    await _owner_asks_and_presses(fake_api, 3101, "vi", "Làm sao để giảm bao bì nhựa cho sản phẩm thủ công?")


async def test_khmer_owner_asks_and_presses(bot: TelegramBot, fake_api: FakeBotApi) -> None:
    await _owner_asks_and_presses(fake_api, 3102, "km", "តើខ្ញុំអាចកាត់បន្ថយការប្រើប្រាស់ថង់ប្លាស្ទិកក្នុងការវេចខ្ចប់ដោយរបៀបណា?")


@pytest.mark.parametrize(
    ("command", "message_id"),
    [
        ("/help", "core.help"),
        ("/language", "core.language_prompt"),
        ("/deletedata", "core.delete.confirm"),
        ("/ask", "core.ask_prompt"),
        ("/privacy", "core.privacy_notice"),
    ],
)
async def test_commands_reach_core_handlers(bot: TelegramBot, fake_api: FakeBotApi, command: str, message_id: str) -> None:
    chat_id = 3200 + len(command) + len(message_id)
    await _say(fake_api, chat_id, command, "lo")
    texts = [message["text"] for message in fake_api.bot_messages(chat_id)]
    assert gettext(message_id, "lo") in texts
    # A first message is answered together with the privacy notice.
    assert gettext("core.privacy_notice", "lo") in texts


@pytest.mark.parametrize("command", ["/assess", "/events"])
async def test_assess_and_events_commands_answer(bot: TelegramBot, fake_api: FakeBotApi, command: str) -> None:
    chat_id = 3300 + len(command)
    await _say(fake_api, chat_id, command, "vi")
    reply = fake_api.bot_messages(chat_id)[-1]
    assert reply.get("text") not in APOLOGIES
    assert _titles(reply), f"{command} offers buttons"


async def test_rate_limited_reply_waits_retry_after(bot: TelegramBot, fake_api: FakeBotApi) -> None:
    fake_api.fail_next("sendMessage", count=1, retry_after=2, chat_id=3401)
    fake_api.inject_message(3401, "/help", language_code="en")
    await fake_api.wait_for_requests("sendMessage", chat_id=3401, timeout=REPLY_TIMEOUT)
    attempts = fake_api.requests("sendMessage", chat_id=3401)
    assert [attempt.status for attempt in attempts][:2] == [429, 200]
    assert attempts[1].received_at - attempts[0].received_at >= 2.0
    await _sleep(0.5)  # the privacy notice of this first turn follows
    texts = [request.response["text"] for request in fake_api.successful("sendMessage", chat_id=3401)]
    assert gettext("core.help", "en") in texts


async def test_blocked_user_skipped_others_answered(bot: TelegramBot, fake_api: FakeBotApi, stack_engine: Engine) -> None:
    await _say(fake_api, 3501, "/help", "vi", expect=2)  # the help text and the privacy notice
    fake_api.block_chat(3501)
    fake_api.inject_message(3501, "/help", language_code="vi")
    fake_api.inject_message(3502, "/help", language_code="vi")
    await fake_api.wait_for_requests("sendMessage", chat_id=3502, timeout=REPLY_TIMEOUT)
    await fake_api.wait_for_requests("sendMessage", chat_id=3501, count=2, successful_only=False, timeout=REPLY_TIMEOUT)
    await _sleep(0.5)
    blocked = _user(stack_engine, 3501)
    assert blocked.active is False
    assert blocked.blocked_at is not None
    assert [request.status for request in fake_api.requests("sendMessage", chat_id=3501)] == [200, 200, 403]
    assert _user(stack_engine, 3502).active is True

    fake_api.unblock_chat(3501)
    await _say(fake_api, 3501, "/help", "vi")
    assert _user(stack_engine, 3501).active is True


async def test_handoff_round_trip_through_staff_group(bot: TelegramBot, fake_api: FakeBotApi, stack_engine: Engine) -> None:
    owner = 3601
    await _say(fake_api, owner, "Xin chào, tôi làm đồ gỗ xuất khẩu", "vi")
    await _say(fake_api, owner, "/human", "vi")
    assert fake_api.bot_messages(owner)[-1]["text"] == gettext("core.handoff.started", "vi")
    assert _user(stack_engine, owner).handoff_active is True

    staff_messages = await fake_api.wait_for_requests("forwardMessage", count=2, timeout=REPLY_TIMEOUT)
    header = fake_api.bot_messages(STAFF_CHAT_ID)[0]
    assert str(owner) in header["text"]
    assert "vi" in header["text"]
    forwarded_texts = [
        (fake_api.message(STAFF_CHAT_ID, request.response["message_id"]) or {}).get("text") for request in staff_messages
    ]
    assert "Xin chào, tôi làm đồ gỗ xuất khẩu" in forwarded_texts

    # While a person handles it, the owner's messages go to staff and the bot stays quiet.
    replies_before = len(fake_api.bot_messages(owner))
    question = fake_api.inject_message(owner, "Chứng nhận FSC tốn bao nhiêu tiền?", language_code="vi")
    forwards = await fake_api.wait_for_requests("forwardMessage", count=3, timeout=REPLY_TIMEOUT)
    assert forwards[-1].params["message_id"] == question["message_id"]
    await _sleep(0.5)
    assert len(fake_api.bot_messages(owner)) == replies_before

    # A staff reply to the forwarded question reaches the owner.
    forwarded_question = forwards[-1].response["message_id"]
    fake_api.inject_message(STAFF_CHAT_ID, "Khoảng 2.000 USD cho năm đầu.", user_id=777, reply_to_message_id=forwarded_question)
    await fake_api.wait_for_requests("copyMessage", timeout=REPLY_TIMEOUT)
    assert fake_api.bot_messages(owner)[-1]["text"] == "Khoảng 2.000 USD cho năm đầu."
    with session_scope(stack_engine) as session:
        linked = session.scalars(
            select(HandoffMessage.staff_message_id).where(HandoffMessage.staff_chat_id == STAFF_CHAT_ID)
        ).all()
    assert forwarded_question in linked

    # Staff replies /end: the owner hears it in Vietnamese and the bot answers again.
    fake_api.inject_message(STAFF_CHAT_ID, "/end", user_id=777, reply_to_message_id=forwarded_question)
    await _wait_bot_messages(fake_api, owner, replies_before + 2)
    ended = fake_api.bot_messages(owner)[-1]
    assert ended["text"] == gettext("core.handoff.ended", "vi")
    assert _titles(ended)
    assert _user(stack_engine, owner).handoff_active is False
    staff_notes = [message.get("text") for message in fake_api.bot_messages(STAFF_CHAT_ID)]
    assert gettext("telegram.staff.ended", "en", user_id=owner) in staff_notes

    await _say(fake_api, owner, "/help", "vi")
    assert fake_api.bot_messages(owner)[-1]["text"] == gettext("core.help", "vi")


async def test_owner_ends_handoff_with_endhuman(bot: TelegramBot, fake_api: FakeBotApi, stack_engine: Engine) -> None:
    owner = 3701
    await _say(fake_api, owner, "/human", "km")
    assert _user(stack_engine, owner).handoff_active is True
    await _say(fake_api, owner, "/endhuman", "km")
    assert fake_api.bot_messages(owner)[-1]["text"] == gettext("core.handoff.ended", "km")
    assert _user(stack_engine, owner).handoff_active is False
    await _sleep(0.3)
    staff_notes = [message.get("text") for message in fake_api.bot_messages(STAFF_CHAT_ID)]
    assert gettext("telegram.staff.ended_by_user", "en", user_id=owner) in staff_notes

    # A late staff reply is not delivered; staff are told so.
    forwarded = [m for m in fake_api.bot_messages(STAFF_CHAT_ID) if "forward_origin" in m or str(owner) in m.get("text", "")]
    fake_api.inject_message(STAFF_CHAT_ID, "still there?", user_id=777, reply_to_message_id=forwarded[0]["message_id"])
    note = gettext("telegram.staff.not_active", "en", user_id=owner)
    await fake_api.wait_for_requests("sendMessage", chat_id=STAFF_CHAT_ID, predicate=lambda r: r.response["text"] == note)
