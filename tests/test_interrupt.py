"""Ctrl-C or SIGTERM during `make book` stops the run at once, with one line, and leaves no server, lab namespace
or route behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from experiments.lab.netlab import PREFIX, guard_route_present, lab_namespaces
from experiments.lab.processes import SESSION_ENV, descendants, running, server_processes
from experiments.paths import ROOT


def _terminal_job(chapter: str, session: str, tmp_path) -> subprocess.Popen:
    """The runner executing ``chapter`` as a terminal's foreground job: its own process group, SIGINT at its
    default (a background job of a non-interactive shell ignores it)."""
    return subprocess.Popen(
        [sys.executable, "-m", "experiments.bookkit", "execute", chapter], cwd=ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "TMPDIR": str(tmp_path), SESSION_ENV: session},
        preexec_fn=lambda: (signal.signal(signal.SIGINT, signal.SIG_DFL), os.setpgrp()),
    )


def test_ctrl_c_stops_the_chapter_and_its_servers(tmp_path):
    session = f"interrupt-test-{os.getpid()}"
    runner = _terminal_job("economics", session, tmp_path)
    deadline = time.monotonic() + 60
    while not server_processes(session):
        assert time.monotonic() < deadline and runner.poll() is None, "the chapter never started its servers"
        time.sleep(0.1)
    os.killpg(runner.pid, signal.SIGINT)  # what Ctrl-C does
    interrupted = time.monotonic()
    _, err = runner.communicate(timeout=30)
    assert time.monotonic() - interrupted < 10
    assert runner.returncode == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: book/economics.ipynb: interrupted; stopped its kernel; "
                                                   "removed "), err
    assert not server_processes(session)
    assert not list(tmp_path.glob("cachebook-*")), "the interrupted run left server directories behind"


def test_a_sigkilled_runner_takes_its_chapter_kernel_and_servers_with_it(tmp_path):
    """`kill -9` of the runner: its chapter process (PR_SET_PDEATHSIG), that process's kernel (its parent
    poller) and the kernel's servers (PR_SET_PDEATHSIG) are all gone within a few seconds."""
    session = f"sigkill-test-{os.getpid()}"
    runner = subprocess.Popen(
        [sys.executable, "-m", "experiments.bookkit", "execute", "economics"], cwd=ROOT,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "TMPDIR": str(tmp_path), SESSION_ENV: session}, start_new_session=True)
    deadline = time.monotonic() + 60
    while not server_processes(session):
        assert time.monotonic() < deadline and runner.poll() is None, "the chapter never started its servers"
        time.sleep(0.1)
    below = descendants(runner.pid)
    assert below, "the runner has no chapter process"
    runner.kill()
    runner.wait()
    deadline = time.monotonic() + 8
    while (any(running(p) for p in below) or server_processes(session)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [p for p in below if running(p)], "the chapter process or its kernel outlived the runner"
    assert not server_processes(session), "the chapter's servers outlived the runner"


def _interrupt_the_network_chapter(tmp_path, how: str) -> str:
    """Run the network chapter, interrupt it (``ctrl-c``: SIGINT to its process group as a terminal sends it;
    ``sigterm``: what `timeout`, CI limits and service managers send) once its labs exist, and return the
    runner's stderr, once the namespaces its kernel had made are checked gone."""
    session = f"netint-{how}-{os.getpid()}"
    runner = _terminal_job("network", session, tmp_path)
    deadline, made = time.monotonic() + 120, []
    while not made:
        assert time.monotonic() < deadline and runner.poll() is None, "the chapter never made its labs"
        below = set(descendants(runner.pid))
        made = [n for n in lab_namespaces() if int(n[len(PREFIX):].split("-", 1)[0]) in below]
        time.sleep(0.2)
    time.sleep(2)  # servers start in them
    if how == "ctrl-c":
        os.killpg(runner.pid, signal.SIGINT)
    else:
        runner.send_signal(signal.SIGTERM)
    _, err = runner.communicate(timeout=30)
    assert runner.returncode == 2, err
    time.sleep(1)
    assert not server_processes(session), "the chapter's servers outlived the interrupt"
    assert not set(made) & set(lab_namespaces()), "the chapter's lab namespaces outlived the interrupt"
    assert lab_namespaces() or not guard_route_present(), "the lab's route outlived every lab"
    return err


@pytest.mark.chapter_run  # make test interrupts it with SIGTERM; make soak also with Ctrl-C
def test_ctrl_c_of_the_network_chapter_removes_its_labs(tmp_path):
    err = _interrupt_the_network_chapter(tmp_path, "ctrl-c")
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "book/network.ipynb: interrupted; stopped its kernel; removed" in lines[0], err
    assert "lab namespace(s)" in lines[0]


def test_sigterm_of_the_runner_removes_the_network_chapter_s_labs(tmp_path):
    err = _interrupt_the_network_chapter(tmp_path, "sigterm")
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "book/network.ipynb: interrupted; stopped its kernel; removed" in lines[0], err
