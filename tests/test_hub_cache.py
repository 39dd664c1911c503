"""promptreel finds a cached snapshot as huggingface_hub's own `snapshot_download(...,
local_files_only=True)` does (without importing its HTTP stack), and never outside the cache."""

from __future__ import annotations

from pathlib import Path

import pytest
from huggingface_hub import snapshot_download

from promptreel.models.hub_cache import snapshot_folder


def _hubs_own(repo_id: str, revision: str) -> Path | None:
    try:
        return Path(snapshot_download(repo_id, revision=revision, local_files_only=True))
    except Exception:
        return None


def test_the_same_snapshot_as_the_hub_client_finds(hub) -> None:
    snapshot = hub("modelscope")
    repo_id, commit = "damo-vilab/text-to-video-ms-1.7b", snapshot.name
    asked = [
        (repo_id, "main"),
        (repo_id, commit),  # a commit
        (repo_id, "v1.0"),  # a tag or branch not cached
        (repo_id, "0" * 40),  # a commit not cached
        ("damo-vilab/not-downloaded", "main"),
    ]
    for repo, revision in asked:
        assert snapshot_folder(repo, revision) == _hubs_own(repo, revision), (repo, revision)
    assert snapshot_folder(repo_id) == snapshot


@pytest.mark.parametrize(
    ("repo_id", "revision"),
    [
        ("../../etc", "main"),
        ("org/../..", "main"),
        ("org--x/name", "main"),
        ("/etc/passwd", "main"),
        ("org/name/extra", "main"),
        ("", "main"),
        ("damo-vilab/text-to-video-ms-1.7b", "../../../etc"),
        ("damo-vilab/text-to-video-ms-1.7b", "refs/main"),
        ("damo-vilab/text-to-video-ms-1.7b", ""),
    ],
)
def test_hostile_ids_and_revisions_find_nothing(hub, repo_id, revision) -> None:
    hub("modelscope")
    assert snapshot_folder(repo_id, revision) is None
