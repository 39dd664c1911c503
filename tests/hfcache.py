"""A Hugging Face cache in a temporary folder, filled with tiny models under real repo ids.

The layout is the hub's own (`models--org--name/refs/main` naming a commit, the files under
`snapshots/<commit>/`), so promptreel resolves `damo-vilab/text-to-video-ms-1.7b` as it
resolves a real download, with HF_HUB_OFFLINE=1.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from pathlib import Path


def repo_folder(cache: Path, repo_id: str) -> Path:
    return cache / f"models--{repo_id.replace('/', '--')}"


def place(cache: Path, repo_id: str, build: Callable[[Path], None]) -> Path:
    """Build a tiny copy of `repo_id` into the cache (once) and return its snapshot folder."""
    root = repo_folder(cache, repo_id)
    commit = hashlib.sha1(repo_id.encode()).hexdigest()
    snapshot = root / "snapshots" / commit
    if (root / "refs" / "main").exists():
        return snapshot
    staging = root / "staging"
    shutil.rmtree(staging, ignore_errors=True)
    build(staging)
    snapshot.parent.mkdir(parents=True, exist_ok=True)
    staging.rename(snapshot)
    (root / "refs").mkdir(exist_ok=True)
    (root / "refs" / "main").write_text(commit)
    return snapshot
