"""The model zoo: published weights kept in the repository, found through ``model-index.yml``.

OpenMMLab's form: ``model-index.yml`` at the repository root imports one ``metafile.yml`` per
config family; each model entry names its ``Config``, its ``Metadata`` (training data,
iterations, wall time, machine), its ``Results`` (metrics on held-out synthetic infants) and its
``Weights``, here a path inside the repository (``zoo/...``) instead of a URL.

A published file is named ``<name>-<first 8 hex digits of its sha256>.<ext>`` (what OpenMMLab's
``publish_model.py`` does); :func:`verify_published` recomputes the hash of such a file and
refuses one whose content no longer matches its name, and a metafile entry also records the whole
sha256. :func:`publish_checkpoint` writes such a file from a training checkpoint: optimizer,
scheduler and message-hub state dropped, floating weights optionally stored as fp16 (they are
loaded back into the float32 model).
"""

from __future__ import annotations

import hashlib
import io
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .io import write_bytes_atomic, write_text_atomic

#: The zoo's index at the repository root.
MODEL_INDEX = "model-index.yml"
#: ``<stem>-<8 hex>.<ext>``: a published file whose name carries its hash prefix.
PUBLISHED_NAME = re.compile(r"^(?P<stem>.+)-(?P<sha>[0-9a-f]{8})\.(?P<ext>pth|zip)$")
#: Checkpoint keys a published model keeps (the rest is training state).
KEPT_KEYS = ("state_dict", "meta")
#: ``meta`` keys dropped on publishing: resumption state, not the model.
DROPPED_META_KEYS = ("hook_msgs", "message_hub")


class ZooError(ValueError):
    """A zoo file or index entry that cannot be used (changed, missing, malformed)."""


def sha256_of(path: str | os.PathLike, block: int = 2**20) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(block):
            digest.update(chunk)
    return digest.hexdigest()


def published_prefix(path: str | os.PathLike) -> str | None:
    """The sha256 prefix a published file's name carries, or None for any other name."""
    match = PUBLISHED_NAME.match(Path(path).name)
    return match.group("sha") if match else None


def verify_published(path: str | os.PathLike, sha256: str | None = None) -> str:
    """Check a published file against the hash in its name (and ``sha256`` if given).

    Files whose names carry no hash prefix pass unchecked (a user's own checkpoints).

    Returns:
        The file's sha256 ('' when it was not checked).

    Raises:
        FileNotFoundError: the file is missing.
        ZooError: its content no longer matches its name or the recorded sha256.
    """
    path = Path(path)
    prefix = published_prefix(path)
    if prefix is None and sha256 is None:
        return ""
    if not path.is_file():
        raise FileNotFoundError(f"published model file {path} does not exist")
    actual = sha256_of(path)
    matches_name = prefix is None or actual.startswith(prefix)
    if not matches_name or (sha256 is not None and actual != sha256):
        expected = sha256 or prefix
        raise ZooError(
            f"{path}: its sha256 starts with {actual[:8]}, but the zoo records "
            f"{expected[:8]}: the file was changed or damaged, refusing to load it. Restore it "
            f"(git checkout -- {path}) or publish the model again with "
            "tools/misc/publish_model.py"
        )
    return actual


def _strip(checkpoint: dict, fp16: bool) -> dict:
    import torch

    state = checkpoint.get("state_dict", checkpoint)
    if fp16:
        state = {
            key: value.half() if torch.is_tensor(value) and value.is_floating_point() else value
            for key, value in state.items()
        }
    meta = {
        key: value
        for key, value in dict(checkpoint.get("meta") or {}).items()
        if key not in DROPPED_META_KEYS
    }
    return dict(state_dict=state, meta=meta)


def publish_checkpoint(
    checkpoint: str | os.PathLike,
    out_dir: str | os.PathLike,
    name: str,
    fp16: bool = False,
) -> Path:
    """Write ``out_dir/<name>-<sha8>.pth``: the checkpoint's weights without training state.

    The file is written atomically, so a failure leaves nothing that looks published, and the
    same checkpoint always gives the same bytes (and name).

    Args:
        checkpoint: a checkpoint tools/train.py wrote.
        out_dir: the zoo folder to publish into.
        name: the published name's stem (usually the config's stem).
        fp16: store floating weights as fp16 (half the size; check the metrics hold).
    """
    import torch

    from ..compat import allow_mmengine_checkpoints

    allow_mmengine_checkpoints()
    loaded = torch.load(checkpoint, map_location="cpu", weights_only=True)
    published = _strip(loaded, fp16)
    published["meta"]["published"] = dict(source=Path(checkpoint).name, fp16=fp16)
    buffer = io.BytesIO()  # in memory, so the same weights always give the same bytes
    torch.save(published, buffer)
    data = buffer.getvalue()
    target = Path(out_dir) / f"{name}-{hashlib.sha256(data).hexdigest()[:8]}.pth"
    return write_bytes_atomic(target, data)


def publish_file(source: str | os.PathLike, out_dir: str | os.PathLike, name: str) -> Path:
    """Copy any file (a bundle ``.zip``) to ``out_dir/<name>-<sha8><suffix>`` atomically."""
    data = Path(source).read_bytes()
    target = Path(out_dir) / f"{name}-{hashlib.sha256(data).hexdigest()[:8]}{Path(source).suffix}"
    return write_bytes_atomic(target, data)


