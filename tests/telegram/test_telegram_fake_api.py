"""The fake Bot API responds to the real python-telegram-bot client as Telegram does."""

# Updates from get_updates have Optional fields that these tests know are set.
# mypy: disable-error-code="union-attr"

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from aiohttp import web
from telegram import Bot, BotCommand, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import BadRequest, Conflict, Forbidden, RetryAfter

from bot.services import free_port
from tests.fakes.bot_api import FakeBotApi, parse_html, utf16_length


@pytest.fixture
async def api():
    async with FakeBotApi() as fake:
        yield fake


@pytest.fixture
async def bot(api: FakeBotApi):
    async with Bot(api.token, base_url=api.base_url, base_file_url=api.base_file_url) as client:
        yield client


async def test_get_me_returns_bot_user(bot: Bot, api: FakeBotApi) -> None:
    me = await bot.get_me()
    assert me.id == api.bot_user["id"]
    assert me.username == api.bot_user["username"]


async def test_wrong_token_is_unauthorized(api: FakeBotApi) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{api.base_url}999:wrong/getMe")
    assert response.status_code == 401
    assert response.json()["ok"] is False


async def test_send_message_records_decoded_parameters(bot: Bot, api: FakeBotApi) -> None:
    api.inject_message(42, "hi")
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("Có", callback_data="t:abc")]])
    message = await bot.send_message(42, "<b>Xin chào</b> &amp; chào", parse_mode="HTML", reply_markup=markup)
    request = api.requests("sendMessage")[0]
    assert request.params["chat_id"] == 42
    assert request.params["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "t:abc"
    assert message.text == "Xin chào & chào"
    assert api.bot_messages(42)[-1]["reply_markup"]["inline_keyboard"][0][0]["text"] == "Có"


async def test_unknown_chat_is_bad_request(bot: Bot) -> None:
    with pytest.raises(BadRequest, match=r"(?i)chat not found"):
        await bot.send_message(777, "hello")


@pytest.mark.parametrize(
    "text",
    ["a < b", "<script>x</script>", "<b>open", "fish & chips", "<b><i>x</b></i>"],
)
async def test_bad_html_is_rejected_like_telegram(bot: Bot, api: FakeBotApi, text: str) -> None:
    api.inject_message(42, "hi")
    with pytest.raises(BadRequest, match=r"(?i)can.t parse entities"):
        await bot.send_message(42, text, parse_mode="HTML")


async def test_text_limit_counts_utf16_after_parsing(bot: Bot, api: FakeBotApi) -> None:
    api.inject_message(42, "hi")
    emoji = "🌱" * 2048  # 4096 UTF-16 units
    await bot.send_message(42, emoji)
    await bot.send_message(42, "&amp;" * 4096, parse_mode="HTML")  # 4096 characters once parsed
    with pytest.raises(BadRequest, match=r"(?i)too long"):
        await bot.send_message(42, emoji + "x")


def test_parse_html_and_utf16_length() -> None:
    assert parse_html('<a href="https://example.org">x</a> &lt;&#39;&#x41;') == "x <'A"
    assert utf16_length("ສ🌱") == 3


async def test_callback_data_over_64_bytes_is_rejected(bot: Bot, api: FakeBotApi) -> None:
    api.inject_message(42, "hi")
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("x", callback_data="ខ" * 22)]])  # 66 bytes
    with pytest.raises(BadRequest, match=r"(?i)button_data_invalid"):
        await bot.send_message(42, "choose", reply_markup=markup)


async def test_more_than_100_buttons_is_rejected(bot: Bot, api: FakeBotApi) -> None:
    api.inject_message(42, "hi")
    rows = [[InlineKeyboardButton(str(i), callback_data=str(i))] for i in range(101)]
    with pytest.raises(BadRequest):
        await bot.send_message(42, "choose", reply_markup=InlineKeyboardMarkup(rows))


async def test_get_updates_confirms_with_offset(bot: Bot, api: FakeBotApi) -> None:
    first = api.inject_message(42, "/start", language_code="vi")
    api.inject_message(42, "xin chao")
    updates = await bot.get_updates(timeout=0)
    assert [u.message.text for u in updates] == ["/start", "xin chao"]
    assert updates[0].message.from_user.language_code == "vi"
    assert updates[0].message.entities[0].type == "bot_command"
    assert updates[0].message.message_id == first["message_id"]
    again = await bot.get_updates(offset=updates[-1].update_id + 1, timeout=0)
    assert again == ()
    assert api.pending_update_count() == 0


