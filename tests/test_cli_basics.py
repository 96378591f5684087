"""The coreloss command: version, help, and one-line errors."""

import subprocess
import sys
from pathlib import Path

from coreloss import __version__

COREL = [sys.executable, "-m", "coreloss"]


def run(*args):
    return subprocess.run([*COREL, *args], capture_output=True, text=True, timeout=120)


def test_version():
    r = run("--version")
    assert r.returncode == 0 and __version__ in r.stdout


def test_help_lists_commands():
    r = run("--help")
    assert r.returncode == 0
    for cmd in ("structures", "sites", "dataset", "train", "evaluate", "simulate", "predict", "map"):
        assert cmd in r.stdout, cmd


def test_unknown_command_is_one_clean_error():
    r = run("no-such-command")
    assert r.returncode != 0 and "Traceback" not in r.stderr
