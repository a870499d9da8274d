"""A typed yes to the data-deletion question that NLU reads as another intent.

These run the real router with fixed NLU results (the ``make_owner`` harness of this
folder), so they do not depend on how the trained model reads the message.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bot.i18n import gettext
from tests.assessment.conftest import Owner

OwnerFactory = Callable[..., Owner]


@pytest.mark.parametrize(("language", "typed"), [("en", "yes please delete"), ("vi", "co, xoa di"), ("km", "បាទ លុបចោល")])
def test_typed_yes_asks_for_button(make_owner: OwnerFactory, language: str, typed: str) -> None:
    owner = make_owner(language)
    owner.say("hello", intent="greet", confidence=0.95)
    owner.turn("/deletedata", intent="delete_my_data")

    replies = owner.say(typed, intent="ask_question", confidence=0.55)

    assert replies[0].text == gettext("core.delete.press_button", language)
    assert [command for _title, command in owner.buttons] == ["core:delete:no", "core:delete:yes"]
    done = owner.press("core:delete:yes")
    assert done[0].text == gettext("core.delete.done", language)


def test_question_after_delete_request_is_answered(make_owner: OwnerFactory) -> None:
    owner = make_owner("en")
    owner.say("hello", intent="greet", confidence=0.95)
    owner.turn("/deletedata", intent="delete_my_data")

    replies = owner.say("How do I save water when dyeing cotton?", intent="ask_question", confidence=0.9)

    assert gettext("core.delete.press_button", "en") not in [reply.text for reply in replies]
    stale = owner.press("core:delete:yes")
    assert stale[0].text == gettext("core.unknown_button", "en")
