"""The machine and software a build ran on, for the appendix: timings mean little without it."""

from __future__ import annotations

import os
import platform
import re
import subprocess
from importlib import metadata

import pandas as pd

from experiments.measure import machine
from experiments.paths import ROOT

SERVER_COMMANDS = {
    "redis-server": ["redis-server", "--version"],
    "redis-sentinel": ["redis-sentinel", "--version"],
    "valkey-server": ["valkey-server", "--version"],
    "valkey-sentinel": ["valkey-sentinel", "--version"],
    "memcached": ["memcached", "-V"],
    "chromium": ["chromium", "--version"],
}


def _first_line(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return "not installed"
    return (out.stdout or out.stderr).strip().splitlines()[-1] if (out.stdout or out.stderr).strip() else "?"


def memory_gib() -> float:
    """Total RAM in GiB, from /proc/meminfo."""
    text = open("/proc/meminfo").read()
    return int(re.search(r"MemTotal:\s+(\d+)", text).group(1)) / 2**20


def machine_table() -> pd.DataFrame:
    """CPU, cores, memory, OS and Python of this build."""
    rows = [
        ("machine", machine()),
        ("logical CPUs", str(os.cpu_count())),
        ("memory", f"{memory_gib():.1f} GiB"),
        ("OS", f"{platform.system()} {platform.release()} ({platform.freedesktop_os_release().get('PRETTY_NAME', '?')})"),
        ("Python", platform.python_version()),
    ]
    rows += [(name, _first_line(argv)) for name, argv in SERVER_COMMANDS.items()]
    return pd.DataFrame(rows, columns=["item", "value"])


def package_table() -> pd.DataFrame:
    """Installed versions of the pinned direct requirements (``requirements.txt``)."""
    rows = []
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, pinned = line.split("==")
            try:
                installed = metadata.version(name)
            except metadata.PackageNotFoundError:
                installed = "missing"
            rows.append((name, pinned, installed))
    return pd.DataFrame(rows, columns=["package", "pinned", "installed"])
