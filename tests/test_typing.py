"""An editor or type checker sees `promptreel.generate`'s settings by name and type (py.typed,
`GenerateOptions`): a misspelt setting or a wrong type is flagged before anything runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

# Only promptreel's own code is read; the big libraries behind it count as untyped (`Any`), so
# the check takes seconds, not minutes.
CONFIG = """\
[mypy]
follow_imports = silent
ignore_missing_imports = True
cache_dir = {cache}

[mypy-torch.*,diffusers.*,transformers.*,numpy.*,PIL.*,av.*,huggingface_hub.*,pydantic.*,\
pydantic_core.*,typer.*,click.*,rich.*,accelerate.*,safetensors.*,fastapi.*,starlette.*]
follow_imports = skip
"""

SCRIPT = """\
import promptreel

good = promptreel.generate("a cat", num_frames=8, seed=3, vae_tiling=True, params={"eta": 0.5})
frames = good.frames
misspelt = promptreel.generate("a cat", num_frame=8)
wrong_type = promptreel.generate("a cat", num_frames="8")
unknown_choice = promptreel.generate("a cat", offload="everything")
promptreel.unload()
try:
    promptreel.generate("a cat", model="modelscope")
except promptreel.InvalidRequest as refused:
    print(refused.argument, refused.value, promptreel.__version__)
one: promptreel.Video = good
several: list[promptreel.Video] = promptreel.generate("a cat", num_videos_per_prompt=2, seed=1)
"""


def test_a_type_checker_flags_misspelt_and_mistyped_settings(tmp_path: Path) -> None:
    (tmp_path / "mypy.ini").write_text(CONFIG.format(cache=tmp_path / "cache"))
    (tmp_path / "script.py").write_text(SCRIPT)
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", "mypy.ini", "script.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    flagged = {int(line.split(":")[1]) for line in result.stdout.splitlines() if ": error:" in line}
    assert flagged == {5, 6, 7}, result.stdout + result.stderr
    assert 'did you mean "num_frames"' in result.stdout
