"""The benchmark pages: built from the store's reports, naming their records, found stale."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from gm_plugins.experiments import benchmark_pages as bp
from gm_plugins.experiments import results_store as rs

#: A stand-in for a tool's --report: writes report.md (with a figure link) and the figure.
FAKE_REPORT = """
import sys
from pathlib import Path
work = Path(sys.argv[sys.argv.index("--work-dir") + 1])
(work / "exp").mkdir(parents=True)
(work / "exp/report.md").write_text("# Fake table\\n\\n| a | b |\\n\\n![fake](fake.png)\\n")
(work / "exp/fake.png").write_bytes(b"png bytes")
"""


def _record(run: str, seconds: float) -> dict:
    key = rs.RunKey("fake", run, "c.py", "ab" * 32, {}, 0)
    return rs.build_record(
        key, seconds=seconds, validation={}, test={}, infants=None, start_time=rs.utc_now()
    )


@pytest.fixture
def fake_page(tmp_path, monkeypatch):
    script = tmp_path / "fake_report.py"
    script.write_text(FAKE_REPORT)
    page = bp.Page("fake", "Fake", (str(script), "--report"), "exp/report.md", "exp/fake.png")
    monkeypatch.setattr(bp, "PAGES", (page,))
    store = rs.ResultsStore(tmp_path / "results")
    return store, tmp_path / "pages"


def test_a_page_is_the_report_with_its_figure_and_names_its_records(fake_page, tmp_path):
    store, pages = fake_page
    assert bp.publish(tmp_path, store.root, pages) == []  # no records: no page
    store.write(_record("fake/a", 10.0))
    store.write(_record("fake/b", 20.0))
    (page,) = bp.publish(tmp_path, store.root, pages)
    text = page.read_text()
    assert text.startswith("# Fake table\n") and "| a | b |" in text
    assert "![fake](fake.png)" in text and (pages / "fake.png").read_bytes() == b"png bytes"
    count, experiment, digest = bp.built_from(text)
    assert (count, experiment) == (2, "fake")
    assert (count, digest) == bp.records_digest(store, "fake")
    assert bp.stale_pages(store, pages) == []


def test_a_page_goes_stale_when_a_record_is_added_or_changed(fake_page, tmp_path):
    store, pages = fake_page
    store.write(_record("fake/a", 10.0))
    bp.publish(tmp_path, store.root, pages)
    store.write(_record("fake/a", 11.0))  # the same run, measured again
    assert bp.stale_pages(store, pages) == ["fake"]
    bp.publish(tmp_path, store.root, pages)
    assert bp.stale_pages(store, pages) == []
    store.write(_record("fake/b", 10.0))
    assert bp.stale_pages(store, pages) == ["fake"]
    (pages / "fake.md").unlink()
    assert bp.stale_pages(store, pages) == ["fake"]  # records without a page


def test_the_leaderboard_figure_draws_only_configs_with_folds(tmp_path):
    frame = pd.DataFrame(
        dict(
            config=["a", "b"],
            runs=[5, 0],
            accuracy_pooled=[0.8, float("nan")],
            accuracy_ci_low=[0.7, float("nan")],
            accuracy_ci_high=[0.9, float("nan")],
        )
    )
    frame.to_csv(tmp_path / "board.csv", index=False)
    figure = bp._leaderboard_figure(tmp_path / "board.csv", tmp_path / "board.png")
    assert figure is not None and figure.stat().st_size > 1000
    frame.iloc[1:].to_csv(tmp_path / "empty.csv", index=False)
    assert bp._leaderboard_figure(tmp_path / "empty.csv", tmp_path / "empty.png") is None
    assert not (tmp_path / "empty.png").exists()


def test_the_published_pages_match_the_committed_records():
    root = Path(__file__).resolve().parents[2]
    stale = bp.stale_pages(rs.ResultsStore(root / "results"), root / bp.PAGES_DIR)
    assert stale == [], (
        f"results/ changed since the benchmark pages of {stale} were built: run "
        "python tools/analysis_tools/publish_benchmarks.py and commit docs/en/benchmarks/results"
    )
