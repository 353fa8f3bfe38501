"""Entry point of the ``vlm3r`` command."""

from __future__ import annotations

import logging

import typer

from vlm3r.cli import app as app_command
from vlm3r.cli import ask, cut3r, demo, eval, features, qa, scenes, serve, train
from vlm3r.cli.options import PlainHelpGroup

app = typer.Typer(
    help="VLM-3R: spatial question answering from ordinary video, and the 3D data pipeline behind it.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    cls=PlainHelpGroup,  # flags without <bool>, arguments by name in usage lines, in every command's help
)
app.add_typer(scenes.app, name="scenes")
app.add_typer(qa.app, name="qa")
app.add_typer(eval.app, name="eval")
app.add_typer(cut3r.app, name="cut3r")
app.command("demo")(demo.demo)
app.add_typer(features.app, name="features")
app.command("ask")(ask.ask)
app.command("train")(train.train)
app.command("serve")(serve.serve)
app.command("app")(app_command.app)


@app.callback()
def main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Log progress details.")) -> None:
    """VLM-3R command line. Run a command with --help for its options and an example."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
