"""The `promptreel` command: a thin layer that builds a request and renders what comes back.

Errors the user can act on are one line on stderr (`ErrorType: message`) and exit code 1; set
PROMPTREEL_DEBUG=1 for the traceback.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import signal
import sys
import warnings
from pathlib import Path
from typing import Annotated, Any

import typer

from .errors import InvalidRequest, PromptreelError

app = typer.Typer(
    help="Local text-to-video generation with open diffusion models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
models_app = typer.Typer(help="List the models promptreel knows, or show one.")
app.add_typer(models_app, name="models")
data_app = typer.Typer(help="Make training data.", no_args_is_help=True)
app.add_typer(data_app, name="data")
eval_app = typer.Typer(help="Measure what a model makes.", no_args_is_help=True)
app.add_typer(eval_app, name="eval")

DEBUG = os.environ.get("PROMPTREEL_DEBUG") == "1"


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script and `python -m promptreel`."""
    if not DEBUG:
        _quiet_libraries()
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
    print(f"{kind}: {' '.join(message.split())}", file=sys.stderr)
    sys.exit(code)


def _quiet_libraries() -> None:
    """Library chatter (deprecations, torchvision hints) would bury our one-line messages."""
    warnings.filterwarnings("ignore")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    logging.getLogger("transformers").setLevel(logging.ERROR)
    logging.getLogger("diffusers").setLevel(logging.ERROR)


