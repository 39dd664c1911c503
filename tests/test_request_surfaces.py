"""One definition of a request: every surface carries every field of `GenerationRequest`.

A field added to the request and forgotten on a surface (the CLI, the HTTP body, the record,
`history rerun`, the page's form, the typed keyword arguments of `generate`) fails here, naming
the surface and the field.
"""

from __future__ import annotations

import inspect
import typing
from html.parser import HTMLParser
from pathlib import Path

import pytest
import typer.main

import promptreel
from promptreel.cli import app
from promptreel.jobs.history import rerun_request
from promptreel.jobs.store import Job
from promptreel.request import (
    INPUT_FILES,
    MODEL_SCHEDULER,
    RECORDED_APART,
    GenerateOptions,
    GenerationRequest,
    Scheduler,
    make_request,
    recorded_parameters,
)
from promptreel.schedulers import SCHEDULERS
from promptreel.server.job_body import JobCreate

FIELDS = set(GenerationRequest.model_fields)
PAGE = Path(__file__).parents[1] / "src/promptreel/server/static/index.html"

# A value other than the default for every field: a new field needs one here, and the rerun
# test then proves it survives the record.
NOT_DEFAULT = {
    "prompt": "a red circle",
    "model": "modelscope",
    "base": "emilianJR/epiCRealism",
    "negative_prompt": "blurry",
    "num_frames": 12,
    "fps": 12.5,
    "height": 96,
    "width": 160,
    "num_inference_steps": 7,
    "guidance_scale": 3.5,
    "seed": 1234,
    "num_videos_per_prompt": 3,
    "scheduler": "ddim",
    "image": None,  # an input file: its hash is checked on rerun (test_history covers it)
    "video": None,
    "control": "canny",
    "control_video": None,
    "params": {"eta": 0.5},
    "lora": ["shapes-pink-cross:0.8"],
    "device": "cpu",
    "dtype": "float16",
    "offload": "model",
    "vae_slicing": True,
    "vae_tiling": True,
    "forward_chunking": True,
    "fp8": True,
    "compile": True,
    "cache": "fast",
    "memory": "off",
}


def test_every_field_has_a_value_for_these_tests() -> None:
    assert set(NOT_DEFAULT) == FIELDS, "give the new field a non-default value in NOT_DEFAULT"


def test_the_cli_has_an_option_for_every_field() -> None:
    command = typer.main.get_command(app).commands["generate"]
    names = {param.name for param in command.params}
    assert names >= FIELDS, f"generate lacks {sorted(FIELDS - names)}"


def test_the_cli_passes_every_field_on(cli, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every option reaches the request under its field's name and value."""
    import promptreel.cli.generate as command

    seen: list[GenerationRequest] = []
    monkeypatch.setattr(command, "make_video", lambda request, **_: seen.append(request))
    args: list[str] = [NOT_DEFAULT["prompt"]]
    for name, value in NOT_DEFAULT.items():
        flag = "--" + name.replace("_", "-")
        if name == "prompt" or value is None:
            continue
        if name == "params":
            args += [f"--param={k}={v}" for k, v in value.items()]
        elif value is True:
            args.append(flag)
        elif isinstance(value, list):  # repeatable: one option an item
            args += [arg for item in value for arg in (flag, item)]
        else:
            args += [flag, str(value)]
    assert cli("generate", *args).code == 0
    (request,) = seen
    expected = {k: v for k, v in NOT_DEFAULT.items() if k != "params"}
    assert request.model_dump(exclude={"params"}) == expected
    assert request.params == {"eta": "0.5"}  # text: checked against the card in `settle`


def test_the_http_body_has_every_field_but_the_uploads() -> None:
    body = set(JobCreate.model_fields)
    assert body == FIELDS - set(INPUT_FILES) | {"format"}
    for name in body - {"format"}:
        request_field = GenerationRequest.model_fields[name]
        assert JobCreate.model_fields[name].annotation == request_field.annotation, name
        assert JobCreate.model_fields[name].description == request_field.description, name


def test_the_typed_keywords_of_generate_are_the_fields() -> None:
    hints = typing.get_type_hints(GenerateOptions)
    assert set(hints) == FIELDS - {"prompt", "model", "num_videos_per_prompt"}
    assert "num_videos_per_prompt" in inspect.signature(promptreel.generate).parameters


def test_a_rerun_makes_every_recorded_field_again() -> None:
    """The record's parameters hold every field the record does not keep apart, and `history
    rerun` rebuilds the same request from them, whatever the job's own request said."""
    settled = make_request(**NOT_DEFAULT)
    parameters = recorded_parameters(settled)
    assert set(parameters) == FIELDS - set(RECORDED_APART)
    record = {
        "promptreel_record": 2,
        "prompt": settled.prompt,
        "negative_prompt": settled.negative_prompt,
        "parameters": parameters,
        "seed": settled.seed,
        "scheduler": {"name": settled.scheduler, "class": "DDIMScheduler"},
        "inputs": {},
    }
    # the job as asked: only the prompt and the model; the record says the rest
    asked = {"prompt": settled.prompt, "model": settled.model}
    job = Job(
        id=1, source="cli", status="succeeded", reason=None, model=settled.model,
        prompt=settled.prompt, request=asked, output_format="mp4", seed=settled.seed,
        record=record, outputs=[], attempts=1, cancel_requested=False, stage=None, step=0,
        total=0, eta=None, created_at=0.0, started_at=None, finished_at=None,
    )  # fmt: skip
    assert rerun_request(job) == settled


class _FormNames(HTMLParser):
    """The names of the controls in the page's job form, and the options of each select."""

    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()
        self.ids: set[str] = set()
        self.options: dict[str, list[str]] = {}
        self._select: str | None = None
        self._in_option = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if found.get("id"):
            self.ids.add(str(found["id"]))
        if tag in ("input", "select", "textarea") and found.get("name"):
            self.names.add(str(found["name"]))
        if tag == "select":
            self._select = found.get("name")
            self.options[str(self._select)] = []
        self._in_option = tag == "option"

    def handle_data(self, data: str) -> None:
        if self._in_option and self._select and data.strip():
            self.options[self._select].append(data.strip())

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None
        if tag == "option":
            self._in_option = False


def test_the_page_form_has_a_control_for_every_field() -> None:
    page = _FormNames()
    page.feed(PAGE.read_text())
    expected = FIELDS - set(INPUT_FILES)
    assert expected <= page.names, f"the page's form lacks {sorted(expected - page.names)}"
    assert "input-file" in page.ids  # the image or video goes as an upload
    # a choice the request knows is a choice the page offers, and no other
    for name, field in GenerationRequest.model_fields.items():
        if typing.get_origin(field.annotation) is typing.Literal:
            assert page.options[name] == list(typing.get_args(field.annotation)), name
    assert page.options["scheduler"] == ["default", *typing.get_args(Scheduler)]


def test_the_scheduler_choices_are_the_samplers_and_the_models_own() -> None:
    assert typing.get_args(Scheduler) == (MODEL_SCHEDULER, *SCHEDULERS)


def test_generate_help_names_each_switch_once(cli) -> None:
    """A switch is one flag (`--no-history`, `--vae-tiling`), never `--no-no-history`."""
    shown = cli("generate", "--help").out
    assert "--no-no-" not in shown and "/ --no-" not in shown
    for flag in ("--no-history", "--vae-tiling", "--overwrite", "--quiet", "--json", "--param"):
        assert shown.count(f" {flag} ") + shown.count(f" {flag}\n") >= 1, flag
