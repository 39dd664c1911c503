"""`promptreel inspect` prints how a video was made."""

from __future__ import annotations

import json

import pytest
from conftest import plain_video

SMALL = [
    "--model",
    "modelscope",
    "--height",
    "32",
    "--width",
    "32",
    "--num-frames",
    "3",
    "--num-inference-steps",
    "2",
]


@pytest.fixture
def made(hub, cli, workdir) -> None:
    hub("modelscope")
    for output in ("clip.mp4", "other.webm", "anim.gif", "frames/"):
        result = cli("generate", "a kite", "--seed", "8", "--output", output, "--quiet", *SMALL)
        assert result.code == 0, result.err


@pytest.mark.parametrize("name", ["clip.mp4", "other.webm", "anim.gif", "frames"])
def test_inspect_prints_the_record(made, cli, workdir, name) -> None:
    result = cli("inspect", name, "--json")
    assert result.code == 0, result.err
    record = json.loads(result.out)
    assert record["prompt"] == "a kite" and record["seed"] == 8
    table = cli("inspect", name)
    assert "a kite" in table.out and "seed" in table.out


def test_the_record_inside_the_file_survives_losing_the_sidecar(made, cli, workdir) -> None:
    (workdir / "clip.mp4.json").unlink()
    result = cli("inspect", "clip.mp4", "--json")
    assert json.loads(result.out)["seed"] == 8


def test_a_video_we_did_not_make_is_refused_in_one_line(cli, workdir) -> None:
    plain_video(workdir / "x.mp4", frames=2, side=16)  # made by someone else
    result = cli("inspect", "x.mp4")
    assert result.code == 1
    assert len(result.err.strip().splitlines()) == 1
    assert cli("inspect", "missing.mp4").code == 1


def test_inspect_never_prints_escape_codes_from_a_record(cli, workdir) -> None:
    (workdir / "x.gif").write_bytes(b"GIF89a")
    hostile = {"promptreel_record": 1, "prompt": "\x1b[2J\x1b[31mgotcha\nline", "seed": 1}
    (workdir / "x.gif.json").write_text(json.dumps(hostile))
    result = cli("inspect", "x.gif")
    assert result.code == 0, result.err
    assert "\x1b" not in result.out
    assert len(result.out.strip().splitlines()) == 3


DEEP = "[" * 100_000 + "]" * 100_000  # valid JSON, deeper than Python's parser goes


def _one_line_refusal(result) -> str:
    assert result.code == 1, result.out
    assert "Traceback" not in result.err and len(result.err.strip().splitlines()) == 1
    return result.err


def test_json_nested_too_deeply_is_refused_in_one_line(cli, workdir) -> None:
    """A sidecar, a record inside a PNG, a folder's record: JSON promptreel did not write."""
    from PIL import Image, PngImagePlugin

    plain_video(workdir / "a.mp4", frames=2, side=16)
    (workdir / "a.mp4.json").write_text(DEEP)
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", '{"promptreel_record": ' + DEEP + "}")
    Image.new("RGB", (8, 8)).save(workdir / "b.png", pnginfo=info)
    (workdir / "frames").mkdir()
    (workdir / "frames" / "record.json").write_text('{"promptreel_record": 1, "x": ' + DEEP + "}")
    for target in ("a.mp4", "frames"):
        assert "nested too deeply" in _one_line_refusal(cli("inspect", target)), target
    # a comment that is not a record of ours is passed over, as any other comment is
    assert "no generation record" in _one_line_refusal(cli("inspect", "b.png"))


@pytest.mark.parametrize("name", ["x" * 300 + ".mp4", "x" * 300 + "/clip.mp4", "é" * 200])
def test_a_name_longer_than_the_file_system_allows_is_refused_in_one_line(
    cli, workdir, name
) -> None:
    assert name[:20] in _one_line_refusal(cli("inspect", name))
    for option in ("--image", "--video"):
        model = "svd" if option == "--image" else "zeroscope-xl"
        _one_line_refusal(cli("generate", "a cat", "--model", model, option, name))
    _one_line_refusal(cli("generate", "a cat", "--output", name))
    assert set(workdir.iterdir()) == set()
