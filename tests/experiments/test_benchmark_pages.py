"""The benchmark pages: what they name, when they are stale, the leaderboard's figure."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from gm_plugins.experiments import benchmark_pages as bp
from gm_plugins.experiments import results_store as rs


def record(experiment: str, run: str, seconds: float) -> dict:
    key = rs.RunKey(experiment, run, "c.py", "ab" * 32, {}, 0)
    return rs.build_record(
        key, seconds=seconds, validation={}, test={}, infants=None, start_time=rs.utc_now()
    )


def publish_by_hand(store: rs.ResultsStore, pages: Path, experiment: str) -> Path:
    count, digest = bp.records_digest(store, experiment)
    pages.mkdir(exist_ok=True)
    path = pages / f"{experiment}.md"
    path.write_text(bp.page_text("# Title\nbody\n", experiment, count, digest, "python x"))
    return path


def test_a_page_names_its_records_under_its_title(tmp_path):
    store = rs.ResultsStore(tmp_path / "results")
    store.write(record("table1", "table1/a", 10.0))
    store.write(record("table1", "table1/b", 20.0))
    text = publish_by_hand(store, tmp_path / "pages", "table1").read_text()
    assert text.startswith("# Title\n\n*Built by") and text.endswith("body\n")
    count, experiment, digest = bp.built_from(text)
    assert (count, experiment) == (2, "table1")
    assert (count, digest) == bp.records_digest(store, "table1")
    assert bp.stale_pages(store, tmp_path / "pages") == []


def test_a_page_goes_stale_when_a_record_is_added_or_changed(tmp_path):
    store, pages = rs.ResultsStore(tmp_path / "results"), tmp_path / "pages"
    assert bp.stale_pages(store, pages) == []  # no records, no pages
    store.write(record("confounding", "confounding/a", 10.0))
    assert bp.stale_pages(store, pages) == ["confounding"]  # records without a page
    publish_by_hand(store, pages, "confounding")
    assert bp.stale_pages(store, pages) == []
    store.write(record("confounding", "confounding/a", 11.0))  # the same run, measured again
    assert bp.stale_pages(store, pages) == ["confounding"]
    publish_by_hand(store, pages, "confounding")
    store.write(record("confounding", "confounding/b", 10.0))
    assert bp.stale_pages(store, pages) == ["confounding"]


def test_the_leaderboard_figure_draws_only_configs_with_folds(tmp_path):
    frame = pd.DataFrame(
        dict(
            config=["two-stream_a-concat-fusion_demo_gm-synthetic", "b"],
            runs=[5, 0],
            accuracy_pooled=[0.8, float("nan")],
            accuracy_ci_low=[0.7, float("nan")],
            accuracy_ci_high=[0.9, float("nan")],
        )
    )
    frame.to_csv(tmp_path / "board.csv", index=False)
    figure = bp.leaderboard_figure(tmp_path / "board.csv", tmp_path / "board.png")
    assert figure is not None and figure.stat().st_size > 1000
    assert bp.short_config_name(frame.config[0]) == "a"
    frame.iloc[1:].to_csv(tmp_path / "empty.csv", index=False)
    (tmp_path / "empty.png").write_bytes(b"an old figure")
    assert bp.leaderboard_figure(tmp_path / "empty.csv", tmp_path / "empty.png") is None
    assert not (tmp_path / "empty.png").exists()  # it would contradict the page


def test_the_published_pages_match_the_committed_records():
    root = Path(__file__).resolve().parents[2]
    stale = bp.stale_pages(rs.ResultsStore(root / "results"), root / bp.PAGES_DIR)
    assert stale == [], (
        f"results/ changed since the benchmark pages of {stale} were built: run "
        "python tools/analysis_tools/publish_benchmarks.py and commit docs/en/benchmarks/results"
    )
