"""Clinician-readable HTML reports of classified videos.

:func:`render_report` turns the result record of one classified video (the JSON-ready dict of
the inference step) and its stage images into one self-contained HTML5 page: the decision, the
class probabilities, a timeline of the window probabilities, a contact sheet of the
preprocessing stages, the quality record, the warnings and the model bundle. Images are inlined
as PNG data URIs and the style sheet is inline, so a report opens offline, can be mailed as one
file and never contacts a server. :func:`render_index` lists the reports of a batch.

The result record (keys used here; any may be missing in a failed record)::

    name, video, status ("ok" | "failed"), error, decision (class name | "uncertain"),
    predicted_class, confidence, abstained, abstain_reasons, class_names,
    class_probabilities {class: p}, windows [{index, start_s, end_s, probabilities}],
    quality {key: scalar | None | short list}, warnings [str], reliability {temperature,
    window_agreement, mutual_information}, bundle {path, name, manifest_sha256, validation
    {infants, ece_before, ece_after, min_window_agreement, ...}, reliability_diagram (a PNG
    path, inlined)}, timings_s {step: seconds}

Stage images are uint8 RGB arrays (H, W, 3) keyed by :data:`STAGE_ORDER` names.
"""

from __future__ import annotations

import base64
import html
import io
import math
import os
import urllib.parse
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePath

import cv2
import numpy as np

from ..utils.io import write_text_atomic

CLASS_DESCRIPTIONS: dict[str, str] = {
    "WMs": "writhing movements",
    "FMs": "fidgety movements",
    "PR": "poor repertoire",
}
"""Full names of the GM classes, shown next to the short names."""

STAGE_ORDER: tuple[str, ...] = ("original", "mask", "background_removed", "aligned", "flow")
"""Stage image keys, in the order the contact sheet shows them."""

STAGE_CAPTIONS: dict[str, str] = {
    "original": "Original frame",
    "mask": "Infant mask",
    "background_removed": "Background removed",
    "aligned": "Aligned crop",
    "flow": "Optical flow (colour-coded motion)",
}

UNCERTAIN = "uncertain"
DISCLAIMER = (
    "Research tool, not a diagnosis. The output of this software must not replace the "
    "assessment of General Movements by a trained clinician."
)

_STYLE = """
:root { --ink: #1d2433; --muted: #5b6475; --line: #d7dbe3; --accent: #2457a6; }
* { box-sizing: border-box; }
body { font-family: "DejaVu Sans", "Liberation Sans", Arial, sans-serif; color: var(--ink);
  margin: 0 auto; padding: 1.2rem 1.6rem 2rem; max-width: 960px; line-height: 1.4; }
header { border-bottom: 2px solid var(--accent); margin-bottom: 1rem; }
header h1 { margin: 0 0 .2rem; font-size: 1.6rem; word-break: break-all; }
header p { margin: 0 0 .6rem; color: var(--muted); font-size: .9rem; word-break: break-all; }
h2 { font-size: 1.15rem; margin: 1.6rem 0 .5rem; border-bottom: 1px solid var(--line); }
.decision-box { border: 2px solid var(--accent); border-radius: 8px; padding: .8rem 1rem; }
.decision-box.uncertain { border-color: #b7791f; background: #fffaf0; }
.decision-box.failed { border-color: #b83232; background: #fff5f5; }
#decision { font-size: 2rem; font-weight: bold; margin: 0; }
.confidence { margin: .3rem 0 0; font-size: 1.05rem; }
.reasons { margin: .5rem 0 0; }
table { border-collapse: collapse; margin: .3rem 0; font-size: .92rem; }
th, td { border: 1px solid var(--line); padding: .25rem .6rem; text-align: left;
  vertical-align: top; }
th { background: #f2f4f8; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.top td { font-weight: bold; }
.bar { display: inline-block; height: .7rem; background: var(--accent); vertical-align: middle; }
.sheet { display: flex; flex-wrap: wrap; gap: .8rem; }
figure { margin: 0; }
figure img { display: block; max-width: 300px; height: auto; border: 1px solid var(--line);
  image-rendering: pixelated; }
figcaption { font-size: .85rem; color: var(--muted); max-width: 300px; }
img.timeline { max-width: 100%; height: auto; }
pre.error { white-space: pre-wrap; background: #fff5f5; border: 1px solid #f1b0b0;
  padding: .6rem; }
footer { margin-top: 2rem; padding-top: .6rem; border-top: 1px solid var(--line);
  font-size: .82rem; color: var(--muted); word-break: break-all; }
footer .disclaimer { font-weight: bold; color: var(--ink); word-break: normal; }
.none { color: var(--muted); font-style: italic; }
"""