async def test_long_polling_returns_when_update_arrives(bot: Bot, api: FakeBotApi) -> None:
    async def inject_later() -> None:
        await asyncio.sleep(0.3)
        api.inject_sticker(42)

    task = asyncio.create_task(inject_later())
    started = time.monotonic()
    updates = await bot.get_updates(timeout=5)
    await task
    assert 0.25 < time.monotonic() - started < 4
    assert updates[0].message.sticker is not None


async def test_long_polling_times_out_empty(bot: Bot) -> None:
    started = time.monotonic()
    assert await bot.get_updates(timeout=1) == ()
    assert time.monotonic() - started >= 0.9


async def test_fail_next_answers_429_with_retry_after(bot: Bot, api: FakeBotApi) -> None:
    api.inject_message(42, "hi")
    api.fail_next("sendMessage", count=2, retry_after=3)
    for _ in range(2):
        with pytest.raises(RetryAfter) as raised:
            await bot.send_message(42, "x")
        assert raised.value.retry_after in (3, dt.timedelta(seconds=3))
    await bot.send_message(42, "x")
    assert [r.status for r in api.requests("sendMessage")] == [429, 429, 200]


async def test_fail_next_403_only_for_one_chat(bot: Bot, api: FakeBotApi) -> None:
    api.inject_message(1, "hi")
    api.inject_message(2, "hi")
    api.fail_next("sendMessage", error_code=403, chat_id=1)
    await bot.send_message(2, "ok")
    with pytest.raises(Forbidden, match=r"(?i)blocked by the user"):
        await bot.send_message(1, "x")
    await bot.send_message(1, "ok again")


async def test_blocked_chat_is_forbidden_until_unblocked(bot: Bot, api: FakeBotApi) -> None:
    api.inject_message(1, "hi")
    api.block_chat(1)
    for _ in range(2):
        with pytest.raises(Forbidden):
            await bot.send_message(1, "x")
    api.unblock_chat(1)
    await bot.send_message(1, "x")


async def test_global_rate_limit_answers_429() -> None:
    async with FakeBotApi(rate_limit_per_second=5) as api:
        api.inject_message(1, "hi")
        async with Bot(api.token, base_url=api.base_url) as bot:
            results = await asyncio.gather(*(bot.send_message(1, str(i)) for i in range(8)), return_exceptions=True)
    limited = [r for r in results if isinstance(r, RetryAfter)]
    assert len(limited) == 3
    assert len(api.successful("sendMessage")) == 5


async def test_photo_and_document_uploads_are_multipart(bot: Bot, api: FakeBotApi, tmp_path: Path) -> None:
    api.inject_message(42, "hi")
    image = tmp_path / "chart.png"
    image.write_bytes(b"\x89PNG fake")
    calendar = tmp_path / "event.ics"
    calendar.write_bytes(b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n")
    await bot.send_photo(42, image.read_bytes(), caption="Kết quả", filename="chart.png")
    await bot.send_document(42, calendar.open("rb"), filename="event.ics")
    photo_upload = api.requests("sendPhoto")[0].files["photo"]
    assert photo_upload.data == b"\x89PNG fake"
    document_upload = api.requests("sendDocument")[0].files["document"]
    assert document_upload.filename == "event.ics"
    assert api.bot_messages(42)[-1]["document"]["file_name"] == "event.ics"
    with pytest.raises(BadRequest, match=r"(?i)caption is too long"):
        await bot.send_photo(42, image.read_bytes(), caption="x" * 1025)


async def test_commands_are_kept_per_language(bot: Bot, api: FakeBotApi) -> None:
    await bot.set_my_commands([BotCommand("help", "Trợ giúp")], language_code="vi")
    await bot.set_my_commands([BotCommand("help", "Help")])
    assert [c.description for c in await bot.get_my_commands(language_code="vi")] == ["Trợ giúp"]
    assert api.commands()[0]["description"] == "Help"


async def test_callback_query_and_reply_to(bot: Bot, api: FakeBotApi) -> None:
    api.inject_message(42, "hi")
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("Yes", callback_data="t:yes")]])
    sent = await bot.send_message(42, "Agree?", reply_markup=markup)
    query_id = api.press_button(42, "Yes")
    update = (await bot.get_updates(timeout=0))[-1]
    assert update.callback_query.id == query_id
    assert update.callback_query.data == "t:yes"
    assert update.callback_query.message.message_id == sent.message_id
    assert await bot.answer_callback_query(query_id)

    api.add_group(-100)
    forwarded = await bot.forward_message(-100, 42, sent.message_id)
    api.inject_message(-100, "staff answer", user_id=9, reply_to_message_id=forwarded.message_id)
    staff = (await bot.get_updates(offset=update.update_id + 1, timeout=0))[-1]
    assert staff.message.reply_to_message.message_id == forwarded.message_id
    copied = await bot.copy_message(42, -100, staff.message.message_id)
    assert (api.message(42, copied.message_id) or {}).get("text") == "staff answer"


