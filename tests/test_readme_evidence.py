"""Every benchmark result README.md cites is in the repository (tracked by git), so its numbers can be
checked against the file they came from."""

from __future__ import annotations

import re
import subprocess

import pytest

CITED = re.compile(r"bench/results/[A-Za-z0-9_.\-/]+[A-Za-z0-9]")


def cited_results(text: str) -> set[str]:
    return set(CITED.findall(text))


def test_the_pattern_finds_cited_paths():
    text = "see `bench/results/a_b-1.json` and (bench/results/sub/c.csv), not bench/other.json."
    assert cited_results(text) == {"bench/results/a_b-1.json", "bench/results/sub/c.csv"}


def test_readme_cites_only_tracked_results(repo_root):
    try:
        tracked = subprocess.run(["git", "ls-files", "bench/results"], cwd=repo_root, capture_output=True,
                                 text=True, check=True).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    cited = cited_results((repo_root / "README.md").read_text())
    assert cited, "README cites no benchmark results (pattern broken?)"
    assert sorted(cited - set(tracked)) == [], "README cites results git does not track"
