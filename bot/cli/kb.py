"""``spin ask`` and ``spin kb``: the knowledge base from the command line.

Heavy modules (torch, FAISS) are imported inside the commands so that ``spin chat``
and ``spin --help`` start quickly.
"""

from __future__ import annotations

import json

import typer

app = typer.Typer(help="Knowledge base: build, evaluate, add and remove articles.", no_args_is_help=True)


def ask(
    text: str = typer.Argument(..., help="The question."),
    lang: str = typer.Option("", "--lang", help="Reply language (vi, en, km, lo); default: detected from the text."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object: answer, language, sources."),
) -> None:
    """Answer one question from the knowledge base, without Rasa."""
    from bot.i18n import normalize_language
    from knowledge_base.answer import answer
    from nlu.text import detect_language

    language = normalize_language(lang or detect_language(text))
    result = answer(text, language)
    if as_json:
        sources = [] if result.declined else [{"id": s["id"], "title": s["title"], "score": s["score"]} for s in result.sources]
        typer.echo(json.dumps({"answer": result.text, "language": language, "sources": sources}, ensure_ascii=False))
        return
    typer.echo(result.text)
    for source in result.sources:
        typer.echo(f"  - {source['title']} ({source['id']}, {source['score']})")


def _register_commands() -> None:
    """Add the knowledge-base package's own Typer commands under ``spin kb``."""
    from knowledge_base.evaluate import main as evaluate_main
    from knowledge_base.index import main as build_main

    app.command("build", help="Build or update the index; only changed articles are embedded.")(build_main)
    app.command("eval", help="Measure retrieval (top-1, top-3, MRR per language) against the baselines.")(evaluate_main)


_register_commands()
