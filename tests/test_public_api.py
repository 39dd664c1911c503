"""The package's public face: what `import promptreel` offers a script and an editor."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
from pathlib import Path

import pytest

import promptreel


def test_version_is_the_installed_one() -> None:
    assert promptreel.__version__ == importlib.metadata.version("promptreel")


def test_dir_lists_what_all_does_and_every_name_resolves() -> None:
    assert dir(promptreel) == sorted(promptreel.__all__)
    for name in promptreel.__all__:
        assert getattr(promptreel, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = promptreel.nope  # type: ignore[attr-defined]


def test_every_error_is_importable_from_the_package_and_one_tree() -> None:
    from promptreel import errors

    for name in errors.__all__:
        error = getattr(promptreel, name)
        assert error is getattr(errors, name)
        assert issubclass(error, promptreel.PromptreelError)


def test_a_refusal_names_its_argument_as_data() -> None:
    with pytest.raises(promptreel.InvalidRequest) as refused:
        promptreel.generate("a red circle", num_frames=0, history=False)
    assert refused.value.argument == "num_frames" and refused.value.value == 0
    with pytest.raises(promptreel.InvalidRequest) as refused:
        promptreel.generate("a red circle", device="tpu", history=False)
    assert refused.value.argument == "device"


def test_importing_the_package_does_not_import_torch() -> None:
    """`promptreel --help` and `promptreel models` must not wait seconds for torch."""
    code = "import promptreel, promptreel.cli, sys; print('torch' in sys.modules)"
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert shown.stdout.strip() == "False", shown.stderr


def test_unload_frees_the_pipeline_so_the_next_call_loads_it_again() -> None:
    first = promptreel.generate("a red circle moving right", seed=1, history=False)
    kept = promptreel.generate("a red circle moving right", seed=1, history=False)
    assert kept.record["pipeline_reused"] is True
    promptreel.unload()
    again = promptreel.generate("a red circle moving right", seed=1, history=False)
    assert again.record["pipeline_reused"] is False
    assert (again.frames == first.frames).all()


def test_the_package_ships_type_information() -> None:
    assert (Path(promptreel.__file__).parent / "py.typed").is_file()


@pytest.mark.parametrize(
    ("settings", "argument"),
    [
        ({"num_frames": True}, "num_frames"),
        ({"seed": True}, "seed"),
        ({"guidance_scale": False}, "guidance_scale"),
        ({"num_frames": "8"}, "num_frames"),
        ({"seed": 10**5000}, "seed"),
        ({"num_frames": 10**5000}, "num_frames"),
        ({"vae_tiling": 1}, "vae_tiling"),
        ({"params": {"eta": None}}, "params"),
    ],
)
def test_python_settings_of_the_wrong_kind_are_refused_in_one_line(settings, argument) -> None:
    with pytest.raises(promptreel.InvalidRequest) as refused:
        promptreel.generate("a red circle", history=False, **settings)
    assert refused.value.argument == argument
    assert "\n" not in str(refused.value) and len(str(refused.value)) < 300


def test_an_empty_negative_prompt_means_none() -> None:
    plain = promptreel.generate("a red circle moving right", seed=5, history=False)
    empty = promptreel.generate(
        "a red circle moving right", seed=5, negative_prompt="", history=False
    )
    assert (plain.frames == empty.frames).all()
    assert empty.record["negative_prompt"] == ""


def test_the_command_says_everything_before_it_leaves(tmp_path: Path) -> None:
    """The console script skips the interpreter's teardown once torch is loaded: what it
    printed and wrote must all be there, and its exit code must be the command's."""
    command = [sys.executable, "-m", "promptreel", "generate", "a red circle", "--seed", "2"]
    made = subprocess.run(
        [*command, "-o", str(tmp_path / "a.mp4"), "--json", "--quiet"],
        capture_output=True,
        text=True,
    )
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["seed"] == 2  # the whole record, flushed
    assert json.loads((tmp_path / "a.mp4.json").read_text())["seed"] == 2
    refused = subprocess.run(
        [*command, "--num-frames", "0", "-o", str(tmp_path / "b.mp4")],
        capture_output=True,
        text=True,
    )
    assert refused.returncode == 1
    assert refused.stderr.startswith("InvalidRequest: ") and refused.stderr.count("\n") == 1
