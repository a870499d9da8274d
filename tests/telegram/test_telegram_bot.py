"""The running bot against the fake Bot API, for updates that need no Rasa answer."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine

from bot.channels.telegram import running_bot
from bot.channels.telegram.commands import COMMAND_PAYLOADS
from bot.i18n import gettext
from bot.services import free_port
from bot.settings import Settings
from bot.storage.db import create_db_engine
from tests.fakes.bot_api import FakeBotApi
from tests.telegram.conftest import ADMIN_ID, STAFF_CHAT_ID, add_user, telegram_settings


def _menu_titles(language: str) -> list[str]:
    return [gettext(f"core.menu.{name}", language) for name in ("ask", "assess", "events", "language")]


def _titles(message: dict) -> list[str]:
    return [key["text"] for row in message.get("reply_markup", {}).get("inline_keyboard", []) for key in row]


async def test_commands_registered_in_four_languages(offline_settings: Settings, fake_api: FakeBotApi, db_engine: Engine) -> None:
    async with running_bot(offline_settings, engine=db_engine):
        pass
    for language_code, language in (("", "en"), ("vi", "vi"), ("km", "km"), ("lo", "lo")):
        commands = fake_api.commands(language_code)
        assert [command["command"] for command in commands] == list(COMMAND_PAYLOADS)
        assert commands[1]["description"] == gettext("telegram.command.help", language)


async def test_non_text_messages_get_polite_reply(offline_settings: Settings, fake_api: FakeBotApi, db_engine: Engine) -> None:
    add_user(db_engine, "2001", language="km")
    async with running_bot(offline_settings, engine=db_engine):
        fake_api.inject_sticker(2001, language_code="en")  # stored language wins
        fake_api.inject_photo(2002, caption="my product", language_code="vi")  # unknown user: client language
        fake_api.inject_voice(2003, language_code="lo")
        fake_api.inject_document(2004, language_code="vi")
        fake_api.inject_location(2005, language_code=None)
        original = fake_api.inject_message(2006, "xin chao", language_code="vi")
        await fake_api.wait_for_requests("sendMessage", chat_id=2001)
        fake_api.inject_edited_message(2006, original["message_id"], "xin chào")
        expected = {2001: "km", 2002: "vi", 2003: "lo", 2004: "vi", 2005: "en"}
        for chat_id, language in expected.items():
            sent = await fake_api.wait_for_requests("sendMessage", chat_id=chat_id)
            message = fake_api.bot_messages(chat_id)[-1]
            assert message["text"] == gettext("core.non_text", language), chat_id
            assert _titles(message) == _menu_titles(language)
            assert len(sent) == 1
        edited = await fake_api.wait_for_requests(
            "sendMessage", chat_id=2006, predicate=lambda request: request.response["text"] == gettext("core.non_text", "vi")
        )
        assert edited


async def test_unknown_button_token_gets_polite_reply(
    offline_settings: Settings, fake_api: FakeBotApi, db_engine: Engine
) -> None:
    add_user(db_engine, "2101", language="vi")
    fake_api.add_private_chat(2101)
    async with running_bot(offline_settings, engine=db_engine) as bot:
        await bot.channel.send_text(2101, "Chọn")
        query_id = fake_api.inject_callback_query(2101, "b:doesnotexist", language_code="en")
        answers = await fake_api.wait_for_requests("answerCallbackQuery")
        replies = await fake_api.wait_for_requests("sendMessage", chat_id=2101, count=2)
        await asyncio.sleep(0.2)
    assert answers[0].params["callback_query_id"] == query_id
    assert replies[-1].response["text"] == gettext("core.unknown_button", "vi")
    assert _titles(replies[-1].response) == _menu_titles("vi")
    assert answers[0].received_at < replies[-1].received_at


async def test_foreign_callback_data_gets_polite_reply(
    offline_settings: Settings, fake_api: FakeBotApi, db_engine: Engine
) -> None:
    fake_api.add_private_chat(2102)
    async with running_bot(offline_settings, engine=db_engine) as bot:
        await bot.channel.send_text(2102, "old message")
        fake_api.inject_callback_query(2102, "lang:vi", language_code="lo")
        replies = await fake_api.wait_for_requests("sendMessage", chat_id=2102, count=2)
    assert replies[-1].response["text"] == gettext("core.unknown_button", "lo")


async def test_rasa_down_gives_try_again(offline_settings: Settings, fake_api: FakeBotApi, db_engine: Engine) -> None:
    async with running_bot(offline_settings, engine=db_engine):
        fake_api.inject_message(2201, "Làm sao giảm bao bì nhựa?", language_code="vi")
        replies = await fake_api.wait_for_requests("sendMessage", chat_id=2201, timeout=15)
    assert replies[0].response["text"] == gettext("core.try_again", "vi")
    assert fake_api.pending_update_count() == 0


async def test_stats_only_for_admins(offline_settings: Settings, fake_api: FakeBotApi, db_engine: Engine) -> None:
    add_user(db_engine, "2301", language="vi")
    add_user(db_engine, "2302", language="km", handoff_active=True)
    add_user(db_engine, "2303", language="km", active=False)
    async with running_bot(offline_settings, engine=db_engine):
        fake_api.inject_message(2301, "/stats", language_code="vi")
        denied = await fake_api.wait_for_requests("sendMessage", chat_id=2301)
        fake_api.inject_message(ADMIN_ID, "/stats", language_code="en")
        report = await fake_api.wait_for_requests("sendMessage", chat_id=ADMIN_ID)
    assert denied[0].response["text"] == gettext("telegram.admin_only", "vi")
    text = report[0].response["text"]
    assert "telegram / km: 2" in text
    assert "telegram / vi: 1" in text
    assert "Active handoffs: 1" in text
    assert "blocked: 1" in text


async def test_staff_chatter_is_ignored(offline_settings: Settings, fake_api: FakeBotApi, db_engine: Engine) -> None:
    async with running_bot(offline_settings, engine=db_engine):
        fake_api.inject_message(STAFF_CHAT_ID, "good morning team", user_id=555)
        fake_api.inject_message(STAFF_CHAT_ID, "/stats", user_id=ADMIN_ID)
        await fake_api.wait_for_requests("sendMessage", chat_id=STAFF_CHAT_ID)
        await asyncio.sleep(0.3)
    assert len(fake_api.requests("sendMessage", chat_id=STAFF_CHAT_ID)) == 1


async def test_webhook_refuses_missing_or_wrong_secret(
    fake_api: FakeBotApi, db_engine: Engine, offline_settings: Settings
) -> None:
    port = free_port()
    settings = telegram_settings(
        offline_settings,
        fake_api,
        telegram_webhook_url=f"http://127.0.0.1:{port}/telegram/hook",
        telegram_webhook_secret="correct-secret_123",
        telegram_webhook_port=port,
    )
    add_user(db_engine, "2401", language="vi")
    async with running_bot(settings, engine=db_engine) as bot:
        assert fake_api.webhook["secret_token"] == "correct-secret_123"
        update = {
            "update_id": 9001,
            "message": fake_api.build_message(
                2401,
                text=None,
                extra={
                    "sticker": {
                        "file_id": "s",
                        "file_unique_id": "s",
                        "type": "regular",
                        "width": 1,
                        "height": 1,
                        "is_animated": False,
                        "is_video": False,
                    }
                },
            ),
        }
        url = f"http://127.0.0.1:{port}/telegram/hook"
        async with httpx.AsyncClient() as client:
            missing = await client.post(url, json=update)
            wrong = await client.post(url, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": "guess"})
        assert missing.status_code == 403
        assert wrong.status_code == 403
        assert bot.webhook_server is not None
        assert bot.webhook_server.refused == 2
        await asyncio.sleep(0.3)
        assert fake_api.requests("sendMessage", chat_id=2401) == []

        fake_api.inject_sticker(2401)  # the fake delivers it with the secret, like Telegram
        replies = await fake_api.wait_for_requests("sendMessage", chat_id=2401)
    assert replies[0].response["text"] == gettext("core.non_text", "vi")
    assert (fake_api.webhook_deliveries[-1][1]) == 200


async def test_webhook_rejects_invalid_secret_setting(
    fake_api: FakeBotApi, db_engine: Engine, offline_settings: Settings
) -> None:
    settings = telegram_settings(
        offline_settings, fake_api, telegram_webhook_url="http://127.0.0.1:1/x", telegram_webhook_secret="bad secret!"
    )
    with pytest.raises(ValueError, match="TELEGRAM_WEBHOOK_SECRET"):
        async with running_bot(settings, engine=db_engine, webhook_port=0):
            pass


async def test_handler_error_apologises(offline_settings: Settings, fake_api: FakeBotApi, tmp_path: Path) -> None:
    unmigrated = create_db_engine(f"sqlite:///{tmp_path / 'empty.db'}")  # no tables: every query fails
    async with running_bot(offline_settings, engine=unmigrated):
        fake_api.inject_message(2501, "xin chào", language_code="km")
        replies = await fake_api.wait_for_requests("sendMessage", chat_id=2501)
        fake_api.inject_message(2502, "/help", language_code="vi")
        others = await fake_api.wait_for_requests("sendMessage", chat_id=2502)
    assert replies[0].response["text"] == gettext("core.error", "km")
    assert others[0].response["text"] == gettext("core.error", "vi")
