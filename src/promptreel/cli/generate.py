"""`promptreel generate`: its options are the fields of `GenerationRequest`, generated from it.

A new request field becomes a new option here by itself: the field's description is its help,
its type the option's type. Only the prompt (an argument), `params` (`--param KEY=VALUE`,
repeatable) and the input files (kept as text, so a URL is refused as typed) are shaped by
hand; the options after them (`--output`, ...) are the command's own, not the request's.
"""

from __future__ import annotations

import inspect
import json
import os
import secrets
import sys
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import typer

from ..errors import InvalidRequest, OutputError
from ..request import INPUT_FILES, GenerationRequest, Settings, input_at, make_request
from .show import printable, progress_bars

# The command's own options: where the video goes and what is printed, not what it is.
OWN_OPTIONS: dict[str, tuple[Any, Any]] = {
    # a str, not a Path: Path drops the trailing slash that says "a folder of PNG frames"
    "output": (
        Annotated[
            str | None, typer.Option("--output", "-o", help=".mp4, .webm, .gif, or a folder.")
        ],
        None,
    ),
    "save_control": (
        Annotated[
            str | None,
            typer.Option(
                "--save-control",
                metavar="PATH",
                help="Also write the control images used (with --control) as a video or folder.",
            ),
        ],
        None,
    ),
    "overwrite": (
        Annotated[
            bool, typer.Option("--overwrite", help="Replace an existing --output/--save-control.")
        ],
        False,
    ),
    "quiet": (Annotated[bool, typer.Option("--quiet", help="No progress display.")], False),
    "json_output": (Annotated[bool, typer.Option("--json", help="Print the record.")], False),
    "no_history": (
        Annotated[bool, typer.Option("--no-history", help="Keep it out of the history.")],
        False,
    ),
}


def field_option(name: str) -> tuple[Any, Any]:
    """The annotation and default of the option for request field `name`."""
    field = GenerationRequest.model_fields[name]
    help_text = field.description
    if name == "prompt":
        return (
            Annotated[
                str | None, typer.Argument(metavar="PROMPT", help=help_text, show_default=False)
            ],
            None,
        )
    if name == "params":
        return (
            Annotated[
                list[str] | None,
                typer.Option("--param", metavar="KEY=VALUE", help=f"{help_text} Repeatable."),
            ],
            None,
        )
    if name == "lora":
        return (
            Annotated[
                list[str] | None,
                typer.Option("--lora", metavar="LORA[:SCALE]", help=f"{help_text} Repeatable."),
            ],
            None,
        )
    if name in INPUT_FILES:
        return Annotated[str | None, typer.Option(help=help_text)], None
    kind, optional = _plain_type(field.annotation)
    if kind is bool:  # a switch: `--vae-tiling`, no `--no-vae-tiling`
        flag = "--" + name.replace("_", "-")
        return Annotated[bool, typer.Option(flag, help=help_text)], field.default
    if get_origin(kind) is Literal:  # text on the command line; the request checks the choice
        *most, last = get_args(kind)
        help_text = f"{help_text.rstrip('.')}: {', '.join(most)} or {last}."
        kind = str
    if not optional:
        return Annotated[kind, typer.Option(help=help_text)], field.default
    # unset means "the model's own": None reaches the request as unset
    return Annotated[kind | None, typer.Option(help=help_text, show_default=False)], None


def _plain_type(annotation: Any) -> tuple[Any, bool]:
    """The type under `X | None` and pydantic's `Annotated` metadata, and whether None is in."""
    members = get_args(annotation) if get_origin(annotation) in (Union, UnionType) else ()
    optional = type(None) in members
    if members:
        (annotation,) = [m for m in members if m is not type(None)]
    if get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    return annotation, optional


def generate(**options: Any) -> None:
    """Make a video from a prompt (and an image or a video, for models that take one)."""
    own = {name: options.pop(name) for name in OWN_OPTIONS}
    # only what the user set counts as set: unset values take the card's, silently
    fields = {name: value for name, value in options.items() if value is not None}
    fields["params"] = parse_params(fields.get("params") or [])
    make_video(make_request(**fields), **own)


def with_options(command: Any, options: dict[str, tuple[Any, Any]]) -> None:
    """Give `command(**options)` the signature Typer reads its options from."""
    parameters = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=kind, default=default)
        for name, (kind, default) in options.items()
    ]
    command.__signature__ = inspect.Signature(parameters)
    command.__annotations__ = {p.name: p.annotation for p in parameters}


REQUEST_OPTIONS = {name: field_option(name) for name in GenerationRequest.model_fields}
with_options(generate, {**REQUEST_OPTIONS, **OWN_OPTIONS})


