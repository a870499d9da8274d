"""Button tokens in the button_tokens table, and inline keyboard layout."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine, func, select, update

from bot.channels.base import Button
from bot.channels.telegram.keyboard import (
    BUTTON_TOKEN_TTL,
    build_keyboard,
    menu_buttons,
    press_payload,
    purge_expired_tokens,
    resolve_token,
    store_payloads,
    token_from_callback_data,
)
from bot.channels.telegram.limits import MAX_CALLBACK_DATA_BYTES
from bot.storage.db import session_scope
from bot.storage.models import ButtonToken
from bot.storage.types import utc_now

KHMER_PAYLOAD = press_payload("assess:answer:q3:" + "ការប្រើប្រាស់ថាមពលកកើតឡើងវិញ" * 3)


def test_tokens_fit_callback_data_and_resolve(db_engine: Engine) -> None:
    payloads = [KHMER_PAYLOAD, press_payload("lang:vi"), "/help"]
    tokens = store_payloads(db_engine, payloads)
    assert set(tokens) == set(payloads)
    markup = build_keyboard([Button(title="ខ្មែរ " * 10, payload=payload) for payload in payloads], tokens)
    assert markup is not None
    for row in markup.inline_keyboard:
        for key in row:
            data = key.callback_data
            assert isinstance(data, str)
            assert len(data.encode("utf-8")) <= MAX_CALLBACK_DATA_BYTES
            token = token_from_callback_data(data)
            assert token is not None
            assert resolve_token(db_engine, token) in payloads
            assert "ខ្មែរ" not in data


def test_storing_again_adds_no_rows(db_engine: Engine) -> None:
    first = store_payloads(db_engine, [KHMER_PAYLOAD, KHMER_PAYLOAD])
    second = store_payloads(db_engine, [KHMER_PAYLOAD])
    assert first == second
    with session_scope(db_engine) as session:
        assert session.scalar(select(func.count()).select_from(ButtonToken)) == 1


def test_unknown_and_expired_tokens_resolve_to_none(db_engine: Engine) -> None:
    token = store_payloads(db_engine, ["/help"])["/help"]
    assert resolve_token(db_engine, "no-such-token") is None
    with session_scope(db_engine) as session:
        session.execute(update(ButtonToken).values(created_at=utc_now() - BUTTON_TOKEN_TTL - dt.timedelta(hours=1)))
    assert resolve_token(db_engine, token) is None
    assert purge_expired_tokens(db_engine) == 1
    assert resolve_token(db_engine, token) is None


def test_rendering_again_refreshes_old_token(db_engine: Engine) -> None:
    token = store_payloads(db_engine, ["/help"])["/help"]
    with session_scope(db_engine) as session:
        session.execute(update(ButtonToken).values(created_at=utc_now() - BUTTON_TOKEN_TTL + dt.timedelta(days=1)))
    store_payloads(db_engine, ["/help"])
    with session_scope(db_engine) as session:
        created = session.scalar(select(ButtonToken.created_at).where(ButtonToken.token == token))
    assert created is not None
    assert utc_now() - created < dt.timedelta(minutes=1)


def test_callback_data_of_others_is_ignored() -> None:
    assert token_from_callback_data("lang:vi") is None
    assert token_from_callback_data("b:") is None
    assert token_from_callback_data(None) is None


def test_layout_short_titles_two_per_row() -> None:
    buttons = menu_buttons("en")
    tokens = {button.payload: f"t{index}" for index, button in enumerate(buttons)}
    markup = build_keyboard(buttons, tokens)
    assert markup is not None
    assert [len(row) for row in markup.inline_keyboard] == [2, 2]
    long_titles = [Button(title="A rather long answer option title", payload=button.payload) for button in buttons]
    markup = build_keyboard(long_titles, tokens)
    assert markup is not None
    assert [len(row) for row in markup.inline_keyboard] == [1, 1, 1, 1]


def test_url_payload_becomes_link_button() -> None:
    markup = build_keyboard([Button(title="Website", payload="https://example.org/event")], {})
    assert markup is not None
    assert markup.inline_keyboard[0][0].url == "https://example.org/event"
    assert markup.inline_keyboard[0][0].callback_data is None


def test_menu_payloads_match_core_format() -> None:
    assert press_payload("core:ask") == '/press{"cmd":"core:ask"}'
    assert next(button.payload for button in menu_buttons("vi")) == '/press{"cmd":"core:ask"}'
