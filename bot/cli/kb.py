"""``spin ask`` and ``spin kb``: the knowledge base from the command line.

Heavy modules (torch, FAISS) are imported inside the commands so that ``spin chat``
and ``spin --help`` start quickly.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path

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
    from knowledge_base.calibrate import main as calibrate_main
    from knowledge_base.evaluate import main as evaluate_main
    from knowledge_base.index import main as build_main

    app.command("build", help="Build or update the index; only changed articles are embedded.")(build_main)
    app.command("eval", help="Measure retrieval (top-1, top-3, MRR per language) against the baselines.")(evaluate_main)
    app.command("calibrate", help="Fit the decline model on the dev questions; --write saves it.")(calibrate_main)


_register_commands()


def _parse_since(value: str | None) -> datetime.datetime | None:
    if not value:
        return None
    try:
        day = datetime.date.fromisoformat(value)
    except ValueError as error:
        raise typer.BadParameter(f"--since must be a date YYYY-MM-DD, got {value!r}") from error
    return datetime.datetime.combine(day, datetime.time(), tzinfo=datetime.UTC)


@app.command("add")
def add(
    paths: list[Path] = typer.Argument(..., help="Markdown, PDF, DOCX or HTML files, or folders of them."),
    lang: str = typer.Option("", "--lang", help="Language of the documents (vi, en, km, lo); default: front matter or detected."),
    article_id: str = typer.Option("", "--id", help="Article id for a single file; default: front matter id or the file name."),
    title: str = typer.Option("", "--title", help="Title for a single file; default: the document's own title."),
) -> None:
    """Add or replace documents in the knowledge base; only their chunks are embedded."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from bot.settings import SUPPORTED_LANGUAGES, get_settings
    from knowledge_base.index import default_import_dir, index_write_lock, open_index
    from knowledge_base.ingest import AddResult, IngestError, add_paths, supported_files

    if lang and lang not in SUPPORTED_LANGUAGES:
        raise typer.BadParameter(f"--lang must be one of {', '.join(SUPPORTED_LANGUAGES)}, got {lang!r}")
    missing = [str(path) for path in paths if not path.exists()]
    if missing:
        raise typer.BadParameter(f"no such file or folder: {', '.join(missing)}")
    settings = get_settings()
    index_dir = settings.resolved_index_dir
    files = [file for path in paths for file in (supported_files(path)[0] if path.is_dir() else [path])]
    for path in paths:
        if path.is_dir():
            for other in supported_files(path)[1]:
                typer.echo(f"Skipped {other}: unsupported file type.", err=True)
    if not files:
        typer.echo("No supported files (.md, .pdf, .docx, .html) found.", err=True)
        raise typer.Exit(1)

    with (
        index_write_lock(index_dir),
        Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), transient=False
        ) as progress,
    ):
        task = progress.add_task("Loading the model and index", total=len(files))
        index = open_index(index_dir)
        progress.update(task, description="Adding documents")

        def report(path: Path, result: AddResult | IngestError) -> None:
            if isinstance(result, IngestError):
                progress.console.print(f"[red]Error:[/red] {result}")
            else:
                verb = "Replaced" if result.replaced else "Added"
                progress.console.print(
                    f"{verb} {result.document_id} from {path.name}: {result.change.added} chunks embedded, "
                    f"{result.change.kept} unchanged, {result.change.removed} removed."
                )
            progress.advance(task)

        try:
            results, errors = add_paths(
                files, index, default_import_dir(), settings.kb_content_dir,
                lang or None, article_id or None, title or None, report,
            )  # fmt: skip
        except IngestError as error:
            typer.echo(f"Error: {error}", err=True)
            raise typer.Exit(1) from error
        if results:
            progress.update(task, description="Saving the index")
            index.save(index_dir)
    typer.echo(f"{len(results)} document(s) indexed, {len(errors)} failed.")
    if errors:
        raise typer.Exit(1)


@app.command("remove")
def remove(
    article_id: str = typer.Argument(..., help="Id of a document added with `spin kb add`."),
    lang: str = typer.Option("", "--lang", help="Remove only this language version; default: every language."),
) -> None:
    """Remove an added document and its chunks from the knowledge base."""
    from bot.settings import SUPPORTED_LANGUAGES, get_settings
    from knowledge_base.index import default_import_dir, index_write_lock, open_index
    from knowledge_base.ingest import IngestError
    from knowledge_base.ingest import remove as remove_document

    if lang and lang not in SUPPORTED_LANGUAGES:
        raise typer.BadParameter(f"--lang must be one of {', '.join(SUPPORTED_LANGUAGES)}, got {lang!r}")
    index_dir = get_settings().resolved_index_dir
    with index_write_lock(index_dir):
        index = open_index(index_dir)
        try:
            removed = remove_document(article_id, index, default_import_dir(), lang or None)
        except IngestError as error:
            typer.echo(f"Error: {error}", err=True)
            raise typer.Exit(1) from error
        index.save(index_dir)
    typer.echo(f"Removed {', '.join(removed)}.")


@app.command("gaps")
def gaps(
    since: str = typer.Option("", "--since", help="Only questions asked on or after this date (YYYY-MM-DD, UTC)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    below: float | None = typer.Option(
        None, "--below", help="Answered questions with a confidence below this count as low-confidence (default 0.85)."
    ),
) -> None:
    """List declined and low-confidence questions by language and sector, to show what to write next."""
    from rich.console import Console
    from rich.table import Table

    from bot.storage.db import session_scope
    from knowledge_base.gaps import LOW_CONFIDENCE_BELOW, gap_report

    start = _parse_since(since)
    with session_scope() as session:
        report = gap_report(session, start, LOW_CONFIDENCE_BELOW if below is None else below)
    if as_json:
        typer.echo(json.dumps([group.as_dict() for group in report], ensure_ascii=False, indent=2))
        return
    if not report:
        typer.echo("No declined or low-confidence questions" + (f" since {since}." if since else "."))
        return
    console = Console()
    for group in report:
        heading = f"{group.language} / sector {group.sector}: {group.declined} declined, {group.low_confidence} low-confidence"
        table = Table(title=heading)
        table.add_column("times", justify="right")
        table.add_column("declined", justify="right")
        table.add_column("best score", justify="right")
        table.add_column("question")
        for question in group.questions:
            score = "-" if question.best_score is None else f"{question.best_score:.2f}"
            table.add_row(str(question.count), str(question.declined), score, question.text)
        console.print(table)
