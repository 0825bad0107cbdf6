"""The subjects table (``subjects.csv``): the one reader and validator every tool uses.

A subjects table lists one infant per row::

    subject_id,label,environment,video
    infant_001,FMs,home,videos/infant_001.mp4

``subject_id`` names the infant (it becomes a cache folder name), ``label`` is its GM class (one
of :data:`GM_CLASSES`, or empty for unlabelled videos where allowed), ``video`` is a path
relative to the data root (the table's folder unless given). Other columns (``environment``,
notes, ...) are kept as they are.

:func:`read_subjects` checks every row before it returns and raises one :class:`SubjectsError`
that lists every bad row by line number (the header is line 1), so a hand-written table is
fixed in one pass. Rows whose fields are all empty (as spreadsheets export them) are skipped.

Video paths are checked lexically: a path must stay under the data root once ``..`` parts are
collapsed (``videos/../a.mp4`` is fine, ``../a.mp4`` is not). Symbolic links are followed on
purpose: linking ``DATA/videos`` to a large disk elsewhere is the usual way to keep recordings
out of the project folder, and the table's author chose those links.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path

from .cache import subject_id_problem

GM_CLASSES = ("WMs", "FMs", "PR")
REQUIRED_COLUMNS = ("subject_id", "label", "video")
_EXAMPLE = "subject_id,label,video\ninfant_001,FMs,videos/infant_001.mp4"


class SubjectsError(ValueError):
    """A subjects table that cannot be used; the message names the file and every bad row.

    Attributes:
        path: the table.
        problems: ``(line, message)`` pairs; line 0 for a problem of the whole file.
    """

    def __init__(self, path: str | os.PathLike, problems: Sequence[tuple[int, str]]) -> None:
        self.path = Path(path)
        self.problems = list(problems)
        super().__init__(_format(self.path, self.problems))


def _format(path: Path, problems: list[tuple[int, str]]) -> str:
    whole = [message for line, message in problems if line == 0]
    rows = [(line, message) for line, message in problems if line > 0]
    parts = [f"{path}: {message}" for message in whole]
    if rows:
        count = len({line for line, _ in rows})
        listing = "\n".join(f"  line {line}: {message}" for line, message in rows)
        parts.append(
            f"{path}: {count} bad row(s) (the header is line 1); fix them and rerun:\n{listing}"
        )
    return "\n".join(parts)


def _video_problem(
    data_root: Path, video: str, allow_absolute: bool
) -> tuple[Path | None, str | None]:
    """(resolved path, None) or (None, why the ``video`` field cannot be used)."""
    if not video.strip():
        return None, "video is empty: give the video's path relative to the data root"
    if os.path.isabs(video):
        if allow_absolute:
            return Path(os.path.normpath(video)), None
        return None, (
            f"video {video!r} is an absolute path: write it relative to the data root "
            f"{data_root} (e.g. videos/x.mp4)"
        )
    relative = os.path.normpath(video)
    if relative == ".":
        return None, f"video {video!r} names the data root itself, not a video file"
    if relative == os.pardir or relative.startswith(os.pardir + os.sep):
        return None, (
            f"video {video!r} leads outside the data root {data_root}: move the video under it "
            "(a symbolic link inside it is fine) or choose a data root that contains it"
        )
    return data_root / relative, None


def resolve_video(data_root: str | os.PathLike, video: str, allow_absolute: bool = False) -> Path:
    """The path of a table's ``video`` field: ``data_root / video`` with ``..`` collapsed.

    Args:
        data_root: the folder video paths are relative to.
        video: the field as written in the table.
        allow_absolute: accept an absolute path (returned as it is).

    Raises:
        SubjectsError: the field is empty, absolute (unless allowed) or leads outside
            ``data_root``. Whether the file exists is not checked here.
    """
    path, problem = _video_problem(Path(data_root), video, allow_absolute)
    if problem is not None:
        raise SubjectsError(data_root, [(0, problem)])
    return path  # type: ignore[return-value]


def _open_rows(table: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """(header, [(start line, fields)]) of a CSV file; raises SubjectsError if it is not one."""
    if table.is_dir():
        raise SubjectsError(
            table, [(0, "is a folder: point at the subjects.csv file inside it instead")]
        )
    if not table.is_file():
        raise SubjectsError(
            table,
            [(0, f"not found: write a subjects table there, e.g.\n{_EXAMPLE}")],
        )
    try:
        with open(table, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            records, previous = [], 0
            for fields in reader:
                records.append((previous + 1, fields))
                previous = reader.line_num
    except (UnicodeDecodeError, csv.Error) as error:
        raise SubjectsError(
            table,
            [(0, f"is not a UTF-8 comma-separated text file ({error}): save it as CSV (UTF-8)")],
        ) from None
    records = [(line, fields) for line, fields in records if any(f.strip() for f in fields)]
    if not records:
        raise SubjectsError(table, [(0, f"is empty: it needs a header and rows, e.g.\n{_EXAMPLE}")])
    (_, header), rows = records[0], records[1:]
    return [name.strip() for name in header], rows


def _header_problems(header: list[str], required: Sequence[str]) -> list[str]:
    problems = []
    missing = [name for name in required if name not in header]
    if missing:
        hint = ""
        if len(header) == 1 and any(sep in header[0] for sep in ";\t"):
            hint = " (the header looks separated by ';' or tabs: save the table with commas)"
        problems.append(
            f"missing column(s) {', '.join(missing)} in the header {','.join(header)!r}{hint}; "
            f"the first line must name the columns, e.g. {','.join(REQUIRED_COLUMNS)}"
        )
    repeated = sorted({name for name in header if name and header.count(name) > 1})
    if repeated:
        problems.append(f"column(s) {', '.join(repeated)} appear more than once in the header")
    return problems


def _label_problem(label: str, classes: Sequence[str], require_label: bool) -> str | None:
    if label in classes or (not label and not require_label):
        return None
    allowed = ", ".join(classes)
    if not label:
        return f"label is empty: give one of {allowed}"
    close = [name for name in classes if name.lower() == label.strip().lower()]
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"label {label!r} is not one of {allowed}{hint}"


def read_subjects(
    table: str | os.PathLike,
    data_root: str | os.PathLike | None = None,
    *,
    classes: Sequence[str] = GM_CLASSES,
    require_label: bool = True,
    check_videos: bool = True,
    allow_absolute: bool = False,
) -> list[dict]:
    """Read and check a subjects table; every bad row is reported in one error.

    Args:
        table: path of the CSV file (columns ``subject_id,label,video``, others optional).
        data_root: folder the ``video`` paths are relative to; default the table's folder.
        classes: the allowed labels.
        require_label: an empty label is an error. With False, empty labels (unlabelled
            videos) are allowed and the ``label`` column may be missing (rows get ``""``);
            an unknown non-empty label is still an error.
        check_videos: each video file must exist.
        allow_absolute: accept absolute video paths.

    Returns:
        One dict per row, in table order: the table's columns (strings as written) plus
        ``"line"``, the row's line number in the file (the header is line 1).

    Raises:
        SubjectsError: the file is missing or not a CSV, required columns are missing, it has
            no rows, or some rows are bad (empty or unsafe subject_id, duplicate ids, label
            empty or not in ``classes``, video empty, absolute, outside ``data_root`` or
            missing).
    """
    table = Path(table)
    root = Path(data_root) if data_root is not None else table.parent
    header, records = _open_rows(table)
    required = [c for c in REQUIRED_COLUMNS if require_label or c != "label"]
    header_problems = _header_problems(header, required)
    if header_problems:
        raise SubjectsError(table, [(0, message) for message in header_problems])
    if not records:
        example = f"lists no subjects: add one row per infant under the header, e.g.\n{_EXAMPLE}"
        raise SubjectsError(table, [(0, example)])
    problems: list[tuple[int, str]] = []
    rows: list[dict] = []
    first_line: dict[str, int] = {}
    for line, fields in records:
        while len(fields) > len(header) and not fields[-1].strip():
            fields = fields[:-1]  # spreadsheets pad rows with empty cells
        if len(fields) != len(header):
            counts = f"has {len(fields)} field(s) but the header has {len(header)}"
            problems.append((line, f"{counts}: check the commas (quote a field holding one)"))
            continue
        row = dict(zip(header, fields, strict=True))
        row.setdefault("label", "")
        checks = _row_problems(row, root, classes, require_label, check_videos, allow_absolute)
        problems += [(line, message) for message in checks]
        subject_id = row["subject_id"]
        if subject_id in first_line:
            other = first_line[subject_id]
            problems.append((line, f"subject_id {subject_id!r} is already used on line {other}"))
        elif subject_id:
            first_line[subject_id] = line
        rows.append({**row, "line": line})
    if problems:
        raise SubjectsError(table, problems)
    return rows


def _row_problems(
    row: dict,
    root: Path,
    classes: Sequence[str],
    require_label: bool,
    check_videos: bool,
    allow_absolute: bool,
) -> list[str]:
    problems = []
    id_problem = subject_id_problem(row["subject_id"])
    if id_problem is not None:
        problems.append(f"{id_problem}: use a plain name such as 'infant_007'")
    label_problem = _label_problem(row["label"], classes, require_label)
    if label_problem is not None:
        problems.append(label_problem)
    path, video_problem = _video_problem(root, row["video"], allow_absolute)
    if video_problem is not None:
        problems.append(video_problem)
    elif check_videos and not path.is_file():
        hint = " (write folders with '/', not '\\')" if "\\" in row["video"] else ""
        what = "is a folder, not a video file" if path.is_dir() else "not found"
        problems.append(f"video {row['video']!r}: {path} {what}{hint}")
    return problems


__all__ = ["GM_CLASSES", "REQUIRED_COLUMNS", "SubjectsError", "read_subjects", "resolve_video"]
