"""Merging Rasa REST entries back into one reply per utterance."""

from __future__ import annotations

from bot.rasa_client import parse_rest_response


def meta(language: str = "vi", **extra: object) -> dict:
    return {"custom": {"spin": {"language": language, "sources": [{"id": "a", "title": "A", "score": 0.5}], **extra}}}


def test_paragraphs_join_into_one_reply() -> None:
    entries = [{"text": "First paragraph."}, {"text": "Second paragraph."}, {"text": "Source: A"}, meta()]

    replies = parse_rest_response(entries)

    assert len(replies) == 1
    assert replies[0].text == "First paragraph.\n\nSecond paragraph.\n\nSource: A"
    assert replies[0].language == "vi"
    assert [source.id for source in replies[0].sources] == ["a"]


def test_buttons_image_and_document_kept() -> None:
    entries = [
        {"text": "Report", "buttons": [{"title": "Next", "payload": '/press{"cmd":"x"}'}]},
        {"image": "/tmp/chart.png"},
        meta("km", document="/tmp/event.ics"),
    ]

    reply = parse_rest_response(entries)[0]

    assert reply.buttons[0].title == "Next"
    assert reply.image == "/tmp/chart.png"
    assert reply.document == "/tmp/event.ics"
    assert reply.language == "km"


def test_two_utterances_stay_apart() -> None:
    entries = [{"text": "One"}, meta("en"), {"text": "Two"}, meta("en")]

    assert [reply.text for reply in parse_rest_response(entries)] == ["One", "Two"]


def test_entries_without_meta_still_returned() -> None:
    assert [reply.text for reply in parse_rest_response([{"text": "plain"}])] == ["plain"]
