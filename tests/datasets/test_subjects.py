"""The subjects table reader: every bad row reported at once, by line number."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gm_plugins.datasets.subjects import (
    GM_CLASSES,
    SubjectsError,
    read_subjects,
    resolve_video,
)

HEADER = "subject_id,label,environment,video\n"


def _table(root: Path, text: str, videos: tuple[str, ...] = ()) -> Path:
    """Write ``root/subjects.csv`` with ``text`` and an empty file for each of ``videos``."""
    root.mkdir(parents=True, exist_ok=True)
    for video in videos:
        (root / video).parent.mkdir(parents=True, exist_ok=True)
        (root / video).write_bytes(b"\x00")
    table = root / "subjects.csv"
    table.write_text(text)
    return table


def _problems(table: Path, **kwargs) -> dict[int, str]:
    """Line -> joined messages of the SubjectsError that reading ``table`` raises."""
    with pytest.raises(SubjectsError) as caught:
        read_subjects(table, **kwargs)
    assert str(table) in str(caught.value)
    lines: dict[int, str] = {}
    for line, message in caught.value.problems:
        lines[line] = f"{lines[line]} | {message}" if line in lines else message
    return lines


def test_a_good_table_returns_its_rows_as_written_with_line_numbers(tmp_path):
    table = _table(
        tmp_path,
        HEADER + "a1,WMs,home,videos/a1.mp4\n\nb2,PR,clinic,videos/sub/../b2.mp4\n,,,\n",
        videos=("videos/a1.mp4", "videos/b2.mp4"),
    )
    rows = read_subjects(table)
    assert rows == [
        dict(subject_id="a1", label="WMs", environment="home", video="videos/a1.mp4", line=2),
        dict(
            subject_id="b2", label="PR", environment="clinic", video="videos/sub/../b2.mp4", line=4
        ),
    ]
    assert list(rows[0]) == ["subject_id", "label", "environment", "video", "line"]
    assert resolve_video(tmp_path, rows[1]["video"]) == tmp_path / "videos" / "b2.mp4"
    assert GM_CLASSES == ("WMs", "FMs", "PR")


def test_every_bad_row_is_listed_in_one_error_with_its_line(tmp_path):
    outside = tmp_path / "elsewhere.mp4"
    outside.write_bytes(b"\x00")
    table = _table(
        tmp_path / "data",
        HEADER
        + "ok1,FMs,home,videos/ok1.mp4\n"  # line 2
        + ",FMs,home,videos/ok1.mp4\n"  # 3: empty id
        + "a/b,FMs,home,videos/ok1.mp4\n"  # 4: id with a separator
        + "ok1,PR,home,videos/ok1.mp4\n"  # 5: duplicate of line 2
        + "c3,,home,videos/ok1.mp4\n"  # 6: empty label
        + "c4,wms,home,videos/ok1.mp4\n"  # 7: unknown label
        + "c5,WMs,home,\n"  # 8: empty video
        + f"c6,WMs,home,{outside}\n"  # 9: absolute
        + "c7,WMs,home,../elsewhere.mp4\n"  # 10: leaves the data root
        + "c8,WMs,home,videos/missing.mp4\n"  # 11: no such file
        + "c9,WMs,home\n"  # 12: a field short
        + ".hidden,Fidgety,home,videos/../../x.mp4\n",  # 13: three problems
        videos=("videos/ok1.mp4",),
    )
    lines = _problems(table)
    assert sorted(lines) == list(range(3, 14))
    assert "empty" in lines[3]
    assert "path separator" in lines[4]
    assert "'ok1' is already used on line 2" in lines[5]
    assert "label is empty" in lines[6]
    assert "'wms' is not one of WMs, FMs, PR" in lines[7] and "did you mean 'WMs'" in lines[7]
    assert "video is empty" in lines[8]
    assert "absolute path" in lines[9]
    assert "outside the data root" in lines[10]
    assert "not found" in lines[11] and "missing.mp4" in lines[11]
    assert "3 field(s) but the header has 4" in lines[12]
    assert all(part in lines[13] for part in ("starts with a dot", "'Fidgety'", "outside"))
    with pytest.raises(SubjectsError) as caught:
        read_subjects(table)
    message = str(caught.value)
    assert "11 bad row(s)" in message and "header is line 1" in message
    assert all(f"line {n}:" in message for n in range(3, 14)) and "line 2:" not in message


def test_absolute_paths_when_allowed_and_unchecked_videos(tmp_path):
    video = tmp_path / "recordings" / "a.mp4"
    table = _table(tmp_path / "data", HEADER + f"a,WMs,home,{video}\nb,FMs,home,videos/b.mp4\n")
    lines = _problems(table, allow_absolute=True)
    assert sorted(lines) == [2, 3] and all("not found" in m for m in lines.values())
    video.parent.mkdir()
    video.write_bytes(b"\x00")
    rows = read_subjects(table, allow_absolute=True, check_videos=False)
    assert [r["subject_id"] for r in rows] == ["a", "b"]
    assert resolve_video(tmp_path / "data", rows[0]["video"], allow_absolute=True) == video


def test_data_root_defaults_to_the_tables_folder_and_can_be_given(tmp_path):
    table = _table(tmp_path / "tables", HEADER + "a,WMs,home,a.mp4\n")
    (tmp_path / "videos").mkdir()
    (tmp_path / "videos" / "a.mp4").write_bytes(b"\x00")
    assert "not found" in _problems(table)[2]
    assert read_subjects(table, tmp_path / "videos")[0]["subject_id"] == "a"


def test_a_symlinked_video_folder_is_followed(tmp_path):
    store = tmp_path / "big_disk"
    store.mkdir()
    (store / "a.mp4").write_bytes(b"\x00")
    data = tmp_path / "data"
    data.mkdir()
    os.symlink(store, data / "videos")
    table = _table(data, HEADER + "a,WMs,home,videos/a.mp4\n")
    assert read_subjects(table)[0]["video"] == "videos/a.mp4"
    # but a path written to climb out stays refused, whatever lies beyond
    table.write_text(HEADER + "a,WMs,home,videos/../../big_disk/a.mp4\n")
    assert "outside the data root" in _problems(table)[2]


def test_unlabelled_videos(tmp_path):
    table = _table(
        tmp_path,
        HEADER + "a,,home,a.mp4\nb,FMs,home,b.mp4\nc,unsure,home,c.mp4\n",
        videos=("a.mp4", "b.mp4", "c.mp4"),
    )
    assert sorted(_problems(table, require_label=False)) == [4]  # unknown labels still fail
    table.write_text(HEADER + "a,,home,a.mp4\nb,FMs,home,b.mp4\n")
    rows = read_subjects(table, require_label=False)
    assert [r["label"] for r in rows] == ["", "FMs"]
    assert 2 in _problems(table)  # labels are required by default
    table.write_text("subject_id,video\na,a.mp4\n")  # no label column at all
    assert read_subjects(table, require_label=False) == [dict(subject_id="a", video="a.mp4",
                                                              label="", line=2)]  # fmt: skip


def test_other_classes(tmp_path):
    table = _table(tmp_path, HEADER + "a,N,home,a.mp4\nb,FMs,home,a.mp4\n", videos=("a.mp4",))
    assert sorted(_problems(table, classes=("N", "A"))) == [3]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "not found"),
        (b"", "is empty"),
        (b"\xff\xfe\x00s\x00u\x00b", "not a UTF-8 comma-separated"),
        (b"subject_id;label;video\na;WMs;a.mp4\n", "separated by ';'"),
        (b"subject_id,video\na,a.mp4\n", "missing column(s) label"),
        (b"subject_id,label,label,video\n", "appear more than once"),
        (HEADER.encode() + b"\n,,,\n", "lists no subjects"),
    ],
)
def test_whole_file_problems_name_the_file_and_the_fix(tmp_path, content, message):
    table = tmp_path / "subjects.csv"
    if content is not None:
        table.write_bytes(content)
    with pytest.raises(SubjectsError, match=r"subjects\.csv") as caught:
        read_subjects(table)
    assert message in str(caught.value)
    assert caught.value.problems[0][0] == 0


def test_a_folder_or_a_spreadsheet_byte_order_mark(tmp_path):
    with pytest.raises(SubjectsError, match="is a folder"):
        read_subjects(tmp_path)
    table = tmp_path / "subjects.csv"
    table.write_bytes(b"\xef\xbb\xbf" + HEADER.encode() + b"a,WMs,home,a.mp4,,\n")
    (tmp_path / "a.mp4").write_bytes(b"\x00")
    assert read_subjects(table)[0]["subject_id"] == "a"  # BOM and padding cells ignored


@pytest.mark.parametrize(
    ("video", "message"),
    [("", "empty"), ("/abs/a.mp4", "absolute"), ("../a.mp4", "outside"), (".", "itself")],
)
def test_resolve_video_refuses(tmp_path, video, message):
    with pytest.raises(SubjectsError, match=message):
        resolve_video(tmp_path, video)


def test_subjects_error_is_a_value_error():
    assert issubclass(SubjectsError, ValueError)
    error = SubjectsError("x.csv", [(0, "is empty"), (3, "label is empty")])
    assert error.path == Path("x.csv") and error.problems[1] == (3, "label is empty")
    assert str(error).splitlines()[0] == "x.csv: is empty"
