"""Kill -9 the server in the middle of a job: after a restart nothing is lost.

A real `promptreel serve` process, over real HTTP: the job that was running runs again (its
attempt counted), the queued one after it still runs, the finished video is untouched, and no
file of the interrupted job was ever visible.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, port: int, log: Path, *, token: str | None = None) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.log = log.open("ab")
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        extra = ["--token", token] if token else []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "promptreel", "serve", "--port", str(port), *extra],
            stdout=self.log,
            stderr=self.log,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, log.read_text()
            try:
                health = httpx.get(f"{self.url}/v1/health", timeout=1, headers=self.headers)
                if health.status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise AssertionError("the server did not start:\n" + log.read_text())

    def running_job(self, steps: int) -> dict:
        """Queue an 8-frame shapes job of `steps` steps; return it once it is denoising."""
        body = {"model": "shapes", "prompt": "p", "num_frames": 8, "num_inference_steps": steps}
        job = httpx.post(f"{self.url}/v1/jobs", json=body).json()
        self.wait(job["id"], lambda j: j["progress"]["step"] > 0)
        return job

    def job(self, job_id: int) -> dict:
        return httpx.get(f"{self.url}/v1/jobs/{job_id}", timeout=10).json()

    def wait(self, job_id: int, until, timeout: float = 300) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.job(job_id)
            if until(job):
                return job
            time.sleep(0.05)
        raise AssertionError(f"job {job_id} stuck: {job}")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(30)
        self.log.close()


def _finished(job: dict) -> bool:
    return job["status"] in ("succeeded", "failed", "cancelled")


@pytest.mark.timeout(900)
def test_kill_9_during_a_job_loses_nothing(promptreel_home: Path, tmp_path: Path) -> None:
    outputs = promptreel_home / "outputs"
    small = {"model": "shapes", "num_frames": 4}
    long = {"model": "shapes", "num_frames": 16}
    port = _free_port()
    server = Server(port, tmp_path / "server.log")
    try:
        # 1. One finished job, one long job killed mid-denoising, one queued behind it.
        first = httpx.post(f"{server.url}/v1/jobs", json={"prompt": "done", **small}).json()
        server.wait(first["id"], _finished)
        finished_bytes = (outputs / f"{first['id']}.mp4").read_bytes()
        long_job = httpx.post(
            f"{server.url}/v1/jobs",
            json={"prompt": "cut short", **long, "num_inference_steps": 40},
        ).json()
        queued = httpx.post(f"{server.url}/v1/jobs", json={"prompt": "next", **small}).json()
        server.wait(long_job["id"], lambda j: j["progress"]["step"] > 0)
        server.kill()

        # 2. Dead: the interrupted job has no visible file, the finished one is whole.
        visible = sorted(p.name for p in outputs.iterdir() if not p.name.startswith("."))
        assert visible == [f"{first['id']}.mp4", f"{first['id']}.mp4.json"]

        # 3. Restarted: the cut-short job runs again, then the queued one.
        server = Server(port, tmp_path / "server.log")
        rerun = server.wait(long_job["id"], _finished)
        assert rerun["status"] == "succeeded", rerun["reason"]
        assert rerun["attempts"] == 2
        assert rerun["record"]["seed"] == long_job["request"]["seed"]
        after = server.wait(queued["id"], _finished)
        assert after["status"] == "succeeded" and after["attempts"] == 1
        assert (outputs / f"{first['id']}.mp4").read_bytes() == finished_bytes
        assert server.job(first["id"])["status"] == "succeeded"
        video = httpx.get(f"{server.url}{rerun['video_url']}", timeout=10)
        assert video.status_code == 200 and len(video.content) > 0
        assert not [p for p in outputs.iterdir() if p.name.startswith(".")]
    finally:
        server.stop()


@pytest.mark.timeout(300)
def test_serve_refuses_an_open_address_without_a_token(cli, monkeypatch) -> None:
    monkeypatch.delenv("PROMPTREEL_TOKEN", raising=False)
    result = cli("serve", "--host", "0.0.0.0")
    assert result.code == 1
    assert result.err.startswith("InvalidRequest: --host 0.0.0.0 opens the service")
    assert "--token" in result.err


@pytest.mark.parametrize(
    "token",
    [
        " ",
        "x",
        "short-token",
        "sixteen chars  x",
        "tab\tin-a-long-enough-token",
        "\x1b[2J-long-token",
    ],
)
def test_serve_refuses_a_token_that_cannot_protect(cli, monkeypatch, token) -> None:
    monkeypatch.delenv("PROMPTREEL_TOKEN", raising=False)
    for args in (["--token", token], []):
        if not args:
            monkeypatch.setenv("PROMPTREEL_TOKEN", token)  # the same rule for the variable
        result = cli("serve", "--host", "0.0.0.0", "--port", "1", *args)
        assert result.code == 1 and result.err.count("\n") == 1, result.err
        assert result.err.startswith("InvalidRequest: --token must be at least 16 characters")
        offered = result.err.split()[-1]
        assert len(offered) >= 32 and offered.isprintable()  # a fresh strong one to use


def test_a_token_in_a_url_never_reaches_the_log(tmp_path: Path) -> None:
    """Video and event URLs carry `?token=`: the service writes no access log to keep it."""
    token = "a-strong-test-token-0123456789"
    server = Server(_free_port(), tmp_path / "server.log", token=token)
    try:
        assert httpx.get(f"{server.url}/v1/jobs?token={token}").status_code == 200
        assert httpx.get(f"{server.url}/v1/jobs/99/video?token={token}").status_code == 404
        assert httpx.get(f"{server.url}/v1/health?token=wrong-{token}").status_code == 401
    finally:
        server.stop()
    log = (tmp_path / "server.log").read_text()
    assert log.count(token) == 1, log  # the banner's page link only, for the one who started it
    assert "GET /v1" not in log


def test_serve_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    server = Server(_free_port(), tmp_path / "server.log")
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(30) == 0
    server.log.close()
    assert "Traceback" not in (tmp_path / "server.log").read_text()
    assert os.environ["PROMPTREEL_HOME"]


def test_a_second_server_on_the_same_home_is_refused_and_touches_nothing(
    promptreel_home: Path, tmp_path: Path
) -> None:
    server = Server(_free_port(), tmp_path / "server.log")
    try:
        job = server.running_job(steps=40)
        second = subprocess.run(
            [sys.executable, "-m", "promptreel", "serve", "--port", str(_free_port())],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert second.returncode == 1
        assert second.stderr.strip().count("\n") == 0, second.stderr
        assert f"another promptreel serve (pid {server.process.pid})" in second.stderr
        done = server.wait(job["id"], _finished)
        assert done["status"] == "succeeded" and done["attempts"] == 1
    finally:
        server.stop()


def test_a_taken_port_is_a_one_line_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "promptreel", "serve", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert result.returncode == 1
    assert result.stderr.startswith(f"InvalidRequest: cannot listen on 127.0.0.1:{port}")
    assert result.stderr.strip().count("\n") == 0


def test_sigterm_with_a_page_watching_puts_the_job_back_at_once(
    promptreel_home: Path, tmp_path: Path
) -> None:
    import threading

    from promptreel.jobs.store import JobStore

    server = Server(_free_port(), tmp_path / "server.log")
    job = server.running_job(steps=200)

    def watch() -> None:  # an open event stream, as the page keeps
        with httpx.stream("GET", f"{server.url}/v1/jobs/{job['id']}/events", timeout=60) as r:
            for _ in r.iter_lines():
                pass

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    time.sleep(0.5)
    started = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(30) == 0
    assert time.monotonic() - started < 15
    server.log.close()
    row = JobStore().get(job["id"])
    assert row.status == "queued" and row.attempts == 0
