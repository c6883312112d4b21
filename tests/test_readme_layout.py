"""README's code layout names every module and subpackage of netdyn as it is in the tree, and nothing else."""

from __future__ import annotations

import re

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _layout() -> dict[str, str]:
    """netdyn entry (``config.py``, ``graphs/``) -> its text in README's layout block (continuation lines joined)."""
    block = re.search(r"## Code layout\n+```\n(.*?)```", (REPO / "README.md").read_text(), flags=re.S).group(1)
    body = block[block.index("netdyn/\n") + len("netdyn/\n"):]
    entries: dict[str, str] = {}
    last = None
    for line in body.splitlines():
        m = re.match(r"^  (\S+)\s*(.*)$", line)
        if m:
            last = m.group(1)
            entries[last] = m.group(2)
        elif line.startswith("    ") and last:
            entries[last] += " " + line.strip()
        else:
            break
    return entries


def test_layout_names_exactly_the_package_tree():
    pkg = REPO / "netdyn"
    tree = {p.name for p in pkg.glob("*.py") if p.name != "__init__.py"}
    tree |= {p.name + "/" for p in pkg.iterdir() if (p / "__init__.py").exists()}
    assert set(_layout()) == tree


def test_each_subpackage_line_names_its_modules():
    for entry, text in _layout().items():
        if entry.endswith("/"):
            modules = {p.stem for p in (REPO / "netdyn" / entry).glob("*.py") if p.name != "__init__.py"}
            named = set(re.findall(r"[a-z_]+", text))
            assert modules <= named, (entry, sorted(modules - named))
