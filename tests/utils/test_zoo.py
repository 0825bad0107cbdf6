"""Publishing into the zoo and loading from it: names carry the hash, changed files are refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from gm_plugins.utils.zoo import (
    ZooError,
    publish_checkpoint,
    publish_file,
    published_prefix,
    set_metafile_weights,
    sha256_of,
    verify_published,
    zoo_model,
    zoo_model_of_weights,
    zoo_models,
)


def training_checkpoint(path: Path) -> Path:
    """What tools/train.py leaves: weights, optimizer state, message hub, meta."""
    torch.manual_seed(0)
    layer = torch.nn.Linear(8, 3)
    optimizer = torch.optim.AdamW(layer.parameters())
    layer(torch.randn(2, 8)).sum().backward()
    optimizer.step()
    torch.save(
        dict(
            state_dict=layer.state_dict(),
            optimizer=optimizer.state_dict(),
            param_schedulers=[dict(last_epoch=3)],
            message_hub=dict(log_scalars={}),
            meta=dict(epoch=3, iter=30, dataset_meta=dict(classes=("a", "b")), hook_msgs={}),
        ),
        path,
    )
    return path


def test_a_published_checkpoint_keeps_weights_and_meta_only_and_is_named_by_its_hash(tmp_path):
    source = training_checkpoint(tmp_path / "epoch_3.pth")
    published = publish_checkpoint(source, tmp_path / "zoo", "toy-model")
    prefix = published_prefix(published)
    assert published.name == f"toy-model-{prefix}.pth"
    assert sha256_of(published).startswith(prefix)
    loaded = torch.load(published, weights_only=True)
    assert set(loaded) == {"state_dict", "meta"}
    assert loaded["meta"]["dataset_meta"] == dict(classes=("a", "b"))
    assert "hook_msgs" not in loaded["meta"]
    original = torch.load(source, weights_only=True)["state_dict"]
    for key, value in original.items():
        assert torch.equal(loaded["state_dict"][key], value)
    assert published.stat().st_size < source.stat().st_size  # optimizer state gone
    assert [p.name for p in (tmp_path / "zoo").iterdir()] == [published.name]  # no temporaries


def test_fp16_publishing_halves_the_floating_weights(tmp_path):
    source = training_checkpoint(tmp_path / "epoch_3.pth")
    full = publish_checkpoint(source, tmp_path / "zoo", "m")
    half = publish_checkpoint(source, tmp_path / "zoo", "m", fp16=True)
    state = torch.load(half, weights_only=True)["state_dict"]
    assert all(value.dtype == torch.float16 for value in state.values())
    reference = torch.load(full, weights_only=True)["state_dict"]
    for key, value in reference.items():
        assert torch.allclose(state[key].float(), value, atol=1e-3)
    # loading copies fp16 weights into the float32 model
    layer = torch.nn.Linear(8, 3)
    layer.load_state_dict(state)
    assert layer.weight.dtype == torch.float32


def test_a_changed_published_file_is_refused_with_the_fix(tmp_path):
    published = publish_checkpoint(training_checkpoint(tmp_path / "e.pth"), tmp_path, "m")
    assert verify_published(published) == sha256_of(published)
    data = bytearray(published.read_bytes())
    data[-20] ^= 0xFF
    published.write_bytes(bytes(data))
    with pytest.raises(ZooError, match=r"changed or damaged.*publish_model\.py"):
        verify_published(published)


def test_files_without_a_hash_in_their_name_are_not_checked_unless_a_hash_is_given(tmp_path):
    own = tmp_path / "epoch_3.pth"
    own.write_bytes(b"weights")
    assert verify_published(own) == ""
    with pytest.raises(ZooError):
        verify_published(own, sha256="0" * 64)
    assert verify_published(own, sha256=sha256_of(own)) == sha256_of(own)


def test_a_published_bundle_archive_is_copied_under_its_hash(tmp_path):
    archive = tmp_path / "bundle.zip"
    archive.write_bytes(b"PK not really")
    published = publish_file(archive, tmp_path / "zoo", "demo_bundle")
    assert published.suffix == ".zip" and published.read_bytes() == archive.read_bytes()
    assert verify_published(published)


def write_zoo(root: Path, weights: Path) -> Path:
    (root / "configs").mkdir(parents=True)
    metafile = root / "configs" / "metafile.yml"
    metafile.write_text(
        "# the toy family\n"
        + yaml.safe_dump(
            dict(
                Models=[
                    dict(
                        Name="toy",
                        Config="configs/toy.py",
                        Metadata=dict(SHA256="x", Iterations=30),
                        Results=[dict(Task="Toy", Metrics={"Accuracy": 0.75})],
                        Weights="zoo/old.pth",
                    )
                ]
            ),
            sort_keys=False,
        )
    )
    (root / "model-index.yml").write_text("Import:\n  - configs/metafile.yml\n")
    return metafile


def test_the_index_finds_models_and_publishing_updates_their_entry(tmp_path):
    weights = publish_checkpoint(training_checkpoint(tmp_path / "e.pth"), tmp_path / "zoo", "toy")
    metafile = write_zoo(tmp_path, weights)
    relative = weights.relative_to(tmp_path)
    previous = set_metafile_weights(metafile, "toy", relative.as_posix(), root=tmp_path)
    assert previous == "zoo/old.pth"
    assert metafile.read_text().startswith("# the toy family\n")
    model = zoo_model("toy", tmp_path)
    assert model.weights == relative.as_posix() and model.sha256 == sha256_of(weights)
    assert model.metric("Accuracy") == 0.75 and model.metadata["Iterations"] == 30
    assert zoo_model_of_weights(relative, tmp_path).name == "toy"
    assert [m.name for m in zoo_models(tmp_path)] == ["toy"]
    with pytest.raises(ZooError, match="no zoo model 'other'; the zoo has: toy"):
        zoo_model("other", tmp_path)
    with pytest.raises(ZooError, match="has no model 'other'"):
        set_metafile_weights(metafile, "other", relative.as_posix(), root=tmp_path)
