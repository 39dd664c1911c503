"""The `promptreel` command: a thin layer that builds a request and renders what comes back.

Each command lives in the module named for it (`generate`, `history`, `models`, `training`,
`serve`); this one assembles them and turns errors into one line.

Errors the user can act on are one line on stderr (`ErrorType: message`) and exit code 1; set
PROMPTREEL_DEBUG=1 for the traceback.
"""

from __future__ import annotations

from . import threads  # isort: skip (first: it counts the CPU's ticks before the imports below)
import logging
import os
import signal
import sys
import warnings

import typer

from ..errors import PromptreelError
from . import batch, finetune, generate, history, models, plan, serve, training
from .show import printable

app = typer.Typer(
    help="Local text-to-video generation with open diffusion models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
app.command()(generate.generate)
app.command()(batch.batch)
app.command()(plan.plan)
app.add_typer(models.models_app, name="models")
app.command()(models.download)
app.command()(models.inspect)
app.command()(models.loras)
app.add_typer(history.history_app, name="history")
app.add_typer(training.data_app, name="data")
app.add_typer(training.eval_app, name="eval")
app.command()(training.train)
app.command()(finetune.finetune)
app.command()(serve.serve)

DEBUG = os.environ.get("PROMPTREEL_DEBUG") == "1"


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script and `python -m promptreel`."""
    if not DEBUG:
        _quiet_libraries()
    threads.choose_wait_policy()  # read when torch loads, which no command has done yet
    try:
        os.getcwd()
    except OSError:  # torch would abort the process with a fatal error of oneMKL's
        _fail(
            "OutputError",
            "the current folder no longer exists (it was deleted or moved); cd to a folder "
            "that exists and run again",
            1,
        )
    # `kill` and a closing terminal get the same clean-up as Ctrl-C: no partial file remains
    interrupted: list[int] = []

    def interrupt(signum: int, frame: object) -> None:
        interrupted.append(signum)
        raise KeyboardInterrupt

    signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {sig: signal.signal(sig, interrupt) for sig in signals}
    try:
        code = app(args=argv, prog_name="promptreel", standalone_mode=False)
    except (KeyboardInterrupt, typer.Abort):
        _fail("Interrupted", "stopped; no partial file was left behind", 130)
    except Exception as exc:
        # Ctrl-C inside an import (numpy's, say) can surface later as an unrelated ImportError
        if interrupted:
            _fail("Interrupted", "stopped; no partial file was left behind", 130)
        _report(exc)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if code == 130:  # Typer turns Ctrl-C into a silent exit code 130
        _fail("Interrupted", "stopped; no partial file was left behind", 130)
    sys.exit(code if isinstance(code, int) else 0)


def console() -> None:
    """The console script and `python -m promptreel`: `main`, then leave at once.

    With torch, diffusers and transformers loaded, tearing the interpreter down (thousands of
    modules and the objects they hold) takes about a second after the work is done and every
    file is written and closed: an eighth of a shapes video's whole run. So a command that
    loaded them flushes what it printed and exits without it. (Not `main` itself: the tests
    call that in their own process.)
    """
    try:
        main()
        code: object = 0
    except SystemExit as exc:
        code = exc.code
    if "torch" in sys.modules and (code is None or isinstance(code, int)):
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code or 0)
    sys.exit(code)


def _report(exc: Exception) -> None:
    """Exit with one line for an error the user can act on; re-raise anything else."""
    if isinstance(exc, PromptreelError) and not DEBUG:
        _fail(type(exc).__name__, str(exc), 1)
    if isinstance(exc, typer.TyperException):  # Typer's own (vendored Click) usage errors
        ctx = getattr(exc, "ctx", None)
        if type(exc).__name__ == "NoArgsIsHelpError" and ctx is not None:
            print(ctx.get_help(), file=sys.stderr)
            sys.exit(2)
        _fail("UsageError", exc.format_message(), getattr(exc, "exit_code", 2))
    raise exc


def _fail(kind: str, message: str, code: int) -> None:
    # one line, and whatever of a user's input the message quotes cannot act on the terminal
    print(f"{kind}: {printable(' '.join(message.split()))}", file=sys.stderr)
    sys.exit(code)


def _quiet_libraries() -> None:
    """Library chatter (deprecations, torchvision hints) would bury our one-line messages.
    Their errors too: diffusers logs a failed load at ERROR and then raises, and our own one
    line says what failed and what to do (PROMPTREEL_DEBUG=1 shows everything)."""
    warnings.filterwarnings("ignore")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "critical")
    os.environ.setdefault("DIFFUSERS_VERBOSITY", "critical")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    for library in ("transformers", "diffusers", "huggingface_hub"):
        logging.getLogger(library).setLevel(logging.CRITICAL)
