"""gm_plugins.utils.config.load_config: the checks every tool relies on."""

from __future__ import annotations

import pytest

from gm_plugins.utils.config import ConfigError, load_config


def write(path, text):
    path.write_text(text)
    return path


def test_overrides_are_merged_and_required_keys_checked(tmp_path):
    path = write(tmp_path / "c.py", "default_scope = 'mmaction'\nmodel = dict(depth=18)\n")
    cfg = load_config(path, {"model.depth": 50}, required=("model",))
    assert cfg.model.depth == 50


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"Config file not found: .*nope\.py"):
        load_config(tmp_path / "nope.py")


def test_a_wrong_scope_is_named_with_the_accepted_ones(tmp_path):
    path = write(tmp_path / "c.py", "default_scope = 'mmfoo'\n")
    with pytest.raises(ConfigError, match=r"c\.py: default_scope='mmfoo'; set it to one of"):
        load_config(path)
    path = write(tmp_path / "seg.py", "default_scope = 'mmseg'\n")
    assert load_config(path).default_scope == "mmseg"
    with pytest.raises(ConfigError, match="one of \\('mmaction',\\)"):
        load_config(path, scopes=("mmaction",))


def test_a_missing_key_names_the_file_and_the_key(tmp_path):
    path = write(tmp_path / "c.py", "default_scope = 'mmaction'\n")
    with pytest.raises(ConfigError, match=r"c\.py has no preprocess_pipeline"):
        load_config(path, required=("preprocess_pipeline",))
