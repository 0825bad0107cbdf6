"""Sphinx configuration of the gm_plugins documentation (MyST Markdown pages, no autodoc).

Build it as `make test` does (tests/test_docs.py), with warnings as errors:

    .venv/bin/sphinx-build -W --keep-going -b html docs/en work_dirs/docs
"""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def read_version() -> str:
    """The package version, read as text so the build imports nothing of gm_plugins."""
    path = ROOT / "gm_plugins" / "version.py"
    match = re.search(r'__version__ = "([^"]+)"', path.read_text()) if path.is_file() else None
    return match.group(1) if match else "unknown"


project = "gm_plugins"
author = "gm_plugins contributors"
copyright = "2026, gm_plugins contributors"
release = read_version()
version = release

extensions = ["myst_parser"]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]

# `## Title` sections can be linked as `page.md#title` from other pages.
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]

html_theme = "furo"
html_title = f"gm_plugins {release}"
html_static_path: list[str] = []