def make_video(
    request: GenerationRequest,
    *,
    output: str | None,
    save_control: str | None = None,
    overwrite: bool,
    quiet: bool,
    json_output: bool,
    no_history: bool,
    suffix: str = ".mp4",
) -> None:
    """Run a request, save it (to `output`, or a fresh name here) and print where it went.

    Everything that can be refused is refused before the model loads and before the history
    gets a row: the request and its input files, then the output path (at the settled frame
    rate: an input video's own, for a model that keeps it).
    """
    from ..generation import Progress, prepare, run
    from ..jobs.files import all_or_none
    from ..jobs.history import history_entry
    from ..video import check_output_path

    def check_output(settings: Settings) -> None:
        outputs = [] if output is None else numbered(output, settings.num_videos_per_prompt)
        for option, path in [*(("--output", o) for o in outputs), ("--save-control", save_control)]:
            if path is None:
                continue
            check_output_path(path, overwrite=overwrite, fps=settings.fps, option=option)
            name = input_at(request, path)
            if name is not None:
                flag = "--" + name.replace("_", "-")
                raise OutputError(f"{option} {path!r} is the {flag} it reads; choose another")
        if save_control is not None:
            if request.control is None:
                raise InvalidRequest(
                    "--save-control writes the control images of a --control request; add "
                    "--control KIND, or remove --save-control.",
                    argument="control",
                )
            if os.path.abspath(save_control) in map(os.path.abspath, outputs):
                raise OutputError("--output and --save-control name the same file; give two")
        if output is None and not os.access(".", os.W_OK | os.X_OK):
            raise OutputError(
                f"the current folder {os.getcwd()!r} is not writable, and without --output the "
                "video goes there; give --output PATH, or cd to a folder you can write to"
            )

    prepared = prepare(request, check_settings=check_output)
    if not quiet:
        for note in prepared.notes:
            print(f"note: {note}", file=sys.stderr)

    # a live bar only on a terminal: in a pipe or a log it would be noise around the result
    with (
        ProgressDisplay(enabled=not quiet and sys.stderr.isatty()) as show,
        history_entry(prepared.settled, source="cli", enabled=not no_history) as entry,
    ):
        videos = run(prepared, progress=show)
        show(Progress("write"))
        paths = (
            numbered(output, len(videos))
            if output is not None
            else [_fresh_name(video.record, suffix) for video in videos]
        )
        with all_or_none() as saved:
            for video, path in zip(videos, paths, strict=True):
                saved.append(video.save(path, overwrite=overwrite))
            if save_control is not None:
                control = videos[0].control
                assert control is not None
                saved.append(control.save(save_control, overwrite=overwrite))
        for path in saved:
            entry.add_output(path)
        entry.succeeded(videos[0].record)
    if json_output:
        records = [video.record for video in videos]
        print(json.dumps(records[0] if len(records) == 1 else records, indent=2))
    if not quiet:
        for path in saved:  # beside --json on stderr: stdout stays pure JSON
            print(printable(str(path)), file=sys.stderr if json_output else sys.stdout)


def numbered(output: str, count: int) -> list[str]:
    """The files of `count` videos asked to go to `output`: itself, then the same name with
    -2, -3, ... before the suffix (`clip.mp4`, `clip-2.mp4`; a folder `frames/`, `frames-2/`)."""
    base = output.rstrip("/" + os.sep)
    folder = base != output
    stem, suffix = (base, "/") if folder else os.path.splitext(base)
    return [output] + [f"{stem}-{k}{suffix}" for k in range(2, count + 1)]


def parse_params(items: list[str]) -> dict[str, str]:
    """`--param KEY=VALUE` items as a dict; the request checks the values against the card."""
    params: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InvalidRequest(
                f"--param expects KEY=VALUE but got {item!r}.", argument="params", value=item
            )
        if key.strip() in params:
            raise InvalidRequest(
                f"--param {key.strip()} is given twice ({params[key.strip()]!r} and {value!r}); "
                "give it once.",
                argument="params",
                value=key.strip(),
            )
        params[key.strip()] = value
    return params


def _fresh_name(record: dict[str, Any], suffix: str) -> Path:
    """A new file in the current folder named from the prompt and seed; never an existing one."""
    from ..video import make_filename

    while True:
        name = make_filename(record["prompt"] or "", record["seed"], secrets.token_hex(3), suffix)
        if not Path(name).exists():
            return Path(name)


class ProgressDisplay:
    """One Rich progress bar for the whole job, on stderr so stdout stays clean for --json."""

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled

    def __enter__(self):
        self.bar = progress_bars(enabled=self.enabled, label_width=8)
        self.task = self.bar.add_task("load", total=None)
        return self.update

    def update(self, progress: Any) -> None:
        # started at the first report, after validation: a refusal stays one clean line
        if not self.bar.live.is_started:
            self.bar.start()
        total = progress.total or None
        self.bar.update(self.task, description=progress.stage, completed=progress.step, total=total)

    def __exit__(self, *exc: object) -> None:
        if self.bar.live.is_started:  # stopping an unstarted display still prints a newline
            self.bar.stop()