async def test_webhook_delivery_sends_secret_and_blocks_polling(bot: Bot, api: FakeBotApi) -> None:
    received: list[tuple[str | None, dict]] = []

    async def handle(request: web.Request) -> web.Response:
        received.append((request.headers.get("X-Telegram-Bot-Api-Secret-Token"), await request.json()))
        return web.Response()

    app = web.Application()
    app.router.add_post("/hook", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        await bot.set_webhook(f"http://127.0.0.1:{port}/hook", secret_token="s3cret")
        with pytest.raises(Conflict):
            await bot.get_updates(timeout=0)
        api.inject_message(42, "via webhook")
        for _ in range(100):
            if received:
                break
            await asyncio.sleep(0.05)
        assert received[0][0] == "s3cret"
        assert received[0][1]["message"]["text"] == "via webhook"
        with pytest.raises(BadRequest):
            await bot.set_webhook("https://example.org/hook")
        await bot.delete_webhook()
    finally:
        await runner.cleanup()


def _wait_for(condition: Callable[[], bool], description: str, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds} s waiting for {description}")
        time.sleep(0.01)


def test_serve_in_thread_for_sync_callers() -> None:
    with FakeBotApi.serve_in_thread(rate_limit_per_second=30) as api:
        api.inject_message(5, "hi")
        response = httpx.post(f"{api.base_url}{api.token}/sendMessage", data={"chat_id": "5", "text": "hello"})
        assert response.json()["result"]["text"] == "hello"
        response = httpx.post(f"{api.base_url}{api.token}/getUpdates", json={"timeout": 0})
        assert response.json()["result"][0]["message"]["text"] == "hi"
    assert api.requests("sendMessage")[0].params["chat_id"] == 5
    with pytest.raises(httpx.ConnectError):
        httpx.post(f"{api.base_url}{api.token}/getMe")


def test_serve_in_thread_stop_ends_long_poll() -> None:
    answers: list[httpx.Response] = []
    with FakeBotApi.serve_in_thread() as api:
        poll_url = f"{api.base_url}{api.token}/getUpdates"
        poller = threading.Thread(
            target=lambda: answers.append(httpx.post(poll_url, json={"timeout": 60}, timeout=90)), daemon=True
        )
        poller.start()
        _wait_for(lambda: api.requests("getUpdates") != [], "the long poll to arrive")
    poller.join(timeout=30)

    assert not poller.is_alive(), "the long poll was still open after the fake stopped"
    assert answers[0].json() == {"ok": True, "result": []}


def test_serve_in_thread_stops_while_webhook_fails() -> None:
    with FakeBotApi.serve_in_thread() as api:
        closed_port = free_port()
        response = httpx.post(f"{api.base_url}{api.token}/setWebhook", data={"url": f"http://127.0.0.1:{closed_port}/hook"})
        assert response.json()["result"] is True
        api.inject_message(5, "hi")
        _wait_for(lambda: api.webhook_deliveries != [], "a failed webhook delivery")

    assert api.webhook_deliveries[0][1] == 0
    with pytest.raises(httpx.ConnectError):
        httpx.post(f"{api.base_url}{api.token}/getMe")


def test_serve_in_thread_raises_start_error() -> None:
    class PortTaken(FakeBotApi):
        async def start(self, port: int = 0) -> None:
            raise OSError("address already in use")

    with pytest.raises(OSError, match="address already in use"), PortTaken.serve_in_thread():
        pass
