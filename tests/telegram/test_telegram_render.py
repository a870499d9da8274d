"""Planning Telegram messages for a reply: captions, documents, buttons and sources."""

from __future__ import annotations

from bot.channels.base import Button, OutgoingMessage, SourceRef
from bot.channels.telegram.limits import MAX_CAPTION_UTF16_UNITS, MAX_INLINE_BUTTONS, MAX_MESSAGE_UTF16_UNITS
from bot.channels.telegram.render import plan_reply
from bot.channels.telegram.text import utf16_length
from bot.i18n import gettext


def _buttons(count: int) -> list[Button]:
    return [Button(title=f"Option {index}", payload=f'/press{{"cmd":"x:{index}"}}') for index in range(count)]


def test_text_with_buttons_is_one_message() -> None:
    parts = plan_reply(OutgoingMessage(text="Chọn:", buttons=_buttons(4)), "vi")
    assert [part.kind for part in parts] == ["text"]
    assert len(parts[0].buttons) == 4


def test_long_text_puts_buttons_on_last_chunk() -> None:
    parts = plan_reply(OutgoingMessage(text="Một câu. " * 1200, buttons=_buttons(2)), "vi")
    assert len(parts) == 3
    assert [len(part.buttons) for part in parts] == [0, 0, 2]
    assert all(utf16_length(part.text) <= MAX_MESSAGE_UTF16_UNITS for part in parts)


def test_photo_caption_overflow_goes_to_text() -> None:
    text = "Kết quả đánh giá của bạn. " * 80  # about 2,100 characters
    parts = plan_reply(OutgoingMessage(text=text, image="/tmp/chart.png", buttons=_buttons(1)), "vi")
    assert [part.kind for part in parts] == ["photo", "text"]
    assert utf16_length(parts[0].text) <= MAX_CAPTION_UTF16_UNITS
    assert parts[0].media == "/tmp/chart.png"
    assert parts[1].buttons and not parts[0].buttons
    assert (parts[0].text + " " + parts[1].text).split() == text.split()


def test_short_caption_stays_on_photo() -> None:
    parts = plan_reply(OutgoingMessage(text="Chart", image="https://example.org/c.png", buttons=_buttons(1)), "en")
    assert [(part.kind, part.text, len(part.buttons)) for part in parts] == [("photo", "Chart", 1)]


def test_document_follows_text() -> None:
    parts = plan_reply(OutgoingMessage(text="Add it to your calendar", document="var/ics/event.ics", buttons=_buttons(1)), "en")
    assert [part.kind for part in parts] == ["text", "document"]
    assert parts[1].media == "var/ics/event.ics"
    assert len(parts[1].buttons) == 1


def test_buttons_beyond_100_go_to_more_messages() -> None:
    parts = plan_reply(OutgoingMessage(text="Pick one", buttons=_buttons(230)), "km")
    assert [len(part.buttons) for part in parts] == [MAX_INLINE_BUTTONS, MAX_INLINE_BUTTONS, 30]
    assert parts[1].text == gettext("telegram.more_options", "km")
    flat = [button for part in parts for button in part.buttons]
    assert flat == _buttons(230)


def test_buttons_without_text_get_a_prompt() -> None:
    parts = plan_reply(OutgoingMessage(text="", buttons=_buttons(2)), "lo")
    assert parts[0].text == gettext("telegram.choose", "lo")


def test_sources_line_lists_unnamed_titles() -> None:
    message = OutgoingMessage(
        text="Dùng bao bì giấy. Xem thêm: Bao bì xanh",
        sources=[
            SourceRef(id="a", title="Bao bì xanh"),
            SourceRef(id="b", title="Nhãn sinh thái"),
            SourceRef(id="c", title="Nhãn sinh thái"),
        ],
    )
    text = plan_reply(message, "vi")[0].text
    assert text.endswith(gettext("telegram.sources", "vi", titles="Nhãn sinh thái"))


def test_empty_reply_sends_nothing() -> None:
    assert plan_reply(OutgoingMessage(text="  "), "en") == []
