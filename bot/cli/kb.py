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


@app.command("build")
def build() -> None:
    """Build or update the index from knowledge_base/content (only changed articles are embedded)."""
    from knowledge_base.index import build_from_settings

    summary = build_from_settings()
    typer.echo(summary)
