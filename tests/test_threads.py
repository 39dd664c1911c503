"""torch's threads spin while they wait only when the other cores were idle as the command
started: spinning beside a busy program made a shapes video 2.5x slower."""

from __future__ import annotations

import pytest

from promptreel.cli import threads


@pytest.fixture
def ticks(monkeypatch):
    """The machine's (idle, total) ticks at start-up and now, on 2 cores."""
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.delenv("GOMP_SPINCOUNT", raising=False)
    monkeypatch.setattr(threads.os, "cpu_count", lambda: 2)

    def set_ticks(started, now) -> None:
        monkeypatch.setattr(threads, "STARTED", started)
        monkeypatch.setattr(threads, "cpu_ticks", lambda: now)

    return set_ticks


@pytest.mark.parametrize(
    ("now", "policy"),
    [
        ((10, 20), None),  # this command on one core, the other idle: spin
        ((9, 20), None),
        ((4, 20), "PASSIVE"),  # the other core busier than not
        ((0, 20), "PASSIVE"),  # the other core busy
        ((0, 0), "PASSIVE"),  # no time passed: nothing known
        (None, "PASSIVE"),  # no /proc/stat (not Linux)
    ],
)
def test_threads_spin_only_beside_idle_cores(ticks, monkeypatch, now, policy) -> None:
    ticks((0, 0), now)
    threads.choose_wait_policy()
    assert threads.os.environ.get("OMP_WAIT_POLICY") == policy


def test_a_policy_the_user_set_is_kept(ticks, monkeypatch) -> None:
    ticks((0, 0), (0, 20))
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    threads.choose_wait_policy()
    assert threads.os.environ["OMP_WAIT_POLICY"] == "ACTIVE"
    monkeypatch.delenv("OMP_WAIT_POLICY")
    monkeypatch.setenv("GOMP_SPINCOUNT", "1000")
    threads.choose_wait_policy()
    assert "OMP_WAIT_POLICY" not in threads.os.environ


def test_the_service_s_threads_sleep(ticks) -> None:
    ticks((0, 0), (10, 20))
    threads.choose_wait_policy()
    threads.threads_sleep()
    assert threads.os.environ["OMP_WAIT_POLICY"] == "PASSIVE"


def test_the_real_tick_counts_are_read() -> None:
    found = threads.cpu_ticks()
    if found is not None:  # Linux
        idle, total = found
        assert 0 <= idle <= total and total > 0
