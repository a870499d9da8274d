"""Staff-group texts of the human handoff follow TELEGRAM_STAFF_LANGUAGE (fake Bot API, no Rasa)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from sqlalchemy import Engine

from bot.channels.telegram import running_bot, store
from bot.i18n import gettext
from bot.settings import Settings
from tests.fakes.bot_api import FakeBotApi
from tests.telegram.conftest import ADMIN_ID, STAFF_CHAT_ID, add_user

#: Telegram user id of the staff member who replies in the group.
STAFF_MEMBER_ID = 777


async def _next_staff_text(fake_api: FakeBotApi, count: int) -> str:
    """Wait until the bot has sent ``count`` messages to the staff group, and return the text of the last."""
    sent = await fake_api.wait_for_requests("sendMessage", chat_id=STAFF_CHAT_ID, count=count)
    return str(sent[count - 1].response["text"])


async def test_staff_texts_in_staff_language(offline_settings: Settings, fake_api: FakeBotApi, db_engine: Engine) -> None:
    settings = offline_settings.model_copy(update={"telegram_staff_language": "vi"})
    owner = 2501
    add_user(db_engine, str(owner), language="km", handoff_active=True)
    fake_api.add_private_chat(owner)

    async with running_bot(settings, engine=db_engine) as bot:
        await bot.handoff.start(owner, None, "km")
        header = await _next_staff_text(fake_api, 1)
        await bot.handoff.notify_ended_by_user(owner)
        ended_by_user = await _next_staff_text(fake_api, 2)
        notice_id = fake_api.bot_messages(STAFF_CHAT_ID)[-1]["message_id"]
        fake_api.inject_message(STAFF_CHAT_ID, "ok", user_id=STAFF_MEMBER_ID, reply_to_message_id=notice_id)
        unknown_reply = await _next_staff_text(fake_api, 3)
        store.end_handoff(db_engine, str(owner))
        header_id = fake_api.bot_messages(STAFF_CHAT_ID)[0]["message_id"]
        fake_api.inject_message(STAFF_CHAT_ID, "Còn đó không?", user_id=STAFF_MEMBER_ID, reply_to_message_id=header_id)
        not_active = await _next_staff_text(fake_api, 4)
        fake_api.inject_message(STAFF_CHAT_ID, "/stats", user_id=ADMIN_ID, language_code="en")
        stats = await _next_staff_text(fake_api, 5)

    assert header == gettext("telegram.staff.header", "vi", user_id=owner, name="?", language="km")
    assert header != gettext("telegram.staff.header", "en", user_id=owner, name="?", language="km")
    assert ended_by_user == gettext("telegram.staff.ended_by_user", "vi", user_id=owner)
    assert unknown_reply == gettext("telegram.staff.unknown_reply", "vi")
    assert not_active == gettext("telegram.staff.not_active", "vi", user_id=owner)
    assert stats.split("\n")[0] == gettext("telegram.stats.report", "vi").split("\n")[0]


async def test_staff_end_and_block_in_staff_language(offline_settings: Settings, fake_api: FakeBotApi, db_engine: Engine) -> None:
    settings = offline_settings.model_copy(update={"telegram_staff_language": "vi"})
    owner, blocked_owner = 2502, 2503
    for chat_id in (owner, blocked_owner):
        add_user(db_engine, str(chat_id), language="lo", handoff_active=True)
        fake_api.add_private_chat(chat_id)

    async with running_bot(settings, engine=db_engine) as bot:
        await bot.handoff.start(blocked_owner, None, "lo")
        await _next_staff_text(fake_api, 1)
        blocked_header_id = fake_api.bot_messages(STAFF_CHAT_ID)[-1]["message_id"]
        fake_api.block_chat(blocked_owner)
        fake_api.inject_message(STAFF_CHAT_ID, "Xin chào", user_id=STAFF_MEMBER_ID, reply_to_message_id=blocked_header_id)
        blocked = await _next_staff_text(fake_api, 2)

        await bot.handoff.start(owner, None, "lo")
        await _next_staff_text(fake_api, 3)
        header_id = fake_api.bot_messages(STAFF_CHAT_ID)[-1]["message_id"]
        fake_api.inject_message(STAFF_CHAT_ID, "/end", user_id=STAFF_MEMBER_ID, reply_to_message_id=header_id)
        ended = await _next_staff_text(fake_api, 4)
        [to_owner] = await fake_api.wait_for_requests("sendMessage", chat_id=owner)

    assert blocked == gettext("telegram.staff.user_blocked", "vi", user_id=blocked_owner)
    assert ended == gettext("telegram.staff.ended", "vi", user_id=owner)
    assert to_owner.response["text"] == gettext("core.handoff.ended", "lo"), "the owner hears their own language"


def test_staff_language_setting_checked() -> None:
    assert Settings(telegram_staff_language=" VI ").telegram_staff_language == "vi"
    assert Settings().telegram_staff_language == "en"
    with pytest.raises(ValidationError, match="TELEGRAM_STAFF_LANGUAGE='fr' is not a supported language"):
        Settings(telegram_staff_language="fr")
