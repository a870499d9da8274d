"""TelegramChannel.send against the fake Bot API: splitting, 429, 403, entities, media."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from bot.channels.base import Button, DeliveryError, OutgoingMessage
from bot.channels.telegram import TelegramChannel
from bot.channels.telegram.keyboard import resolve_token, token_from_callback_data
from bot.channels.telegram.limits import MAX_MESSAGE_UTF16_UNITS
from bot.channels.telegram.text import utf16_length
from bot.settings import Settings
from bot.storage.db import session_scope
from bot.storage.models import User
from tests.fakes.bot_api import FakeBotApi
from tests.telegram.conftest import add_user


@pytest.fixture
async def channel(offline_settings: Settings, db_engine: Engine):
    async with TelegramChannel.from_settings(offline_settings, db_engine) as telegram:
        yield telegram


def _long_reply() -> str:
    paragraphs = [f"Đoạn {index}: " + "Giảm bao bì nhựa & dùng giấy tái chế <an toàn>. " * 6 for index in range(40)]
    return "\n\n".join(paragraphs)[:9000]


async def test_long_reply_arrives_split_in_order(channel: TelegramChannel, fake_api: FakeBotApi) -> None:
    fake_api.inject_message(1001, "hi")
    text = _long_reply()
    await channel.send("1001", OutgoingMessage(text=text, language="vi", buttons=[Button("OK", '/press{"cmd":"core:ask"}')]))
    sent = fake_api.successful("sendMessage", chat_id=1001)
    assert len(sent) == 3
    texts = [request.response["text"] for request in sent]
    assert all(utf16_length(part) <= MAX_MESSAGE_UTF16_UNITS for part in texts)
    assert "".join(texts).replace(" ", "").replace("\n", "") == text.replace(" ", "").replace("\n", "")
    assert [text.startswith("Đoạn 0") for text in texts] == [True, False, False]
    assert all(request.params["parse_mode"] == "HTML" for request in sent)
    assert "reply_markup" not in sent[0].params
    assert "reply_markup" in sent[-1].params


async def test_button_token_round_trip(channel: TelegramChannel, fake_api: FakeBotApi, db_engine: Engine) -> None:
    fake_api.inject_message(1002, "hi")
    payload = '/press{"cmd":"assess:answer:q3:a2"}'
    await channel.send("1002", OutgoingMessage(text="Q3?", buttons=[Button("ការប្រើប្រាស់ថាមពលកកើតឡើងវិញ", payload)]))
    key = fake_api.bot_messages(1002)[-1]["reply_markup"]["inline_keyboard"][0][0]
    token = token_from_callback_data(key["callback_data"])
    assert token is not None
    assert resolve_token(db_engine, token) == payload


async def test_429_is_waited_out(channel: TelegramChannel, fake_api: FakeBotApi) -> None:
    fake_api.inject_message(1003, "hi")
    fake_api.fail_next("sendMessage", count=1, retry_after=1)
    started = time.monotonic()
    await channel.send("1003", OutgoingMessage(text="Nhắc lịch hội thảo"))
    assert time.monotonic() - started >= 1.0
    assert [request.status for request in fake_api.requests("sendMessage", chat_id=1003)] == [429, 200]


async def test_blocked_user_is_permanent_and_marked(channel: TelegramChannel, fake_api: FakeBotApi, db_engine: Engine) -> None:
    add_user(db_engine, "1004")
    add_user(db_engine, "1005")
    fake_api.inject_message(1004, "hi")
    fake_api.inject_message(1005, "hi")
    fake_api.block_chat(1004)
    with pytest.raises(DeliveryError) as raised:
        await channel.send("1004", OutgoingMessage(text="Reminder"))
    assert raised.value.permanent is True
    await channel.send("1005", OutgoingMessage(text="Reminder"))
    assert len(fake_api.successful("sendMessage", chat_id=1005)) == 1
    assert len(fake_api.requests("sendMessage", chat_id=1004)) == 1  # not retried
    with session_scope(db_engine) as session:
        blocked = session.scalars(select(User).where(User.external_id == "1004")).one()
        other = session.scalars(select(User).where(User.external_id == "1005")).one()
        assert blocked.active is False
        assert blocked.blocked_at is not None
        assert other.active is True


async def test_unknown_chat_is_permanent(channel: TelegramChannel) -> None:
    with pytest.raises(DeliveryError) as raised:
        await channel.send("424242", OutgoingMessage(text="x"))
    assert raised.value.permanent is True
    with pytest.raises(DeliveryError) as raised:
        await channel.send("not-a-number", OutgoingMessage(text="x"))
    assert raised.value.permanent is True


async def test_entity_error_resends_plain_text(channel: TelegramChannel, fake_api: FakeBotApi) -> None:
    fake_api.inject_message(1006, "hi")
    fake_api.fail_next("sendMessage", error_code=400, description="Bad Request: can't parse entities: Unsupported start tag")
    await channel.send("1006", OutgoingMessage(text="Dùng <giấy> & tre"))
    requests = fake_api.requests("sendMessage", chat_id=1006)
    assert [request.status for request in requests] == [400, 200]
    assert requests[1].params["text"] == "Dùng <giấy> & tre"
    assert "parse_mode" not in requests[1].params


async def test_user_text_is_escaped(channel: TelegramChannel, fake_api: FakeBotApi) -> None:
    fake_api.inject_message(1007, "hi")
    await channel.send("1007", OutgoingMessage(text="<b>not bold</b> & <script>"))
    assert fake_api.bot_messages(1007)[-1]["text"] == "<b>not bold</b> & <script>"


async def test_photo_caption_overflow_and_document(channel: TelegramChannel, fake_api: FakeBotApi, tmp_path: Path) -> None:
    fake_api.inject_message(1008, "hi")
    chart = tmp_path / "chart.png"
    chart.write_bytes(b"\x89PNG chart")
    calendar = tmp_path / "workshop.ics"
    calendar.write_bytes(b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n")
    text = "Điểm của bạn. " * 150
    await channel.send(
        "1008", OutgoingMessage(text=text, image=str(chart), document=str(calendar), buttons=[Button("OK", "/help")])
    )
    photo = fake_api.successful("sendPhoto", chat_id=1008)[0]
    assert photo.files["photo"].data == b"\x89PNG chart"
    assert len(photo.params["caption"]) <= 1024
    assert len(fake_api.successful("sendMessage", chat_id=1008)) == 1
    document = fake_api.successful("sendDocument", chat_id=1008)[0]
    assert document.files["document"].filename == "workshop.ics"
    assert "reply_markup" in document.params
    kinds = [("photo" in m) * "photo" or ("document" in m) * "document" or "text" for m in fake_api.bot_messages(1008)]
    assert kinds == ["photo", "text", "document"]


async def test_missing_image_sends_text(channel: TelegramChannel, fake_api: FakeBotApi, tmp_path: Path) -> None:
    fake_api.inject_message(1009, "hi")
    await channel.send("1009", OutgoingMessage(text="Your chart", image=str(tmp_path / "missing.png")))
    assert fake_api.requests("sendPhoto") == []
    assert fake_api.bot_messages(1009)[-1]["text"] == "Your chart"


async def test_broadcast_under_global_rate_limit(offline_settings: Settings, db_engine: Engine) -> None:
    async with FakeBotApi(rate_limit_per_second=30) as api:
        settings = offline_settings.model_copy(update={"telegram_base_url": api.base_url, "telegram_bot_token": api.token})
        chat_ids = list(range(7000, 7080))
        for chat_id in chat_ids:
            api.add_private_chat(chat_id)
        api.block_chat(7005)
        async with TelegramChannel.from_settings(settings, db_engine) as telegram:
            results = await asyncio.gather(
                *(telegram.send(str(chat_id), OutgoingMessage(text=f"Nhắc lịch {chat_id}")) for chat_id in chat_ids),
                return_exceptions=True,
            )
    failures = {chat_id: result for chat_id, result in zip(chat_ids, results, strict=True) if result is not None}
    assert list(failures) == [7005]
    assert isinstance(failures[7005], DeliveryError)
    assert failures[7005].permanent is True
    delivered = {request.chat_id for request in api.successful("sendMessage")}
    assert delivered == set(chat_ids) - {7005}
