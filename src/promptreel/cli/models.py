"""`promptreel models`, `download` and `inspect`: what promptreel knows, fetches and made."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from .show import count, print_fields, printable, stage_lines

models_app = typer.Typer(help="List the models promptreel knows, or show one.")


@models_app.callback(invoke_without_command=True)
def models(
    ctx: typer.Context,
    json_output: Annotated[bool, typer.Option("--json", help="Machine-readable.")] = False,
) -> None:
    """List the built-in models and whether each is downloaded."""
    if ctx.invoked_subcommand is not None:
        return
    from ..models.cards import CARDS
    from ..models.info import card_info

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
                ("control", info["control"] is not None),
            )
            if used
        )
        size = count(info["parameters_total"])
        table.add_row(info["name"], takes, native, size, "yes" if info["downloaded"] else "no")
    Console().print(table)


@models_app.command("show")
def models_show(
    name: Annotated[str, typer.Argument(help="Alias, hub repo id or folder.")],
    json_output: Annotated[bool, typer.Option("--json", help="Machine-readable.")] = False,
) -> None:
    """Show one model card."""
    from ..models.info import card_info
    from ..models.resolve import find_card

    info = card_info(find_card(name))
    if json_output:
        print(json.dumps(info, indent=2))
        return
    print_fields(info, width=20)


def download(
    model: Annotated[str, typer.Argument(help="Alias or hub repo id.")],
    control: Annotated[
        list[str] | None,
        typer.Option(
            "--control",
            metavar="KIND",
            help="Also what --control KIND needs: pose, canny or depth. Repeatable.",
        ),
    ] = None,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Do not ask before downloading.")
    ] = False,
) -> None:
    """Fetch what a model needs (safetensors only) into the Hugging Face cache."""
    from ..models.download import download_model

    def confirm(summary: str) -> bool:
        print(summary, file=sys.stderr)
        if yes or not sys.stdin.isatty():
            return True  # scripts and CI: the size is printed; asking would hang
        return typer.confirm("Download?", default=True, err=True)

    fetched = download_model(model, confirm=confirm, controls=tuple(control or ()))
    if fetched:
        print(f"downloaded {', '.join(fetched)}", file=sys.stderr)


def inspect(
    video: Annotated[Path, typer.Argument(help="A video made by promptreel.")],
    json_output: Annotated[bool, typer.Option("--json", help="Machine-readable.")] = False,
) -> None:
    """Print how a video was made."""
    from ..video import read_record

    record = read_record(video)
    if json_output:
        print(json.dumps(record, indent=2))
        return
    print_fields({k: v for k, v in record.items() if k not in ("timings", "memory")}, width=20)
    for line in stage_lines(record):
        print(line)


def loras(
    json_output: Annotated[bool, typer.Option("--json", help="Machine-readable.")] = False,
) -> None:
    """List the LoRAs known by name: shipped with promptreel, or in the data folder's loras/."""
    from .. import jsontext
    from ..models.lora import SHIPPED, named_loras, user_loras

    infos = []
    for name, folder in named_loras().items():
        try:
            card = jsontext.loads((folder / "lora.json").read_text())
        except (OSError, ValueError):
            card = {}  # a LoRA made elsewhere: no card, still usable
        base = card.get("base") if isinstance(card, dict) else None
        infos.append(
            {
                "name": name,
                "shipped": folder.parent == SHIPPED,
                "base": base.get("model") if isinstance(base, dict) else None,
                "trigger_words": card.get("trigger_words", []) if isinstance(card, dict) else [],
                "path": str(folder),
            }
        )
    if json_output:
        print(json.dumps(infos, indent=2))
        return
    if not infos:
        print(f"no named LoRAs yet; put one (a folder) in {user_loras()}", file=sys.stderr)
        return
    for info in infos:
        where = "shipped" if info["shipped"] else info["path"]
        words = ", ".join(info["trigger_words"])
        print(f"{printable(info['name'])}  base {info['base'] or '?'}  {where}  {printable(words)}")
