"""scripts/setup.sh: a no-op when everything is installed; one clear line when it cannot install."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

from experiments.paths import ROOT

SETUP = ROOT / "scripts" / "setup.sh"


def test_setup_is_a_no_op_when_everything_is_there():
    start = time.monotonic()
    result = subprocess.run(["bash", str(SETUP)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and result.stderr == ""
    assert time.monotonic() - start < 10


def test_without_apt_or_root_it_names_what_to_install(tmp_path):
    """No apt-get or sudo on PATH (as on a machine without root): the packages and the command."""
    for tool in ("dirname", "python3", "id", "cat", "sha256sum", "cut"):
        os.symlink(shutil.which(tool), tmp_path / tool)
    result = subprocess.run(["/bin/bash", str(SETUP)], capture_output=True, text=True, timeout=60,
                            env={"PATH": str(tmp_path), "HOME": str(tmp_path)})
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for package in ("redis-server", "redis-sentinel", "redis-tools", "memcached", "libmemcached-tools", "chromium",
                    "valkey-server/bookworm-backports", "valkey-tools/bookworm-backports"):
        assert package in lines[0]
    assert "sudo apt-get install -y redis-server" in lines[0]
