import re
import subprocess
from pathlib import Path

import torch

import crosssent
from crosssent.provenance import code_summary, software_versions


def test_software_versions_name_the_packages_and_the_checkout():
    found = software_versions()
    assert found["torch"] == torch.__version__ and found["crosssent"] == crosssent.__version__
    source = Path(crosssent.__file__).resolve().parent
    inside_git = subprocess.run(["git", "-C", str(source), "rev-parse", "HEAD"], capture_output=True).returncode == 0
    if inside_git:
        assert re.fullmatch(r"[0-9a-f]{40}", found["git_commit"]) and isinstance(found["git_dirty"], bool)
    else:
        assert found["git_commit"] is None and found["git_dirty"] is None


def test_code_summary_of_a_run():
    commit = "0123456789abcdef0123456789abcdef01234567"
    assert code_summary({"git_commit": commit, "git_dirty": False}) == "0123456"
    assert code_summary({"git_commit": commit, "git_dirty": True}) == "0123456+edits"
    assert code_summary({"crosssent": "0.1.0", "git_commit": None}) == "crosssent 0.1.0, no git checkout"
    assert code_summary(None) == "unrecorded"  # a run made before run info kept its code
