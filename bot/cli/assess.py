"""``spin assess`` commands."""

import typer

app = typer.Typer(help="assess", no_args_is_help=True)
