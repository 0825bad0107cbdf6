"""The HTML report of a classified video: rendering checks, and the pages in headless Chromium.

The browser tests need ``/usr/bin/chromium`` and ``/usr/bin/chromedriver`` (``bash
requirements/browser.sh``) and selenium; they fail without them unless
``GM_PLUGINS_SKIP_BROWSER=1`` opts out. Run this file as a script to write the screenshot of an
example report, or of a real one given as its argument (the README shows ``make demo``'s
``work_dirs/demo/infer/s0000/report.html``), to ``docs/report_example.png``.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import cv2
import numpy as np
import pytest

from gm_plugins.apis import inference_report
from gm_plugins.apis.inference_report import (
    STAGE_ORDER,
    decision_text,
    png_data_uri,
    render_index,
    render_report,
    write_index,
    write_report,
)

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SKIP_ENV = "GM_PLUGINS_SKIP_BROWSER"
BROWSER_MESSAGE = (
    f"The browser test needs Chromium ({CHROMIUM}), its WebDriver ({CHROMEDRIVER}) and selenium: "
    "run `bash requirements/browser.sh` and `pip install -r requirements/tests.txt` "
    f"(`make test` runs the first), or set {SKIP_ENV}=1 to skip it explicitly."
)
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
)
REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_SCREENSHOT = REPO_ROOT / "docs" / "report_example.png"
CLASSES = ["WMs", "FMs", "PR"]
# A network reference in an attribute or in CSS: src=/href= to http(s) or protocol-relative URLs.
NETWORK_REFERENCE = re.compile(
    r"""(?:\b(?:src|href|srcset|action|poster)\s*=\s*["']?\s*(?:https?:)?//)"""
    r"""|(?:url\(\s*["']?\s*(?:https?:)?//)|@import""",
    re.IGNORECASE,
)


def make_result(
    name: str = "infant_001",
    decision: str = "FMs",
    abstained: bool = False,
    num_windows: int = 10,
    seed: int = 0,
) -> dict:
    """A result record of the inference step, with ``num_windows`` windows of 6 s."""
    rng = np.random.default_rng(seed)
    base = np.array([0.1, 0.8, 0.1]) if decision != "uncertain" else np.array([0.3, 0.41, 0.29])
    windows = []
    for index in range(num_windows):
        probabilities = rng.dirichlet(base * 40)
        windows.append(
            {
                "index": index,
                "start_s": 6.0 * index,
                "end_s": 6.0 * index + 6.0,
                "probabilities": dict(zip(CLASSES, probabilities.round(4).tolist(), strict=True)),
            }
        )
    top = float(base.max())
    reasons = (
        [
            f"top probability {top:.2f} is below the bundle's threshold 0.5",
            "alignment fell back: alignment_failed (no keypoints <3 frames)",
        ]
        if abstained
        else []
    )
    return {
        "video": f"/data/videos/{name}.mp4",
        "name": name,
        "status": "ok",
        "decision": decision,
        "predicted_class": "FMs",
        "confidence": top,
        "abstained": abstained,
        "abstain_reasons": reasons,
        "class_names": list(CLASSES),
        "class_probabilities": dict(zip(CLASSES, base.tolist(), strict=True)),
        "windows": windows,
        "quality": {
            "fps": 30.0,
            "sample_fps": 6.0,
            "duration_s": 6.0 * num_windows,
            "frames": 36 * num_windows,
            "original_shape": [240, 320],
            "mask_area_median": 0.12,
            "keypoint_score_median": 0.7,
            "alignment_fallback": abstained,
            "fallback_reason": "alignment_failed" if abstained else None,
        },
        "warnings": ["keypoint score below 0.3 in 4 of 360 frames"],
        "bundle": {
            "path": "/models/gm_bundle_v1",
            "name": "gm_bundle_v1",
            "manifest_sha256": "3f" * 32,
        },
        "timings_s": {"preprocess": 3.1, "classify": 0.4},
    }


def make_failed(name: str = "infant_002") -> dict:
    """A failed record: only name, video, status and an error (with characters to escape)."""
    return {
        "video": f"/data/videos/{name}.mp4",
        "name": name,
        "status": "failed",
        "error": "ValueError: could not decode frame <0> & stopped",
    }


def random_images(keys: tuple[str, ...] = STAGE_ORDER, size: int = 64, seed: int = 0) -> dict:
    """Random uint8 RGB stage images (size, size, 3) for ``keys``."""
    rng = np.random.default_rng(seed)
    return {key: rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for key in keys}


class _TagCollector(HTMLParser):
    """Start tags of a document with their attributes, and its text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(document: str) -> _TagCollector:
    collector = _TagCollector()
    collector.feed(document)
    collector.close()
    return collector


def images_of(document: str) -> list[dict[str, str | None]]:
    return [attrs for tag, attrs in parse(document).tags if tag == "img"]


def element_text(document: str, element_id: str) -> str:
    """Unescaped text of the element with ``id`` (no nested tags of the same name)."""
    match = re.search(rf'<(\w+)[^>]*\bid="{element_id}"[^>]*>(.*?)</\1>', document, re.DOTALL)
    assert match, f"no element with id={element_id}"
    return "".join(parse(match.group(2)).text)


def decode_data_uri(uri: str) -> np.ndarray:
    """The RGB image of a ``data:image/png;base64,...`` URI."""
    prefix = "data:image/png;base64,"
    assert uri.startswith(prefix), uri[:40]
    data = np.frombuffer(base64.b64decode(uri[len(prefix) :], validate=True), np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    assert image is not None, "the data URI is not a decodable PNG"
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


# --- rendering, no browser -------------------------------------------------------------------


def test_report_decision_probabilities_and_inline_images():
    result, images = make_result(), random_images()
    document = render_report(result, images)
    assert document.startswith("<!DOCTYPE html>")
    assert '<meta charset="utf-8">' in document
    assert element_text(document, "decision") == "FMs — fidgety movements"
    assert "0.80" in element_text(document, "confidence")
    for full_name in ("writhing movements", "fidgety movements", "poor repertoire"):
        assert full_name in element_text(document, "probabilities")
    assert "Research tool, not a diagnosis" in document
    assert "3f" * 32 in document and "gm_bundle_v1" in document

    tags = images_of(document)
    assert len(tags) == len(images) + 1  # the stages and the timeline
    for attrs in tags:
        assert attrs.get("alt"), f"<img> without alt text: {str(attrs)[:80]}"
        assert attrs["src"].startswith("data:image/png;base64,")
    stage_uris = [attrs["src"] for attrs in tags if attrs.get("id") != "timeline"]
    for key, uri in zip(STAGE_ORDER, stage_uris, strict=True):
        np.testing.assert_array_equal(decode_data_uri(uri), images[key])  # RGB order kept
    timeline = decode_data_uri(next(a["src"] for a in tags if a.get("id") == "timeline"))
    assert timeline.shape[0] > 100 and timeline.shape[1] > 300
    assert timeline.std() > 0  # something is drawn


def test_report_has_no_network_references():
    document = render_report(make_result(), random_images())
    assert not NETWORK_REFERENCE.search(document), NETWORK_REFERENCE.search(document)
    assert "<script" not in document.lower()
    # the pattern does catch what it must
    assert NETWORK_REFERENCE.search('<img src="https://cdn.example/x.png">')
    assert NETWORK_REFERENCE.search("<link href='//fonts.example/css'>")
    assert NETWORK_REFERENCE.search("body { background: url( http://x/y.png) }")


def test_stages_in_order_with_captions_and_missing_ones_left_out():
    images = random_images(("flow", "original", "aligned", "mask"))  # no background removal
    document = render_report(make_result(), images)
    stages = [attrs["data-stage"] for tag, attrs in parse(document).tags if tag == "figure"]
    assert stages == ["original", "mask", "aligned", "flow"]
    assert "Background removed" not in document
    for key in stages:
        assert inference_report.STAGE_CAPTIONS[key] in document
    assert len(images_of(document)) == 5

    bare = render_report(make_result(), None)
    assert len(images_of(bare)) == 1 and "No stage images" in bare


def test_grey_images_are_shown_and_wrong_ones_refused():
    grey = np.arange(64 * 48, dtype=np.uint8).reshape(48, 64)
    np.testing.assert_array_equal(decode_data_uri(png_data_uri(grey)), np.dstack([grey] * 3))
    with pytest.raises(ValueError, match="uint8"):
        png_data_uri(np.zeros((8, 8, 3), np.float32))
    with pytest.raises(ValueError, match="shape"):
        png_data_uri(np.zeros((8, 8, 4), np.uint8))


def test_text_is_escaped():
    hostile = "<script>alert(1)</script>"
    result = make_result(name=f"baby {hostile}", decision="uncertain", abstained=True)
    result["video"] = f"/v/{hostile}.mp4"
    result["warnings"] = [f"warning {hostile}"]
    result["abstain_reasons"] = [f"reason {hostile}"]
    result["quality"]["note"] = hostile
    result["bundle"]["name"] = hostile
    document = render_report(result, random_images(("original",)))
    assert "<script>" not in document
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in document
    assert element_text(document, "abstain-reasons") == f"reason {hostile}"  # shown as text
    assert element_text(document, "warnings").strip() == f"warning {hostile}"

    failed = make_failed(name=hostile)
    failed["error"] = f"crash {hostile} & more"
    for page in (render_report(failed), render_index([failed], {hostile: f"{hostile}.html"})):
        assert "<script>" not in page
        assert "&lt;script&gt;" in page


def test_abstained_result_shows_uncertain_and_reasons():
    result = make_result(decision="uncertain", abstained=True)
    document = render_report(result, random_images())
    assert element_text(document, "decision") == "Uncertain"
    reasons = element_text(document, "abstain-reasons")
    assert "below the bundle's threshold 0.5" in reasons
    assert "alignment fell back: alignment_failed (no keypoints <3 frames)" in reasons
    assert "Most probable class: FMs — fidgety movements" in element_text(document, "confidence")
    assert 'class="decision-box uncertain"' in document


def test_no_windows_and_no_warnings_are_said():
    result = make_result(num_windows=0)
    result["warnings"] = []
    document = render_report(result, random_images(("original",)))
    assert "No window probabilities" in element_text(document, "timeline-none")
    assert len(images_of(document)) == 1  # no timeline image
    assert element_text(document, "warnings") == "none"


def test_failed_result_is_a_short_page_with_the_error():
    document = render_report(make_failed(), random_images())
    assert element_text(document, "decision") == "Failed"
    assert element_text(document, "error") == "ValueError: could not decode frame <0> & stopped"
    assert "&lt;0&gt; &amp; stopped" in document
    assert images_of(document) == []
    assert "Research tool, not a diagnosis" in document
    assert decision_text({"status": "ok", "decision": "XYZ"}) == "XYZ"
    assert decision_text({"status": "ok", "decision": "PR"}) == "PR — poor repertoire"


def test_write_report_is_atomic(tmp_path, monkeypatch):
    target = tmp_path / "nested" / "reports" / "infant_001.html"
    result, images = make_result(), random_images()
    assert write_report(target, result, images) == target
    assert target.read_text(encoding="utf-8") == render_report(result, images)
    assert [p.name for p in target.parent.iterdir()] == [target.name]  # no temporaries left

    # A write that fails before the rename leaves the old report whole and no temporary behind.
    old = target.read_text(encoding="utf-8")

    def refuse(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("gm_plugins.utils.io.os.replace", refuse)
    with pytest.raises(OSError, match="disk full"):
        write_report(target, make_result(decision="uncertain", abstained=True))
    assert target.read_text(encoding="utf-8") == old
    assert [p.name for p in target.parent.iterdir()] == [target.name]


def test_index_rows_links_and_errors(tmp_path):
    results = [make_result("infant 001"), make_failed("infant_002"), make_result("infant_003")]
    reports = {"infant 001": "reports/infant 001.html", "infant_002": "reports/infant_002.html"}
    document = render_index(results, reports)
    summary = re.search(r'<table id="summary">.*?</table>', document, re.DOTALL).group(0)
    rows = re.findall(r"<tr data-status=.*?</tr>", summary, re.DOTALL)
    assert len(rows) == 3
    assert 'href="reports/infant%20001.html"' in rows[0] and "FMs — fidgety movements" in rows[0]
    assert "0.80" in rows[0] and ">ok<" in rows[0] and ">1<" in rows[0]
    assert ">failed<" in rows[1] and "could not decode frame &lt;0&gt;" in rows[1]
    assert "<a " not in rows[2]  # no report given: listed without a link
    assert "2 classified, 1 failed" in document
    assert not NETWORK_REFERENCE.search(document)

    index = tmp_path / "batch" / "index.html"
    absolute = {"infant 001": tmp_path / "batch" / "reports" / "infant 001.html"}
    write_index(index, results[:1], absolute)
    assert 'href="reports/infant%20001.html"' in index.read_text(encoding="utf-8")
    assert [p.name for p in index.parent.iterdir()] == ["index.html"]


# --- headless Chromium -----------------------------------------------------------------------


def require_browser() -> None:
    """Skip on the explicit opt-out; fail when Chromium, its driver or selenium is missing."""
    if os.environ.get(SKIP_ENV) == "1":
        pytest.skip(BROWSER_MESSAGE)
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium")
    if missing:
        pytest.fail(f"Missing: {', '.join(missing)}. {BROWSER_MESSAGE}", pytrace=False)


@contextlib.contextmanager
def chromium(width: int = 1000, height: int = 1400) -> Iterator[object]:
    """A headless Chromium WebDriver with a fresh profile, console logs captured."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="gm-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        driver.set_page_load_timeout(30)
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def console_errors(driver) -> list[dict]:
    """SEVERE console entries since the last call."""
    return [entry for entry in driver.get_log("browser") if entry.get("level") == "SEVERE"]


def image_states(driver) -> list[dict]:
    return driver.execute_script(
        "return Array.from(document.images).map(i => "
        "({alt: i.alt, complete: i.complete, width: i.naturalWidth, height: i.naturalHeight}));"
    )


@pytest.fixture(scope="module")
def browser():
    require_browser()
    with chromium() as driver:
        yield driver


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> dict[str, Path]:
    """A batch folder: two reports (one ok, one failed) and their index."""
    folder = tmp_path_factory.mktemp("batch")
    ok, failed = make_result(), make_failed()
    paths = {
        "ok": write_report(folder / "reports" / "infant_001.html", ok, random_images()),
        "failed": write_report(folder / "reports" / "infant_002.html", failed),
    }
    paths["index"] = write_index(
        folder / "index.html",
        [ok, failed],
        {ok["name"]: paths["ok"].resolve(), failed["name"]: paths["failed"].resolve()},
    )
    return paths


def test_report_in_browser(browser, pages):
    from selenium.webdriver.common.by import By

    console_errors(browser)  # drop anything before this test
    browser.get(pages["ok"].resolve().as_uri())
    assert browser.find_element(By.ID, "decision").text == "FMs — fidgety movements"
    states = image_states(browser)
    assert len(states) == len(STAGE_ORDER) + 1
    for state in states:
        assert state["alt"] and state["complete"] and state["width"] > 0, state
    assert console_errors(browser) == []

    browser.get(pages["failed"].resolve().as_uri())
    assert browser.find_element(By.ID, "decision").text == "Failed"
    assert "frame <0> & stopped" in browser.find_element(By.ID, "error").text
    assert console_errors(browser) == []


def test_index_in_browser_links_to_the_report(browser, pages):
    from selenium.webdriver.common.by import By

    console_errors(browser)
    browser.get(pages["index"].resolve().as_uri())
    rows = browser.find_elements(By.CSS_SELECTOR, "#summary tbody tr")
    assert [row.find_element(By.TAG_NAME, "td").text for row in rows] == [
        "infant_001",
        "infant_002",
    ]
    cells = [[cell.text for cell in row.find_elements(By.TAG_NAME, "td")] for row in rows]
    assert cells[0][1:5] == ["FMs — fidgety movements", "0.80", "ok", "1"]
    assert cells[1][1] == "Failed" and cells[1][3] == "failed"
    assert "could not decode frame <0>" in cells[1][5]
    assert console_errors(browser) == []

    rows[0].find_element(By.TAG_NAME, "a").click()
    deadline = time.monotonic() + 10
    while not browser.current_url.endswith("/reports/infant_001.html"):
        assert time.monotonic() < deadline, (
            f"the link did not open the report: {browser.current_url}"
        )
        time.sleep(0.05)
    assert browser.find_element(By.ID, "decision").text == "FMs — fidgety movements"
    assert all(state["width"] > 0 for state in image_states(browser))
    assert console_errors(browser) == []


# --- example screenshot for the documentation ------------------------------------------------


def example_images(height: int = 240, width: int = 320) -> dict[str, np.ndarray]:
    """Drawn stage images of a supine infant on a mattress, uint8 RGB (H, W, 3)."""
    rows, columns = np.mgrid[0:height, 0:width]
    mattress = np.zeros((height, width, 3), np.uint8)
    mattress[:] = (196, 214, 232)
    mattress[(columns // 16) % 2 == 0] = (184, 204, 226)  # striped sheet
    body = np.zeros((height, width), np.uint8)
    centre = (width // 2, height // 2 + 10)
    cv2.ellipse(body, centre, (34, 52), 0, 0, 360, 255, -1)  # trunk
    cv2.circle(body, (centre[0], centre[1] - 76), 28, 255, -1)  # head
    limbs = [((-30, -35), (-78, -5)), ((30, -35), (80, -15)), ((-16, 45), (-40, 105))]
    limbs.append(((16, 45), (46, 100)))
    for (ax, ay), (bx, by) in limbs:
        cv2.line(body, (centre[0] + ax, centre[1] + ay), (centre[0] + bx, centre[1] + by), 255, 16)
    original = mattress.copy()
    original[body > 0] = (236, 188, 160)  # skin
    cv2.ellipse(original, centre, (34, 40), 0, 0, 360, (120, 170, 110), -1)  # romper
    original[body == 0] = mattress[body == 0]
    cv2.circle(original, (40, 40), 18, (230, 90, 80), -1)  # a toy
    mask = np.dstack([body] * 3)
    removed = np.where(mask > 0, original, 0).astype(np.uint8)
    ys, xs = np.nonzero(body)
    crop = removed[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    side = max(crop.shape[:2])
    square = np.zeros((side, side, 3), np.uint8)
    top, left = (side - crop.shape[0]) // 2, (side - crop.shape[1]) // 2
    square[top : top + crop.shape[0], left : left + crop.shape[1]] = crop
    aligned = cv2.resize(square, (192, 192), interpolation=cv2.INTER_AREA)
    # Flow: the limbs swing around the trunk centre; hue = direction, value = speed.
    dx, dy = -(rows - centre[1]) * 0.05, (columns - centre[0]) * 0.05
    speed = np.hypot(dx, dy) * (body > 0) * (np.hypot(columns - centre[0], rows - centre[1]) > 45)
    angle = (np.degrees(np.arctan2(dy, dx)) % 360) / 2
    hsv = np.dstack([angle, np.full_like(angle, 255), 255 * speed / max(speed.max(), 1e-6)])
    flow = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)
    return {
        "original": original,
        "mask": mask,
        "background_removed": removed,
        "aligned": aligned,
        "flow": flow,
    }


def example_result() -> dict:
    """A classified 2-minute video with 40 windows drifting towards fidgety movements."""
    result = make_result(num_windows=40, seed=3)
    times = np.arange(40) * 3.0
    for window, t in zip(result["windows"], times, strict=True):
        scores = np.array([1.1 - np.tanh((t - 30) / 20), 1.0 + np.tanh((t - 30) / 20), 0.35])
        scores = scores + 0.1 * np.array([np.cos(t / 9), np.sin(t / 7), np.cos(t / 11)]) + 0.05
        window.update(start_s=float(t), end_s=float(t + 4.0))
        window["probabilities"] = dict(zip(CLASSES, (scores / scores.sum()).round(3), strict=True))
    result["quality"].update(duration_s=122.0, frames=732)
    result.update(confidence=0.83, class_probabilities={"WMs": 0.1, "FMs": 0.83, "PR": 0.07})
    return result


def save_example_screenshot(
    path: str | os.PathLike = EXAMPLE_SCREENSHOT, report: str | os.PathLike | None = None
) -> Path:
    """Open a report (default: the drawn example) in headless Chromium, save a full-page PNG."""
    from PIL import Image

    path = Path(path)
    with tempfile.TemporaryDirectory() as folder, chromium(1000, 2200) as driver:
        if report is None:
            report = write_report(
                Path(folder) / "infant_001.html", example_result(), example_images()
            )
        report = Path(report)
        driver.get(report.resolve().as_uri())
        height = driver.execute_script("return document.documentElement.scrollHeight;")
        driver.set_window_size(1000, min(int(height) + 40, 4000))
        path.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(path))
    with Image.open(path) as image:  # a palette PNG keeps the text sharp at a fraction of the size
        image.convert("RGB").quantize(colors=256, dither=Image.Dither.NONE).save(
            path, optimize=True
        )
    return path


if __name__ == "__main__":
    # python tests/apis/test_inference_report.py [work_dirs/demo/infer/s0000/report.html]
    print(f"wrote {save_example_screenshot(report=sys.argv[1] if len(sys.argv) > 1 else None)}")


def test_reliability_shows_agreement_calibration_and_the_bundles_diagram(tmp_path):
    diagram = tmp_path / "reliability.png"
    _, encoded = cv2.imencode(".png", np.full((20, 30, 3), 128, np.uint8))
    diagram.write_bytes(encoded.tobytes())
    result = make_result()
    result["reliability"] = dict(temperature=1.85, window_agreement=0.47, mutual_information=0.2)
    result["bundle"] = dict(
        name="demo",
        path="bundle",
        manifest_sha256="ab",
        validation=dict(infants=12, ece_before=0.192, ece_after=0.156, min_window_agreement=0.53),
        reliability_diagram=str(diagram),
    )
    document = render_report(result, random_images(("original",)))
    table = element_text(document, "reliability")
    assert "47%" in table and "at least 53%" in table
    assert "0.192 before, 0.156 after calibration (12 infants)" in table
    assert 'id="reliability-diagram"' in document
    assert base64.b64encode(encoded.tobytes()).decode() in document  # inlined, offline
    unfitted = make_result()
    unfitted["bundle"] = dict(name="old", path="b", manifest_sha256="cd")
    unfitted["reliability"] = dict(temperature=1.0, window_agreement=0.9, mutual_information=0.0)
    assert "not fitted on validation infants" in render_report(unfitted)