def _e(value: object) -> str:
    """HTML-escaped text of ``value`` (quotes included, safe in attributes)."""
    return html.escape(str(value), quote=True)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool | np.bool_
    )


def _format_value(value: object) -> str:
    """Readable text of a scalar, ``None``, a short list or a small dict (not escaped)."""
    if value is None:
        return "—"
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if _is_number(value):
        return "n/a" if math.isnan(float(value)) else f"{float(value):.4g}"
    if isinstance(value, list | tuple | np.ndarray):
        return "[" + ", ".join(_format_value(item) for item in value) + "]"
    if isinstance(value, Mapping):
        return ", ".join(f"{key}: {_format_value(item)}" for key, item in value.items())
    return str(value)


def _probability(value: object) -> str:
    if not _is_number(value) or math.isnan(float(value)):
        return "n/a"
    return f"{float(value):.2f}"


def class_label(name: str) -> str:
    """``"FMs — fidgety movements"`` for a known class, the name itself otherwise."""
    description = CLASS_DESCRIPTIONS.get(name)
    return f"{name} — {description}" if description else name


def decision_text(result: Mapping) -> str:
    """Text of the decision element: the class with its full name, "Uncertain" or "Failed"."""
    if result.get("status", "ok") != "ok":
        return "Failed"
    decision = result.get("decision")
    if decision is None or str(decision).lower() == UNCERTAIN:
        return "Uncertain"
    return class_label(str(decision))


