"""What code made a run: package versions and, in a git checkout, the commit.

Written into every run's ``run_info.json`` (and so into its committed record) under
``software``, so a number in a report can be traced to the code that produced it.
"""

from __future__ import annotations

import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

PACKAGES = ("crosssent", "torch", "transformers", "lightning")


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(Path(__file__).resolve().parent), *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def software_versions() -> dict[str, Any]:
    """Versions of Python and the packages that decide a run's numbers; ``git_commit`` and
    ``git_dirty`` (tracked files edited since that commit) when crosssent runs from a git
    checkout, else None."""
    found: dict[str, Any] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    commit = _git("rev-parse", "HEAD")
    found["git_commit"] = commit
    status = _git("status", "--porcelain", "--untracked-files=no") if commit else None
    found["git_dirty"] = bool(status) if status is not None else None
    return found


def code_summary(software: dict[str, Any] | None) -> str:
    """Short form of a run's ``software``: its commit (``+edits`` when tracked files had been
    changed), or ``unrecorded`` for a run made before run info kept it."""
    if not software:
        return "unrecorded"
    commit = software.get("git_commit")
    if not commit:
        return f"crosssent {software.get('crosssent')}, no git checkout"
    return commit[:7] + ("+edits" if software.get("git_dirty") else "")