@dataclass
class ZooModel:
    """One model of the zoo, as its metafile describes it (paths relative to the root)."""

    name: str
    config: str
    weights: str
    sha256: str
    collection: str = ""
    metadata: dict = field(default_factory=dict)
    results: list = field(default_factory=list)
    metafile: str = ""

    def metric(self, name: str) -> float:
        """A recorded metric by name (the first result that has it)."""
        for result in self.results:
            if name in result.get("Metrics", {}):
                return float(result["Metrics"][name])
        raise KeyError(f"zoo model {self.name} records no metric {name!r}")


def _read_yaml(path: Path) -> dict:
    try:
        return yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError as error:
        raise ZooError(f"{path} does not exist: the zoo index names it") from error
    except yaml.YAMLError as error:
        raise ZooError(f"{path} is not valid YAML ({error})") from error


def zoo_models(root: str | os.PathLike = ".") -> list[ZooModel]:
    """Every model entry of ``root/model-index.yml`` and the metafiles it imports."""
    root = Path(root)
    index = _read_yaml(root / MODEL_INDEX)
    models = []
    for metafile in index.get("Import", []):
        for entry in _read_yaml(root / metafile).get("Models", []):
            metadata = dict(entry.get("Metadata") or {})
            missing = [key for key in ("Name", "Config", "Weights") if not entry.get(key)]
            missing += [] if metadata.get("SHA256") else ["Metadata.SHA256"]
            if missing:
                raise ZooError(
                    f"{metafile}: model {entry.get('Name', '?')} lacks {', '.join(missing)}"
                )
            models.append(
                ZooModel(
                    name=entry["Name"],
                    config=entry["Config"],
                    weights=entry["Weights"],
                    sha256=metadata["SHA256"],
                    collection=entry.get("In Collection", ""),
                    metadata=metadata,
                    results=list(entry.get("Results") or []),
                    metafile=str(metafile),
                )
            )
    return models


def zoo_model(name: str, root: str | os.PathLike = ".") -> ZooModel:
    """The zoo model called ``name``; the error lists the names there are."""
    models = zoo_models(root)
    for model in models:
        if model.name == name:
            return model
    raise ZooError(f"no zoo model {name!r}; the zoo has: {', '.join(m.name for m in models)}")


def zoo_model_of_weights(weights: str | os.PathLike, root: str | os.PathLike = ".") -> ZooModel:
    """The zoo model whose ``Weights`` is ``weights`` (a path relative to ``root``)."""
    wanted = Path(weights).as_posix()
    for model in zoo_models(root):
        if Path(model.weights).as_posix() == wanted:
            return model
    raise ZooError(f"{weights} is not the weights of any model in {Path(root) / MODEL_INDEX}")


def set_metafile_weights(
    metafile: str | os.PathLike,
    model: str,
    weights: str | os.PathLike,
    root: str | os.PathLike = ".",
) -> str | None:
    """Point metafile entry ``model`` at ``weights`` (relative to the repository ``root``) and
    record its sha256 (atomic rewrite).

    The metafile's leading comment lines are kept. Returns the weights the entry named before
    (still on disk: remove it with ``git rm`` once nothing uses it), or None.
    """
    metafile = Path(metafile)
    text = metafile.read_text()
    header = "".join(line for line in text.splitlines(keepends=True) if line.startswith("#"))
    content = yaml.safe_load(text) or {}
    for entry in content.get("Models", []):
        if entry.get("Name") == model:
            previous = entry.get("Weights")
            entry["Weights"] = Path(weights).as_posix()
            entry.setdefault("Metadata", {})["SHA256"] = sha256_of(Path(root) / weights)
            body = yaml.safe_dump(content, sort_keys=False, allow_unicode=True, width=100)
            write_text_atomic(metafile, header + body)
            return previous if previous != entry["Weights"] else None
    raise ZooError(f"{metafile} has no model {model!r}: add its entry first")


def _size(path: Path) -> str:
    return f"{path.stat().st_size / 2**20:.1f} MB" if path.is_file() else "missing"


def zoo_table(root: str | os.PathLike = ".", link_prefix: str = "") -> str:
    """The zoo as a Markdown table (name, task, metrics, training, size, weights), from the
    metafiles alone; the README and docs/en/model_zoo.md carry it between
    ``<!-- zoo-table -->`` markers (tools/misc/zoo_table.py writes and checks them).

    Args:
        root: the repository root.
        link_prefix: put before the weights' paths in links (``../../`` for docs/en pages).
    """
    root = Path(root)
    lines = [
        "| model | task | metrics (held-out synthetic infants) | training | size | weights |",
        "|---|---|---|---|---|---|",
    ]
    for model in zoo_models(root):
        task = ", ".join(str(result.get("Task", "")) for result in model.results)
        metrics = "; ".join(
            f"{name} {value}"
            for result in model.results
            for name, value in (result.get("Metrics") or {}).items()
        )
        meta = model.metadata
        training = ", ".join(
            str(meta[key]) for key in ("Training Data", "Training Time") if meta.get(key)
        )
        lines.append(
            f"| {model.name} | {task} | {metrics} | {training} | {_size(root / model.weights)} "
            f"| [{Path(model.weights).name}]({link_prefix}{model.weights}) |"
        )
    return "\n".join(lines)


ZOO_TABLE_MARKER = "<!-- zoo-table -->"


def replace_zoo_table(text: str, table: str) -> str:
    """``text`` with the part between two :data:`ZOO_TABLE_MARKER` lines replaced by ``table``."""
    parts = text.split(ZOO_TABLE_MARKER)
    if len(parts) != 3:
        raise ZooError(f"expected two {ZOO_TABLE_MARKER} lines around the zoo table")
    return f"{parts[0]}{ZOO_TABLE_MARKER}\n{table}\n{ZOO_TABLE_MARKER}{parts[2]}"
