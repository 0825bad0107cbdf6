"""gm_plugins.utils.processes: logged commands and resumable stages."""

from __future__ import annotations

import json
import sys

import pytest

from gm_plugins.utils.processes import (
    CommandError,
    Stage,
    run_command,
    run_stage,
    run_stages_in_parallel,
    threads_env,
)


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_a_failed_command_names_itself_its_exit_code_and_the_end_of_its_log(tmp_path):
    log = tmp_path / "logs" / "step.log"
    command = python("import sys; print('\\n'.join(map(str, range(40)))); sys.exit(3)")
    with pytest.raises(CommandError) as caught:
        run_command(command, "training fold 0", log=log, announce=None)
    error = caught.value
    assert error.code == 3 and error.log == log and error.command == command
    message = str(error)
    assert message.startswith(f"training fold 0 failed (exit code 3); log {log}:\n")
    assert message.endswith("\n".join(map(str, range(25, 40))) + "\n")  # the last 15 lines
    assert log.read_text().startswith("$ ")  # the log starts with the command line


def test_appending_keeps_earlier_output(tmp_path):
    log = tmp_path / "run.log"
    run_command(python("print('first')"), "one", log=log, announce=None)
    run_command(python("print('second')"), "two", log=log, append=True, announce=None)
    text = log.read_text()
    assert text.index("first") < text.index("second") and text.count("$ ") == 2


def test_a_stage_writes_its_marker_and_a_rerun_reuses_it(tmp_path, capsys):
    out = tmp_path / "made.txt"
    code = f"open({str(out)!r}, 'a').write('x')"
    stage = Stage("1/1 make", python(code), tmp_path / "stages" / "make.done")
    run_stage(stage)
    assert json.loads(stage.marker.read_text())["seconds"] >= 0 and not stage.reused
    again = Stage("1/1 make", python(code), stage.marker)
    run_stage(again)
    assert again.reused and out.read_text() == "x"  # not run twice
    assert "[1/1 make] already done (make.done); reusing it" in capsys.readouterr().out


def test_a_failed_stage_leaves_no_marker(tmp_path):
    stage = Stage("boom", python("raise SystemExit(2)"), tmp_path / "boom.done")
    with pytest.raises(CommandError, match="stage 'boom' failed \\(exit code 2\\)"):
        run_stage(stage)
    assert not stage.marker.exists()


def test_parallel_stages_each_log_and_mark(tmp_path):
    stages = [
        Stage(name, python(f"print({name!r})"), tmp_path / f"{name}.done", tmp_path / f"{name}.log")
        for name in ("seg", "pose")
    ]
    run_stages_in_parallel(stages, env=threads_env(1))
    for stage in stages:
        assert stage.marker.is_file() and stage.name in stage.log.read_text()


def test_thread_settings_for_children(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    assert threads_env(1)["OMP_NUM_THREADS"] == "1"
    assert threads_env(2, override=False)["OMP_NUM_THREADS"] == "7"
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    assert threads_env(2, override=False)["MKL_NUM_THREADS"] == "2"