@app.command()
def generate(
    prompt: Annotated[str | None, typer.Argument(help="What the video shows.")] = None,
    model: Annotated[str | None, typer.Option(help="Alias, hub repo id or folder.")] = None,
    negative_prompt: Annotated[str | None, typer.Option(help="What to avoid.")] = None,
    num_frames: Annotated[int | None, typer.Option(help="Frames to generate.")] = None,
    fps: Annotated[float | None, typer.Option(help="Frames per second of the file.")] = None,
    height: Annotated[int | None, typer.Option(help="Height in pixels.")] = None,
    width: Annotated[int | None, typer.Option(help="Width in pixels.")] = None,
    num_inference_steps: Annotated[int | None, typer.Option(help="Denoising steps.")] = None,
    guidance_scale: Annotated[float | None, typer.Option(help="Classifier-free guidance.")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (default: a random one).")] = None,
    scheduler: Annotated[
        str | None, typer.Option(help="ddim, dpm++, euler, euler-a or unipc.")
    ] = None,
    image: Annotated[Path | None, typer.Option(help="Image to animate.")] = None,
    video: Annotated[Path | None, typer.Option(help="Video to transform.")] = None,
    param: Annotated[
        list[str] | None, typer.Option(help="Model-specific KEY=VALUE (repeatable).")
    ] = None,
    # a str, not a Path: Path drops the trailing slash that says "a folder of PNG frames"
    output: Annotated[
        str | None, typer.Option("--output", "-o", help=".mp4, .webm, .gif, or a folder.")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --output.")] = False,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or mps.")] = "auto",
    dtype: Annotated[str, typer.Option(help="auto, float32, float16 or bfloat16.")] = "auto",
    offload: Annotated[str, typer.Option(help="none, model, sequential or group.")] = "none",
    vae_slicing: Annotated[bool, typer.Option(help="Decode one video at a time.")] = False,
    vae_tiling: Annotated[bool, typer.Option(help="Decode in tiles (less memory).")] = False,
    forward_chunking: Annotated[bool, typer.Option(help="Chunk feed-forward layers.")] = False,
    compile: Annotated[bool, typer.Option(help="torch.compile the denoiser.")] = False,
    quiet: Annotated[bool, typer.Option(help="No progress display.")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print the record.")] = False,
    no_history: Annotated[bool, typer.Option(help="Keep it out of the history.")] = False,
) -> None:
    """Make a video from a prompt (and an image or a video, for models that take one)."""
    from .request import DEFAULT_MODEL, make_request

    fields: dict[str, Any] = {
        "prompt": prompt,
        "model": DEFAULT_MODEL if model is None else model,
        "device": device,
        "dtype": dtype,
        "offload": offload,
        "vae_slicing": vae_slicing,
        "vae_tiling": vae_tiling,
        "forward_chunking": forward_chunking,
        "compile": compile,
        "params": _parse_params(param or []),
    }
    optional = {
        "negative_prompt": negative_prompt,
        "num_frames": num_frames,
        "fps": fps,
        "height": height,
        "width": width,
        "num_inference_steps": num_inference_steps,
        "guidance_scale": guidance_scale,
        "seed": seed,
        "scheduler": scheduler,
        "image": image,
        "video": video,
    }
    # only what the user set counts as set: unset values take the card's, silently
    request = make_request(**fields, **{k: v for k, v in optional.items() if v is not None})
    make_video(
        request,
        output=output,
        overwrite=overwrite,
        quiet=quiet,
        json_output=json_output,
        history=not no_history,
    )


def make_video(
    request: Any,
    *,
    output: str | None,
    overwrite: bool,
    quiet: bool,
    json_output: bool,
    history: bool,
    suffix: str = ".mp4",
) -> None:
    """Run a request, save it (to `output`, or a fresh name here) and print where it went."""
    from .video import check_output_path

    if output is not None:
        from .models.resolve import find_card

        fps = request.fps if request.fps is not None else find_card(request.model).fps
        check_output_path(output, overwrite=overwrite, fps=fps)

    from .generation import Progress, run
    from .jobs.history import history_entry

    # a live bar only on a terminal: in a pipe or a log it would be noise around the result
    with (
        ProgressDisplay(enabled=not quiet and sys.stderr.isatty()) as show,
        history_entry(request, source="cli", enabled=history) as entry,
    ):
        result = run(request, progress=show)
        show(Progress("write"))
        path = output if output is not None else _fresh_name(result.record, suffix)
        saved = result.save(path, overwrite=overwrite)
        entry.add_output(saved)
        entry.succeeded(result.record)
    if json_output:
        print(json.dumps(result.record, indent=2))
        if not quiet:
            print(saved, file=sys.stderr)  # stdout stays pure JSON
    elif not quiet:
        print(saved)


def _parse_params(items: list[str]) -> dict[str, str]:
    params: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InvalidRequest(f"--param expects KEY=VALUE but got {item!r}.")
        params[key.strip()] = value
    return params


def _fresh_name(record: dict[str, Any], suffix: str) -> Path:
    """A new file in the current folder named from the prompt and seed; never an existing one."""
    from .video import make_filename

    while True:
        name = make_filename(record["prompt"] or "", record["seed"], secrets.token_hex(3), suffix)
        if not Path(name).exists():
            return Path(name)


class ProgressDisplay:
    """One Rich progress bar for the whole job, on stderr so stdout stays clean for --json."""

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled

    def __enter__(self):
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.bar = Progress(
            TextColumn("{task.description:<8}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            disable=not self.enabled,
            transient=True,
        )
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


@models_app.callback(invoke_without_command=True)
def models(
    ctx: typer.Context,
    json_output: Annotated[bool, typer.Option("--json", help="Machine-readable.")] = False,
) -> None:
    """List the built-in models and whether each is downloaded."""
    if ctx.invoked_subcommand is not None:
        return
    from .models.cards import CARDS
    from .models.info import card_info

    infos = [card_info(card) for card in CARDS]
    if json_output:
        print(json.dumps(infos, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("name", "from", "native size", "params", "downloaded", box=None)
    for info in infos:
        native = f"{info['width']}x{info['height']} {info['num_frames']}f {info['fps']}fps"
        takes = "+".join(
            kind
            for kind, used in (
                ("text", info["takes_text"]),
                ("image", "image-to-video" in info["tasks"]),
                ("video", "video-to-video" in info["tasks"]),
            )
            if used
        )
        size = f"{info['parameters_total'] / 1e9:.1f}B"
        table.add_row(info["name"], takes, native, size, "yes" if info["downloaded"] else "no")
    Console().print(table)


@models_app.command("show")
def models_show(
    name: Annotated[str, typer.Argument(help="Alias, hub repo id or folder.")],
    json_output: Annotated[bool, typer.Option("--json", help="Machine-readable.")] = False,
) -> None:
    """Show one model card."""
    from .models.info import card_info
    from .models.resolve import find_card

    info = card_info(find_card(name))
    if json_output:
        print(json.dumps(info, indent=2))
        return
    _print_fields(info, width=20)


@app.command()
def download(
    model: Annotated[str, typer.Argument(help="Alias or hub repo id.")],
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Do not ask before downloading.")
    ] = False,
) -> None:
    """Fetch what a model needs (safetensors only) into the Hugging Face cache."""
    from .models.download import download_model

    def confirm(summary: str) -> bool:
        print(summary, file=sys.stderr)
        if yes or not sys.stdin.isatty():
            return True  # scripts and CI: the size is printed; asking would hang
        return typer.confirm("Download?", default=True, err=True)

    fetched = download_model(model, confirm=confirm)
    if fetched:
        print(f"downloaded {', '.join(fetched)}", file=sys.stderr)


@app.command()
def inspect(
    video: Annotated[Path, typer.Argument(help="A video made by promptreel.")],
    json_output: Annotated[bool, typer.Option("--json", help="Machine-readable.")] = False,
) -> None:
    """Print how a video was made."""
    from .video import read_record

    record = read_record(video)
    if json_output:
        print(json.dumps(record, indent=2))
        return
    _print_fields(record, width=20)


def _print_fields(fields: dict[str, Any], *, width: int) -> None:
    """One line a field. Values go through JSON, so that a record from an untrusted file cannot
    put escape codes or line breaks on the terminal."""
    for key, value in fields.items():
        if isinstance(value, str) and value.isprintable():
            shown = value
        elif isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
            # nested tables (a card's params): one indented line each
            shown = "".join(f"\n  {k:<{width - 2}} {json.dumps(v)}" for k, v in value.items())
        else:
            shown = value if isinstance(value, int | float | bool) else json.dumps(value)
        print(f"{json.dumps(str(key))[1:-1]:<{width}} {shown}")


@data_app.command("shapes")
def data_shapes(
    out: Annotated[Path, typer.Argument(help="New folder: videos/*.mp4 and metadata.jsonl.")],
    count: Annotated[int, typer.Option(help="Clips to render.")] = 1000,
    seed: Annotated[int, typer.Option(help="Seed: the same seed gives the same data.")] = 0,
) -> None:
    """Render the shapes world: one shape moving on black, with captions."""
    from .train.shapes import write_dataset

    write_dataset(out, count=count, seed=seed)
    print(out)


@eval_app.command("fidelity")
def eval_fidelity(
    model: Annotated[str | None, typer.Option(help="Alias, hub repo id or folder.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the prompt set.")] = 0,
    per_combination: Annotated[int, typer.Option(help="Videos per colour/shape/direction.")] = 1,
    num_inference_steps: Annotated[int | None, typer.Option(help="Denoising steps.")] = None,
    guidance_scale: Annotated[float | None, typer.Option(help="Classifier-free guidance.")] = None,
    out: Annotated[Path, typer.Option(help="Folder for the contact sheet and results.")] = Path(
        "fidelity"
    ),
) -> None:
    """Generate all 84 shapes prompts and score colour, shape and direction with a detector."""
    from rich.progress import Progress

    from .eval.fidelity import evaluate
    from .request import DEFAULT_MODEL

    out.mkdir(parents=True, exist_ok=True)
    with Progress(transient=True, disable=not sys.stderr.isatty()) as bar:
        task = bar.add_task("videos", total=None)
        result = evaluate(
            DEFAULT_MODEL if model is None else model,
            seed=seed,
            per_combination=per_combination,
            num_inference_steps=num_inference_steps,
            guidance_scale=guidance_scale,
            out_dir=out,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    for name, value in result["accuracy"].items():
        print(f"{name:<10} {value:6.1%}")
    print(f"contact sheet: {result['contact_sheet']}")


@app.command()
def train(
    config: Annotated[Path, typer.Argument(help="A TOML training config (configs/*.toml).")],
    fresh: Annotated[bool, typer.Option(help="Start over instead of resuming.")] = False,
) -> None:
    """Train the small text-to-video model from scratch on the CPU; resumes where it stopped."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from .train.config import load_config
    from .train.trainer import train as run_training

    settings = load_config(config)
    columns = (TextColumn("loss {task.fields[loss]:.4f}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeRemainingColumn(), disable=not sys.stderr.isatty()) as bar:
        task = bar.add_task("train", total=None, loss=float("nan"))

        def show(step: int, total: int, loss: float, eta: float) -> None:
            bar.update(task, completed=step, total=total, loss=loss)

        folder = run_training(settings, resume=not fresh, progress=show)
    print(folder)


LOOPBACK = ("127.0.0.1", "localhost", "::1")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to bind (not loopback: needs --token).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    token: Annotated[
        str | None,
        typer.Option(envvar="PROMPTREEL_TOKEN", help="Required by every API route when set."),
    ] = None,
    max_queue: Annotated[int, typer.Option(help="Queued jobs before new ones get 429.")] = 100,
) -> None:
    """Run the HTTP API, the web page and a worker; queued jobs survive a crash."""
    token = token or None  # an empty --token "" (or PROMPTREEL_TOKEN=) is no token
    if host not in LOOPBACK and not token:
        raise InvalidRequest(
            f"--host {host} opens the service to the network; give --token TOKEN (or set "
            "PROMPTREEL_TOKEN), or keep the default 127.0.0.1."
        )
    if not 0 < port < 65536:
        raise InvalidRequest(f"--port must be between 1 and 65535, not {port}.")
    if max_queue < 1:
        raise InvalidRequest(f"--max-queue must be at least 1, not {max_queue}.")
    from .jobs.lock import hold_service_lock
    from .server.app import create_app
    from .server.run import serve as run_service

    hold_service_lock()  # refuse a second service on this data folder before anything else
    shown = f"[{host}]" if ":" in host else host
    page = f"http://{shown}:{port}/" + (f"#token={token}" if token else "")
    run_service(
        create_app(token=token, max_queued=max_queue),
        host,
        port,
        banner=f"promptreel: serving {page} (Ctrl-C stops)",
    )


from .cli_history import history_app  # noqa: E402  (it uses the helpers above)

app.add_typer(history_app, name="history")
