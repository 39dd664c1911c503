"""Every test runs offline against a temporary Hugging Face cache of tiny models.

The environment is set before anything imports huggingface_hub, which reads it once.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HUB_CACHE = Path(tempfile.mkdtemp(prefix="promptreel-hub-"))
os.environ["HF_HUB_CACHE"] = str(HUB_CACHE)
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ.pop("PROMPTREEL_DEBUG", None)

import pytest  # noqa: E402
from hfcache import place  # noqa: E402
from tiny import BUILDERS  # noqa: E402


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(HUB_CACHE, ignore_errors=True)


@pytest.fixture(autouse=True)
def promptreel_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Each test's own history database and service folders, never the user's."""
    folder = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("PROMPTREEL_HOME", str(folder))
    return folder


@pytest.fixture
def hub() -> Callable[[str], Path]:
    """Put the tiny copy of a model's repos (by card name or repo id) into the cache."""
    from promptreel.models.resolve import CARDS_BY_NAME

    def install(model: str) -> Path:
        card = CARDS_BY_NAME.get(model)
        if card is None:
            return place(HUB_CACHE, model, BUILDERS[model])
        if card.local_path is not None:  # shipped with promptreel: nothing to place
            return Path(card.local_path)
        for repo, _ in card.extra_repos.values():
            place(HUB_CACHE, repo, BUILDERS[repo])
        return place(HUB_CACHE, card.repo_id, BUILDERS[card.repo_id])

    return install


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The current folder, where generate writes when no --output is given."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Iterator[Callable[..., Result]]:
    """Run the promptreel command in this process (as `promptreel ARGS...`)."""
    from promptreel.cli import main

    def run(*args: str) -> Result:
        capsys.readouterr()
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    yield run


def files_in(folder: Path) -> set[str]:
    """Every path under `folder`, hidden ones included: a refused request must add none."""
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def plain_video(path: Path, *, frames: int, side: int, fps: int = 8) -> None:
    """An ordinary black H.264 video with no record: one not made by promptreel."""
    import av
    import numpy as np

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = side, side, "yuv420p"
        for _ in range(frames):
            frame = av.VideoFrame.from_ndarray(np.zeros((side, side, 3), np.uint8), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


@pytest.fixture
def serve() -> Iterator[Callable[..., str]]:
    """Start the service (create_app's options) on a free port; returns its base URL."""
    servers: list[tuple[Any, threading.Thread]] = []

    def start(**options: Any) -> str:
        import uvicorn

        from promptreel.server.app import create_app

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        config = uvicorn.Config(
            create_app(**options),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            timeout_graceful_shutdown=5,  # an event stream left open must not hold the test
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
        thread.start()
        servers.append((server, thread))
        base = f"http://127.0.0.1:{port}"
        wait_for_health(base, options.get("token"), thread)
        return base

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(60)


def wait_for_health(base: str, token: str | None, thread: threading.Thread) -> None:
    request = urllib.request.Request(f"{base}/v1/health", headers=bearer(token))
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(request, timeout=5):
                return
        except OSError:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the service at {base} did not start") from None
            time.sleep(0.1)


def bearer(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def wait_for_job(
    client: Any,
    job_id: int,
    *,
    until: Callable[[dict], bool] | None = None,
    timeout: float = 120,
    poll: float = 0.05,
) -> dict:
    """A service job as `GET /v1/jobs/{id}` shows it once `until` holds (by default: it has
    ended); fails the test after `timeout` seconds."""
    until = until or (lambda job: job["status"] not in ("queued", "running"))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if until(job):
            return job
        time.sleep(poll)
    raise AssertionError(f"job {job_id} is still {job['status']} after {timeout} s")
