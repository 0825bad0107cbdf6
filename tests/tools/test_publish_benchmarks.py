"""tools/analysis_tools/publish_benchmarks.py: a page is its report, with its figure."""

from __future__ import annotations

import importlib.util
import sys

import pytest

from gm_plugins.experiments import benchmark_pages as bp
from gm_plugins.experiments import results_store as rs
from tests.experiments.test_benchmark_pages import record
from tests.runner_configs import REPO_ROOT

#: A stand-in for a tool's --report: writes report.md (with a figure link) and the figure, or
#: nothing when $FAKE_EMPTY is set (no finished row yet).
FAKE_REPORT = """
import os, sys
from pathlib import Path
work = Path(sys.argv[sys.argv.index("--work-dir") + 1])
if not os.environ.get("FAKE_EMPTY"):
    (work / "exp").mkdir(parents=True)
    (work / "exp/report.md").write_text("# Fake table\\n\\n| a | b |\\n\\n![fake](fake.png)\\n")
    (work / "exp/fake.png").write_bytes(b"png bytes")
"""


def load_tool():
    spec = importlib.util.spec_from_file_location(
        "publish_benchmarks", REPO_ROOT / "tools/analysis_tools/publish_benchmarks.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


tool = load_tool()


@pytest.fixture
def fake(tmp_path, monkeypatch):
    monkeypatch.delenv("FAKE_EMPTY", raising=False)
    script = tmp_path / "fake_report.py"
    script.write_text(FAKE_REPORT)
    page = tool.Page("table1", "Fake", (str(script), "--report"), "exp/report.md", "exp/fake.png")
    store = rs.ResultsStore(tmp_path / "results")

    def publish() -> list:
        return tool.publish(tmp_path, store.root, tmp_path / "pages", pages=(page,))

    return store, tmp_path / "pages", publish


def test_a_page_is_the_report_with_its_figure_and_names_its_records(fake):
    store, pages, publish = fake
    assert publish() == []  # no records: no page
    store.write(record("table1", "table1/a", 10.0))
    (page,) = publish()
    text = page.read_text()
    assert text.startswith("# Fake table\n") and "| a | b |" in text
    assert "![fake](table1.png)" in text and (pages / "table1.png").read_bytes() == b"png bytes"
    assert bp.built_from(text) == (1, "table1", bp.records_digest(store, "table1")[1])
    assert bp.stale_pages(store, pages) == []


def test_a_report_with_nothing_to_show_leaves_the_page_as_it_was(fake, monkeypatch):
    store, pages, publish = fake
    store.write(record("table1", "table1/a", 10.0))
    (page,) = publish()
    before = page.read_text()
    store.write(record("table1", "table1/b", 10.0))
    monkeypatch.setenv("FAKE_EMPTY", "1")
    assert publish() == []
    assert page.read_text() == before
    assert tool.main(["--check", "--results-dir", str(store.root), "--pages-dir", str(pages)]) == 1


def test_an_unknown_experiment_is_refused():
    with pytest.raises(SystemExit):
        tool.parse_args(["tabel1"])
