"""Pending yes/no questions (data deletion, privacy notice) through the real stack.

A question waits for the next turn only; deleting data needs the confirm button, or a
clear typed yes right after the /deletedata command.
"""

from __future__ import annotations

import pytest

from bot.i18n import gettext
from tests.actions.chat_helpers import commands, press, stored_user
from tests.conftest import ChatDriver

pytestmark = pytest.mark.stack


def test_privacy_agreement_after_old_delete_request_keeps_data(chat: ChatDriver) -> None:
    chat.say("Xin chào")
    confirm = chat.say("/deletedata")
    assert confirm[0].text == gettext("core.delete.confirm", "vi")
    chat.say("Làm sao để giảm bao bì nhựa cho bánh kẹo?")
    notice = chat.say("/privacy")
    assert notice[-1].text == gettext("core.privacy_notice", "vi")

    replies = chat.say("đồng ý")

    assert replies[0].text == gettext("core.consent.thanks", "vi")
    user = stored_user(chat)
    assert user is not None, "agreeing to the privacy notice deleted the user"
    assert user.consent_at is not None


def test_typed_no_to_privacy_notice_declines(chat: ChatDriver) -> None:
    chat.say("Xin chào")

    replies = chat.say("Không, cảm ơn")

    assert replies[0].text == gettext("core.consent.declined", "vi")
    user = stored_user(chat)
    assert user is not None
    assert user.consent_at is None


def test_yes_after_greeting_does_not_delete(chat: ChatDriver) -> None:
    chat.say("/deletedata")
    chat.say("Hello there")

    replies = chat.say("yes")

    assert replies[0].text != gettext("core.delete.done", "en")
    assert stored_user(chat) is not None


def test_clear_yes_right_after_command_deletes(chat: ChatDriver) -> None:
    chat.say("Hello there")
    chat.say("/deletedata")

    replies = chat.say("yes")

    assert replies[0].text == gettext("core.delete.done", "en")
    assert stored_user(chat) is None


def test_free_text_delete_request_needs_button(chat: ChatDriver) -> None:
    chat.say("Hello there")
    confirm = chat.say("please remove all my information from your system")
    assert confirm[0].text == gettext("core.delete.confirm", "en")

    typed_yes = chat.say("yes")
    assert typed_yes[0].text == gettext("core.delete.press_button", "en")
    assert stored_user(chat) is not None

    done = press(chat, gettext("core.delete.yes", "en"))
    assert done[0].text == gettext("core.delete.done", "en")
    assert stored_user(chat) is None


def test_delete_confirm_keeps_first(chat: ChatDriver) -> None:
    chat.say("Hello there")
    confirm = chat.say("/deletedata")

    assert commands(confirm[0]) == ["core:delete:no", "core:delete:yes"]


def test_old_delete_button_expires(chat: ChatDriver) -> None:
    chat.say("/deletedata")
    chat.say("Hello there")

    replies = chat.say('/press{"cmd":"core:delete:yes"}')

    assert replies[0].text == gettext("core.unknown_button", "en")
    assert stored_user(chat) is not None


def test_first_question_also_gets_privacy_notice(chat: ChatDriver) -> None:
    first = chat.say("Làm sao để giảm bao bì nhựa cho bánh kẹo?")

    assert first[0].text == gettext("core.privacy_notice", "vi")
    assert len(first) >= 2, "the question got no answer after the notice"
    later = chat.say("Làm sao tiết kiệm điện trong xưởng may?")
    assert gettext("core.privacy_notice", "vi") not in [reply.text for reply in later]


def test_first_turn_notice_keeps_delete_question(chat: ChatDriver) -> None:
    first = chat.say("/deletedata")
    assert gettext("core.privacy_notice", "en") in [reply.text for reply in first]

    replies = chat.say("no")

    assert replies[0].text == gettext("core.delete.kept", "en")
    assert stored_user(chat) is not None