def png_data_uri(image: np.ndarray) -> str:
    """``data:image/png;base64,...`` of an RGB image.

    Args:
        image: uint8 array (H, W, 3) RGB, or (H, W) / (H, W, 1) grey.

    Raises:
        ValueError: for another dtype or shape, or an empty image.
    """
    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise ValueError(f"Stage images must be uint8, got {array.dtype}")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] != 3 or array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"Stage images must be (H, W, 3) RGB, got shape {array.shape}")
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(np.ascontiguousarray(array), cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError(f"PNG encoding failed for an image of shape {array.shape}")
    return "data:image/png;base64," + base64.b64encode(encoded.tobytes()).decode("ascii")


def _window_times(windows: Sequence[Mapping]) -> np.ndarray:
    """Centre time in seconds of each window (its index when the times are missing)."""
    times = []
    for position, window in enumerate(windows):
        start, end = window.get("start_s"), window.get("end_s")
        if _is_number(start) and _is_number(end):
            times.append((float(start) + float(end)) / 2)
        elif _is_number(start):
            times.append(float(start))
        else:
            times.append(float(window.get("index", position)))
    return np.asarray(times, dtype=float)


def timeline_png(windows: Sequence[Mapping], class_names: Sequence[str]) -> bytes:
    """PNG bytes of the window probabilities over time, one line per class.

    Args:
        windows: N dicts with ``start_s``, ``end_s`` and ``probabilities`` {class: p}.
        class_names: the C classes to draw, in legend order.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    times = _window_times(windows)
    figure = Figure(figsize=(8.0, 2.8), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for name in class_names:
        values = [
            float(p) if _is_number(p := window.get("probabilities", {}).get(name)) else np.nan
            for window in windows
        ]
        axes.plot(times, values, marker="o", markersize=3, linewidth=1.6, label=class_label(name))
    axes.set_xlabel("time in the video (s, window centre)")
    axes.set_ylabel("probability")
    axes.set_ylim(-0.02, 1.02)
    if len(times) and times.min() < times.max():
        axes.set_xlim(times.min(), times.max())
    axes.grid(alpha=0.3)
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _page(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<link rel="icon" href="data:,">\n'
        f"<title>{_e(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        f"{body}\n</body>\n</html>\n"
    )


def _header(result: Mapping) -> str:
    name = result.get("name") or Path(str(result.get("video", "video"))).stem
    video = result.get("video")
    subtitle = f"<p>General Movements classification · video: {_e(video)}</p>" if video else ""
    return f"<header>\n<h1>{_e(name)}</h1>\n{subtitle}\n</header>"


def _footer(result: Mapping) -> str:
    bundle = result.get("bundle") or {}
    lines = []
    if bundle:
        lines.append(
            f"Model bundle: {_e(bundle.get('name', '—'))} ({_e(bundle.get('path', '—'))})<br>"
            f"Manifest SHA-256: <code>{_e(bundle.get('manifest_sha256', '—'))}</code>"
        )
    timings = result.get("timings_s") or {}
    if timings:
        parts = ", ".join(
            f"{_e(step)} {_format_value(seconds)} s" for step, seconds in timings.items()
        )
        lines.append(f"Timings: {parts}")
    lines.append(f'<span class="disclaimer">{_e(DISCLAIMER)}</span>')
    return "<footer>\n" + "<br>\n".join(lines) + "\n</footer>"


def _decision_section(result: Mapping) -> str:
    text = decision_text(result)
    abstained = bool(result.get("abstained")) or text == "Uncertain"
    box_class = "decision-box uncertain" if abstained else "decision-box"
    confidence = result.get("confidence")
    predicted = result.get("predicted_class")
    if _is_number(confidence):
        if abstained and predicted:
            detail = (
                f"No class is reported. Most probable class: {_e(class_label(str(predicted)))} "
                f"with probability {_probability(confidence)}."
            )
        else:
            detail = f"Confidence (top probability): {_probability(confidence)}"
    else:
        detail = "Confidence: n/a"
    parts = [
        f'<section class="{box_class}" aria-label="decision">',
        f'<p id="decision">{_e(text)}</p>',
        f'<p class="confidence" id="confidence">{detail}</p>',
    ]
    reasons = result.get("abstain_reasons") or []
    if abstained:
        if reasons:
            items = "".join(f"<li>{_e(reason)}</li>" for reason in reasons)
            parts.append(
                f'<p class="reasons">Why uncertain:</p>\n<ul id="abstain-reasons">{items}</ul>'
            )
        else:
            parts.append('<p class="reasons none">No reason was recorded.</p>')
    parts.append("</section>")
    return "\n".join(parts)


def _probability_table(result: Mapping) -> str:
    probabilities = result.get("class_probabilities") or {}
    names = list(result.get("class_names") or probabilities)
    if not names:
        return '<h2>Class probabilities</h2>\n<p class="none">No probabilities were recorded.</p>'
    predicted = result.get("predicted_class")
    rows = []
    for name in names:
        value = probabilities.get(name)
        width = round(120 * float(value)) if _is_number(value) and not math.isnan(value) else 0
        row_class = ' class="top"' if name == predicted else ""
        rows.append(
            f"<tr{row_class}><td>{_e(name)}</td><td>{_e(CLASS_DESCRIPTIONS.get(name, ''))}</td>"
            f'<td class="num">{_probability(value)}</td>'
            f'<td><span class="bar" style="width:{max(0, min(width, 120))}px"></span></td></tr>'
        )
    return (
        "<h2>Class probabilities</h2>\n"
        '<table id="probabilities">\n<thead><tr><th>Class</th><th>Meaning</th>'
        "<th>Probability</th><th></th></tr></thead>\n<tbody>\n"
        + "\n".join(rows)
        + "\n</tbody>\n</table>"
    )


def _timeline_section(result: Mapping) -> str:
    windows = result.get("windows") or []
    heading = "<h2>Probabilities over time</h2>"
    if not windows:
        return f'{heading}\n<p class="none" id="timeline-none">No window probabilities.</p>'
    names = list(result.get("class_names") or result.get("class_probabilities") or [])
    if not names:
        names = list(dict.fromkeys(k for w in windows for k in w.get("probabilities", {})))
    uri = "data:image/png;base64," + base64.b64encode(timeline_png(windows, names)).decode("ascii")
    alt = (
        f"Probability of each class ({', '.join(names)}) in {len(windows)} windows "
        "over the video's time"
    )
    return (
        f'{heading}\n<img class="timeline" id="timeline" src="{uri}" alt="{_e(alt)}">\n'
        f"<p>{len(windows)} window(s); each point is one window at its centre time.</p>"
    )


def _stage_keys(images: Mapping[str, np.ndarray]) -> list[str]:
    known = [key for key in STAGE_ORDER if images.get(key) is not None]
    extra = sorted(key for key in images if key not in STAGE_ORDER and images[key] is not None)
    return known + extra


def _contact_sheet_section(images: Mapping[str, np.ndarray] | None) -> str:
    heading = "<h2>Preprocessing stages</h2>"
    keys = _stage_keys(images or {})
    if not keys:
        return f'{heading}\n<p class="none">No stage images.</p>'
    figures = []
    for key in keys:
        caption = STAGE_CAPTIONS.get(key, key.replace("_", " ").capitalize())
        height, width = np.asarray(images[key]).shape[:2]
        figures.append(
            f'<figure data-stage="{_e(key)}"><img src="{png_data_uri(images[key])}" '
            f'alt="{_e(caption)}" width="{width}" height="{height}">'
            f"<figcaption>{_e(caption)}</figcaption></figure>"
        )
    return f'{heading}\n<div class="sheet" id="stages">\n' + "\n".join(figures) + "\n</div>"


def _quality_section(result: Mapping) -> str:
    quality = result.get("quality") or {}
    heading = "<h2>Quality record</h2>"
    if not quality:
        return f'{heading}\n<p class="none">No quality record.</p>'
    rows = "\n".join(
        f'<tr><th scope="row">{_e(key)}</th><td>{_e(_format_value(value))}</td></tr>'
        for key, value in quality.items()
    )
    return f'{heading}\n<table id="quality">\n<tbody>\n{rows}\n</tbody>\n</table>'


def _reliability_section(result: Mapping) -> str:
    """Window agreement of this video and the bundle's calibration on validation infants."""
    heading = "<h2>Reliability</h2>"
    reliability = result.get("reliability") or {}
    bundle = result.get("bundle") or {}
    validation = bundle.get("validation") or {}
    rows = []
    agreement = reliability.get("window_agreement")
    if _is_number(agreement):
        least = validation.get("min_window_agreement")
        bar = f" (validation infants: at least {least:.0%})" if _is_number(least) else ""
        rows.append(("windows agreeing with the decision", f"{agreement:.0%}{bar}"))
    information = reliability.get("mutual_information")
    if _is_number(information):
        rows.append(("disagreement between windows (mutual information, nats)",
                     _format_value(information)))  # fmt: skip
    if _is_number(reliability.get("temperature")):
        rows.append(("calibration temperature", _format_value(reliability["temperature"])))
    if validation:
        rows.append(
            (
                "expected calibration error on the bundle's validation infants",
                f"{_format_value(validation.get('ece_before'))} before, "
                f"{_format_value(validation.get('ece_after'))} after calibration "
                f"({_e(validation.get('infants'))} infants)",
            )
        )
    if not rows:
        return f'{heading}\n<p class="none">No reliability figures were recorded.</p>'
    body = "\n".join(f"<tr><th>{_e(k)}</th><td>{v}</td></tr>" for k, v in rows)
    parts = [heading, f'<table id="reliability">\n<tbody>\n{body}\n</tbody>\n</table>']
    diagram = bundle.get("reliability_diagram")
    if diagram and os.path.isfile(diagram):
        uri = "data:image/png;base64," + base64.b64encode(Path(diagram).read_bytes()).decode()
        parts.append(
            f'<figure><img id="reliability-diagram" src="{uri}" alt="reliability diagram of the '
            "bundle's validation infants\"><figcaption>Reliability diagram of the bundle's "
            "validation infants: accuracy per confidence bin, before and after calibration."
            "</figcaption></figure>"
        )
    elif not validation:
        parts.append(
            '<p class="none">The bundle was not fitted on validation infants: its confidence '
            "is not calibrated and no training domain is checked.</p>"
        )
    return "\n".join(parts)


def _warnings_section(result: Mapping) -> str:
    warnings = result.get("warnings") or []
    heading = "<h2>Warnings</h2>"
    if not warnings:
        return f'{heading}\n<p class="none" id="warnings">none</p>'
    items = "\n".join(f"<li>{_e(warning)}</li>" for warning in warnings)
    return f'{heading}\n<ul id="warnings">\n{items}\n</ul>'


def render_report(result: Mapping, images: Mapping[str, np.ndarray] | None = None) -> str:
    """The HTML5 report of one classified video, self-contained (no external resource).

    Args:
        result: the result record of one video (see the module docstring).
        images: stage images, uint8 RGB (H, W, 3), keyed by :data:`STAGE_ORDER` names (others
            are shown after them); missing or ``None`` stages are left out.

    Returns:
        The complete document as text. A failed record gives a short page with its error.
    """
    name = result.get("name") or Path(str(result.get("video", "video"))).stem
    if result.get("status", "ok") != "ok":
        error = result.get("error") or "no error message was recorded"
        body = "\n".join(
            [
                _header(result),
                '<section class="decision-box failed" aria-label="decision">',
                f'<p id="decision">{_e(decision_text(result))}</p>',
                "<p>The video could not be classified.</p>",
                f'<pre class="error" id="error">{_e(error)}</pre>',
                "</section>",
                _warnings_section(result),
                _footer(result),
            ]
        )
        return _page(f"GM report: {name} (failed)", body)
    body = "\n".join(
        [
            _header(result),
            _decision_section(result),
            _probability_table(result),
            _timeline_section(result),
            _reliability_section(result),
            _contact_sheet_section(images),
            _quality_section(result),
            _warnings_section(result),
            _footer(result),
        ]
    )
    return _page(f"GM report: {name} — {decision_text(result)}", body)


def write_report(
    path: str | os.PathLike, result: Mapping, images: Mapping[str, np.ndarray] | None = None
) -> Path:
    """Write :func:`render_report` to ``path`` atomically (parent folders created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_text_atomic(path, render_report(result, images))


def _href(target: str | os.PathLike) -> str:
    """A link target: a relative path is percent-encoded, an absolute one becomes a file URI."""
    path = PurePath(target)
    if path.is_absolute():
        return Path(path).as_uri()
    return urllib.parse.quote(path.as_posix(), safe="/")


def render_index(results: Sequence[Mapping], reports: Mapping[str, str | os.PathLike]) -> str:
    """The HTML5 page of a batch: one row per video in a table with ``id="summary"``.

    Args:
        results: the result records of the batch, in row order.
        reports: report path per video name, relative to the index's folder (absolute paths
            become ``file://`` links); a video without an entry is listed without a link.
    """
    rows = []
    for result in results:
        name = str(result.get("name") or Path(str(result.get("video", "video"))).stem)
        status = str(result.get("status", "ok"))
        link = (
            f'<a href="{_e(_href(reports[name]))}">{_e(name)}</a>' if name in reports else _e(name)
        )
        confidence = _probability(result.get("confidence")) if status == "ok" else "—"
        error = _e(result.get("error", "")) if status != "ok" else ""
        rows.append(
            f'<tr data-status="{_e(status)}"><td>{link}</td><td>{_e(decision_text(result))}</td>'
            f'<td class="num">{confidence}</td><td>{_e(status)}</td>'
            f'<td class="num">{len(result.get("warnings") or [])}</td><td>{error}</td></tr>'
        )
    failed = sum(1 for result in results if result.get("status", "ok") != "ok")
    counts: dict[str, int] = {}
    for result in results:
        if result.get("status", "ok") == "ok":
            label = decision_text(result)
            counts[label] = counts.get(label, 0) + 1
    breakdown = "; ".join(f"{_e(label)}: {count}" for label, count in sorted(counts.items()))
    body = "\n".join(
        [
            "<header>\n<h1>General Movements classification: batch</h1>",
            f"<p>{len(results)} video(s), {len(results) - failed} classified, {failed} failed"
            + (f" — {breakdown}" if breakdown else "")
            + "</p>\n</header>",
            '<table id="summary">',
            "<thead><tr><th>Video</th><th>Decision</th><th>Confidence</th><th>Status</th>"
            "<th>Warnings</th><th>Error</th></tr></thead>",
            "<tbody>",
            *rows,
            "</tbody>\n</table>",
            f'<footer>\n<span class="disclaimer">{_e(DISCLAIMER)}</span>\n</footer>',
        ]
    )
    return _page("GM reports: batch", body)


def write_index(
    path: str | os.PathLike,
    results: Sequence[Mapping],
    reports: Mapping[str, str | os.PathLike],
) -> Path:
    """Write :func:`render_index` to ``path`` atomically.

    Absolute report paths are made relative to the index's folder first, so the folder can be
    moved or shared as a whole.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    base = path.parent.resolve()
    relative = {
        name: os.path.relpath(Path(target).resolve(), base)
        if PurePath(target).is_absolute()
        else target
        for name, target in reports.items()
    }
    return write_text_atomic(path, render_index(results, relative))
