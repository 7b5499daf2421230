"""Tests of docs/: every section the repository cites exists, and the index is whole."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"

# The files the citations name, old spelling and new, and the file each resolves to.
CITED_FILES = {
    "reference/kvm440.md": DOCS / "kvm440.md",
    "docs/kvm440.md": DOCS / "kvm440.md",
    "kvm440.md": DOCS / "kvm440.md",
    "DESIGN.md": DOCS / "design.md",
    "docs/design.md": DOCS / "design.md",
    "design.md": DOCS / "design.md",
}
CITATION = re.compile(
    r"(?<![\w/])(reference/kvm440\.md|docs/kvm440\.md|kvm440\.md|DESIGN\.md|docs/design\.md|design\.md)"
    r" §(\d+(?:\.\d+)?)"
)
SOURCE_SUFFIXES = {".py", ".pyx", ".pxd", ".pyi", ".md", ".toml", ".txt", ".json"}
# Files that cite missing sections on purpose, as examples of what the checks reject.
EXAMPLES = {Path("tests/test_costs.py")}


def headings(path: Path) -> set[str]:
    """The section numbers of a Markdown file: ``## 2. Title`` gives "2", ``### 2.10 Title`` "2.10"."""
    found = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        m = re.match(r"#{2,3} (\d+(?:\.\d+)?)\.?\s", line)
        if m:
            found.add(m.group(1))
    return found


def citing_files() -> list[Path]:
    """The text files of the repository that may cite docs/, apart from the EXAMPLES."""
    files = [ROOT / "README.md"]
    for folder in ("emu", "scenarios", "tools", "tests", "docs"):
        files += sorted(p for p in (ROOT / folder).rglob("*")
                        if p.is_file() and p.suffix in SOURCE_SUFFIXES)
    return [p for p in files if p.relative_to(ROOT) not in EXAMPLES]


def test_sections_follow_the_numbering_citations_use():
    facts = headings(DOCS / "kvm440.md")
    assert {"0", "1", "2", "3", "4", "5"} <= facts
    assert {f"1.{i}" for i in range(1, 7)} <= facts
    assert {f"2.{i}" for i in range(1, 11)} <= facts
    assert {"3.1", "3.2", "4.1", "4.2"} <= facts
    assert {"1", "2", "3", "4", "4.1", "5", "6", "7"} <= headings(DOCS / "design.md")


def test_every_cited_section_exists():
    sections = {path: headings(path) for path in set(CITED_FILES.values())}
    missing, checked = [], 0
    for path in citing_files():
        for m in CITATION.finditer(path.read_text(encoding="utf-8", errors="replace")):
            checked += 1
            if m.group(2) not in sections[CITED_FILES[m.group(1)]]:
                missing.append(f"{path.relative_to(ROOT)}: {m.group(0)}")
    assert not missing
    assert checked > 50


@pytest.mark.parametrize("name", sorted(
    str(p.relative_to(DOCS)) for p in DOCS.rglob("*") if p.is_file() and p.name != "README.md"
))
def test_the_index_lists_every_file(name):
    assert f"({name})" in (DOCS / "README.md").read_text(encoding="utf-8")
