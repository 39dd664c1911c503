"""Finding a repo's snapshot in the local Hugging Face cache, as `snapshot_download(...,
local_files_only=True)` does, without importing the hub client: that pulls in its HTTP stack
(0.3 s), and `promptreel models` and `loras` must answer in well under half a second.

The cache's layout is huggingface_hub's documented one: `models--ORG--NAME/refs/REVISION`
holds the commit a branch or tag points to, `snapshots/COMMIT/` its files.
"""

from __future__ import annotations

import re
from pathlib import Path

from huggingface_hub import constants

REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]{0,95}/[A-Za-z0-9][\w.-]{0,95}")
COMMIT = re.compile(r"[0-9a-f]{40}")


def valid_repo_id(text: str) -> bool:
    """org/name as the hub allows it (and so never a path out of the cache)."""
    return bool(REPO_ID.fullmatch(text)) and ".." not in text and "--" not in text


def snapshot_folder(repo_id: str, revision: str = "main") -> Path | None:
    """The cached snapshot of `repo_id` at `revision` (a branch, tag or commit), or None."""
    if not valid_repo_id(repo_id) or not re.fullmatch(r"[\w.-]{1,128}", revision):
        return None
    repo = Path(constants.HF_HUB_CACHE) / f"models--{repo_id.replace('/', '--')}"
    commit = revision
    if not COMMIT.fullmatch(revision):
        try:
            commit = (repo / "refs" / revision).read_text().strip()
        except OSError:
            return None
    folder = repo / "snapshots" / commit
    return folder if COMMIT.fullmatch(commit) and folder.is_dir() else None
