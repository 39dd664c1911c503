"""`promptreel plan`: will it fit, before anything loads. Its options are `generate`'s."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

import typer

from ..errors import InvalidRequest
from ..request import make_request
from .generate import REQUEST_OPTIONS, parse_params, with_options
from .show import size, table_lines

PLAN_OPTIONS: dict[str, tuple[Any, Any]] = {
    "vram": (
        Annotated[
            str | None,
            typer.Option(
                metavar="SIZE",
                help="Accelerator memory to fit in (12GiB, 8GB, 8000MiB): plans for a GPU "
                "even on a machine without one.",
            ),
        ],
        None,
    ),
    "ram": (
        Annotated[str | None, typer.Option(metavar="SIZE", help="Host memory to fit in.")],
        None,
    ),
    "json_output": (Annotated[bool, typer.Option("--json", help="Machine-readable.")], False),
}
_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12}
_UNITS |= {"kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def plan(**options: Any) -> None:
    """Predict each stage's peak GPU and host memory for every memory setup, and pick the
    fastest that fits (given a switch, or --dtype: that setup alone)."""
    from ..generation import MEMORY_SWITCHES, explicit_switches
    from ..planning import plan_request

    own = {name: options.pop(name) for name in PLAN_OPTIONS}
    fields = {name: value for name, value in options.items() if value is not None}
    fields["params"] = parse_params(fields.get("params") or [])
    request = make_request(**fields)
    explicit = bool(explicit_switches(request)) or request.dtype != "auto"
    vram, ram = parse_size(own["vram"], "vram"), parse_size(own["ram"], "ram")
    result = plan_request(request, vram=vram, ram=ram, explicit=explicit)
    if own["json_output"]:
        print(json.dumps(result, indent=2))
        return
    print(
        f"{result['model']} on {result['device']}, {result['num_frames']} frames at "
        f"{result['width']}x{result['height']}"
        + (f"; fitting in {size(vram)} of GPU memory" if vram else "")
        + (f" and {size(ram)} of RAM" if ram else "")
    )
    # the stages' peaks on the GPU, or in RAM when it runs on the CPU
    key = "peak_ram_bytes" if result["device"] == "cpu" else "peak_vram_bytes"
    memory = "RAM" if result["device"] == "cpu" else "VRAM"
    names = ["offload", "slicing", "tiling", "chunking", "fp8"]
    names += [f"encode {memory}", f"denoise {memory}", f"decode {memory}", "peak RAM", "time"]
    rows = []
    for entry in result["plans"]:
        setup, stages = entry["setup"], entry["stages"]
        rows.append(
            [
                setup["offload"],
                "yes" if setup["vae_slicing"] else "-",
                "yes" if setup["vae_tiling"] else "-",
                "yes" if setup["forward_chunking"] else "-",
                "yes" if setup["fp8"] else "-",
                *(size(stages[s][key]) for s in ("encode", "denoise", "decode")),
                size(entry["peak_ram_bytes"]),
                f"{entry['time_cost']:.2f}x",
            ]
        )
    for line in table_lines(names, rows):
        print(line)
    for other in result["other_dtypes"]:
        name, fastest, leanest = other["dtype"], other["best"], other["leanest"]
        if fastest is not None:
            peak = size(fastest[f"peak_{memory.lower()}_bytes"])
            print(
                f"at --dtype {name}: {_switches(fastest['setup'], MEMORY_SWITCHES)} fits "
                f"({peak} {memory}, {fastest['time_cost']:.2f}x)"
            )
        else:
            peak = size(leanest[f"peak_{memory.lower()}_bytes"])
            print(f"at --dtype {name}: nothing fits (the leanest needs {peak} {memory})")
    best = result["best"]
    largest = result["largest"]
    if best is None and largest is None:
        print("nothing fits, not even at the fewest frames and a tenth of the size")
    elif best is None:
        print(
            f"nothing fits; {largest['num_frames']} frames at {largest['width']}x"
            f"{largest['height']} would, with {_switches(largest['setup'], MEMORY_SWITCHES)}"
        )
    elif len(result["plans"]) > 1:
        setup = best["setup"]
        print(f"fastest that fits: {_switches(setup, MEMORY_SWITCHES)} ({setup['dtype']})")


def _switches(setup: dict[str, Any], names: tuple[str, ...]) -> str:
    """A setup as the generate options that make it: `--offload model --vae-tiling`."""
    switches = [f"--offload {setup['offload']}"] if setup["offload"] != "none" else []
    switches += [f"--{k.replace('_', '-')}" for k in names if k != "offload" and setup[k]]
    return " ".join(switches) or "no switches"


def parse_size(text: str | None, argument: str) -> int | None:
    """`12GiB`, `8GB`, `8000 MiB`, or bytes."""
    if text is None:
        return None
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    if match is None or match.group(2).lower() not in _UNITS or float(match.group(1)) <= 0:
        raise InvalidRequest(
            f"--{argument} {text!r} is not a size; give one like 12GiB, 8GB or 8000MiB.",
            argument=argument,
            value=text,
        )
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


with_options(plan, {**REQUEST_OPTIONS, **PLAN_OPTIONS})
