"""What ``tools/infer.py`` writes for a batch of classified videos, each file atomically.

::

    OUT/<name>/result.json   the result (JSON; no images)
    OUT/<name>/report.html   a self-contained report (images inline)
    OUT/summary.csv          one row per video: decision, confidence, probabilities, error
    OUT/index.html           links to the reports

Videos with the same file stem get ``<name>_2``, ``<name>_3``... in order.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..utils.io import write_csv_atomic, write_json_atomic

SUMMARY_COLUMNS = ("name", "video", "status", "decision", "predicted_class", "confidence",
                   "abstained", "window_agreement", "num_windows", "num_warnings",
                   "error")  # fmt: skip


def output_names(results: list[dict]) -> list[str]:
    """A distinct folder name per result: its ``name``, numbered from the second repeat on."""
    seen: dict[str, int] = {}
    names = []
    for result in results:
        base = str(result.get("name") or "video")
        seen[base] = seen.get(base, 0) + 1
        names.append(base if seen[base] == 1 else f"{base}_{seen[base]}")
    return names


def summary_rows(results: list[dict], names: list[str]) -> list[dict]:
    """The rows of summary.csv (class probabilities as ``p_<class>`` columns)."""
    rows = []
    for name, result in zip(names, results, strict=True):
        row = {column: None for column in SUMMARY_COLUMNS}
        row.update(
            name=name,
            video=result.get("video"),
            status=result.get("status"),
            decision=result.get("decision"),
            predicted_class=result.get("predicted_class"),
            confidence=result.get("confidence"),
            abstained=result.get("abstained"),
            window_agreement=(result.get("reliability") or {}).get("window_agreement"),
            num_windows=len(result.get("windows") or []),
            num_warnings=len(result.get("warnings") or []),
            error=result.get("error"),
        )
        for label, value in (result.get("class_probabilities") or {}).items():
            row[f"p_{label}"] = value
        rows.append(row)
    return rows


def write_outputs(results: list[dict], out_dir: str | os.PathLike, model=None) -> Path:
    """Write every result's folder, then summary.csv and index.html; returns ``out_dir``.

    Args:
        results: :meth:`GMInferencer.classify` results (failed ones too); a result's
            ``images`` go into its report only.
        out_dir: the output folder (created).
        model: the :class:`~gm_plugins.apis.inference.GMModel` (unused; for future formats).
    """
    from .inference_report import write_index, write_report

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = output_names(results)
    reports = {}
    for name, result in zip(names, results, strict=True):
        images = result.get("images")
        record = {key: value for key, value in result.items() if key != "images"}
        folder = out_dir / name
        folder.mkdir(parents=True, exist_ok=True)
        write_json_atomic(folder / "result.json", record)
        write_report(folder / "report.html", record, images)
        reports[name] = f"{name}/report.html"
    rows = summary_rows(results, names)
    extra = sorted({key for row in rows for key in row} - set(SUMMARY_COLUMNS))
    columns = list(SUMMARY_COLUMNS) + extra
    table = [["" if row.get(c) is None else row.get(c) for c in columns] for row in rows]
    write_csv_atomic(out_dir / "summary.csv", columns, table)
    named = [dict(result, name=name) for name, result in zip(names, results, strict=True)]
    write_index(out_dir / "index.html", named, reports)
    return out_dir
