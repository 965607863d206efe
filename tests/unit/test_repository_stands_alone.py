"""The repository stands alone (issue #8 §5): nothing reads a folder beside it, and every file a comment or doc
cites is in the repository."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from shared.rulebook import RULEBOOKS_DIR
from tests.conftest import ROOT

ME = Path(__file__).resolve().relative_to(ROOT).as_posix()
CITED = re.compile(r"(?<![\w./-])((?:docs|rulebooks|shared|services|deploy|tests|bench)/[\w./-]*\w\.(?:md|py|yaml|yml))")


def tracked(*patterns: str) -> list[Path]:
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", *patterns], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout.split()
    return [ROOT / name for name in out if name != ME and (ROOT / name).is_file()]


def test_nothing_reads_a_folder_beside_the_repository() -> None:
    outside = re.compile(r"\.\./shared|HUZHU_SHARED_DIR|(parent|parents\[\d\])\s*/\s*\"shared\"")
    found = [f"{p.relative_to(ROOT)}: {line.strip()}"
             for p in tracked("*.py", "*.toml", "*.yml", "*.yaml", "*.ini", "*.cfg", "Makefile", "*.md")
             for line in p.read_text(encoding="utf-8").splitlines() if outside.search(line)]
    assert found == []


def test_the_rulebooks_live_in_the_repository() -> None:
    assert RULEBOOKS_DIR == ROOT / "rulebooks"
    assert (RULEBOOKS_DIR / "README.md").is_file() and sorted(RULEBOOKS_DIR.glob("*.yaml"))


def test_every_file_cited_in_code_and_docs_exists() -> None:
    cited = {(p.relative_to(ROOT).as_posix(), name) for p in tracked("*.py", "*.md", "*.yaml", "*.yml", "Makefile")
             for name in CITED.findall(p.read_text(encoding="utf-8"))}
    assert ("shared/rulebook.py", "rulebooks/README.md") in cited  # the pattern finds citations
    assert {f"{source} cites {name}" for source, name in cited if not (ROOT / name).exists()} == set()
