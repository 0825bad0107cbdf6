"""The documentation: docs/en builds with Sphinx with warnings as errors (broken links and anchors,
pages outside the table of contents), and the README's relative links point at files that exist."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DOCS = REPO_ROOT / "docs" / "en"
README = REPO_ROOT / "README.md"
README_MAX_LINES = 220
MARKDOWN_LINK = re.compile(r"\]\(([^)\s]+)\)")


def test_the_documentation_builds_without_warnings(tmp_path):
    for module in ("sphinx", "myst_parser", "furo"):
        assert importlib.util.find_spec(module), (
            f"{module} is missing: make install (or pip install -r requirements/docs.txt)"
        )
    command = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html", "-q"]
    build = subprocess.run(
        [*command, str(DOCS), str(tmp_path / "html")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, f"sphinx-build failed:\n{build.stdout}\n{build.stderr}"
    assert (tmp_path / "html" / "index.html").is_file()


def test_the_readme_links_point_at_existing_files():
    text = README.read_text()
    missing = []
    for target in MARKDOWN_LINK.findall(text):
        if target.startswith(("http://", "https://", "mailto:", "#")):
            continue
        path = target.split("#", 1)[0]
        if not (REPO_ROOT / path).exists():
            missing.append(target)
    assert not missing, f"README.md links to missing files: {missing}"


def test_the_readme_stays_a_short_guide():
    lines = len(README.read_text().splitlines())
    assert lines <= README_MAX_LINES, (
        f"README.md has {lines} lines; move details into docs/en (at most {README_MAX_LINES})"
    )
