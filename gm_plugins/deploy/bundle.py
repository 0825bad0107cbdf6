"""Model bundles: everything a trained classifier needs to classify a new video, in one folder.

A bundle holds the classifier config and checkpoint, the preprocessing chain the classifier was
trained with (with its segmentation and pose configs and checkpoints), the class names, the
window settings, the abstention settings and ``manifest.json`` with the sha256 of every file and
the versions of gm_plugins and the OpenMMLab packages that wrote it::

    bundle/
      manifest.json
      classifier.py   classifier.pth         the recognizer (config resolved, no _base_)
      preprocess.py                          the chain; model paths relative to the bundle
      models/<step>.py  models/<step>.pth    each model a chain step loads
      validation/reliability.png             (fitted bundles) calibration on validation infants

A bundle exported with its validation infants (:mod:`gm_plugins.deploy.validation`) also holds
``manifest['validation']``: the temperature its window probabilities are calibrated with, the
least window agreement worth a decision and the range of every quality figure it was validated
on (its domain); inference abstains outside them.

:func:`export_bundle` builds one from a classifier config alone (its ``preprocess_config`` key
names the chain); :func:`load_bundle` checks every hash and refuses a tampered or incomplete
bundle. A bundle may also travel as one ``.zip`` of that folder.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from mmengine.config import Config

from gm_plugins.datasets.subjects import GM_CLASSES
from gm_plugins.deploy.validation import VALIDATION_FORMAT
from gm_plugins.preprocess.chain import read_chain_config
from gm_plugins.utils.config import ConfigError, load_config
from gm_plugins.utils.io import write_json_atomic
from gm_plugins.utils.zoo import ZooError, sha256_of, verify_published

BUNDLE_FORMAT = "gm_plugins-bundle/1"
MANIFEST = "manifest.json"
CLASSIFIER_CONFIG = "classifier.py"
CLASSIFIER_CHECKPOINT = "classifier.pth"
PREPROCESS_CONFIG = "preprocess.py"
RELIABILITY_DIAGRAM = "validation/reliability.png"
#: Packages whose versions the manifest records.
RECORDED_PACKAGES = ("gm_plugins", "torch", "mmengine", "mmcv", "mmaction2", "mmsegmentation",
                     "mmpose", "opencv-contrib-python-headless", "numpy")  # fmt: skip
#: Chain steps that load a model from ``config`` + ``checkpoint``, by the file name they get.
MODEL_STEPS = {"BackgroundRemoval": "segmentation", "PoseAlignment": "pose"}


class BundleError(ValueError):
    """A bundle that cannot be used: missing, incomplete, tampered or of another format."""


@dataclass
class Abstention:
    """When a result says "uncertain" instead of a class.

    Args:
        min_probability: the decision's probability (the top class of the infant-level
            scores) must reach this.
        min_windows: at least this many windows must fit in the video.
        on_fallback: abstain when the preprocessing fell back (no infant found, nothing
            moves, alignment failed).
        on_disagreement: abstain when fewer windows agree with the decision than the
            bundle's validation infants showed (fitted bundles).
        outside_domain: abstain when a quality figure lies outside the range of the
            bundle's validation infants (fitted bundles).
    """

    min_probability: float = 0.5
    min_windows: int = 1
    on_fallback: bool = True
    on_disagreement: bool = True
    outside_domain: bool = True


@dataclass
class Bundle:
    """A loaded, verified bundle (all paths absolute)."""

    root: Path
    manifest: dict
    classifier_config: Config
    classifier_checkpoint: Path
    preprocess_pipeline: list[dict]
    class_names: tuple[str, ...]
    window: dict
    aggregation: str
    abstention: Abstention
    manifest_sha256: str = ""
    validation: dict | None = None
    _keep: object = field(default=None, repr=False)  # a temporary folder a zip was unpacked to

    @property
    def name(self) -> str:
        return str(self.manifest.get("name", self.root.name))

    @property
    def temperature(self) -> float:
        """The calibration temperature of the window probabilities (1.0: not fitted)."""
        calibration = (self.validation or {}).get("calibration") or {}
        return float(calibration.get("temperature", 1.0))


def package_versions() -> dict[str, str | None]:
    """Installed versions of :data:`RECORDED_PACKAGES` (None where one is missing)."""
    from importlib.metadata import PackageNotFoundError, version

    from gm_plugins.version import __version__

    versions: dict[str, str | None] = {}
    for name in RECORDED_PACKAGES:
        if name == "gm_plugins":
            versions[name] = __version__
            continue
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = None
    return versions


def classifier_window(cfg: Config) -> tuple[dict, str]:
    """The test windows and the aggregation the classifier was evaluated with."""
    dataset = cfg.get("test_dataloader", {}).get("dataset", {})
    window = dataset.get("window")
    if window is None:
        raise ConfigError(
            "the classifier config has no test_dataloader.dataset.window: a bundle needs the "
            "window settings the classifier was tested with"
        )
    evaluator = cfg.get("test_evaluator", {})
    aggregation = evaluator.get("aggregation", "mean") if isinstance(evaluator, dict) else "mean"
    return dict(window), str(aggregation)


def _plot_validation(validation: dict, path: Path) -> None:
    """The reliability diagram of the validation infants, before and after calibration."""
    from gm_plugins.utils.plotting import plot_reliability_diagram

    calibration = validation["calibration"]
    path.parent.mkdir(parents=True, exist_ok=True)
    plot_reliability_diagram(
        {
            "before (T = 1)": calibration["reliability_before"],
            f"after (T = {calibration['temperature']:.3g})": calibration["reliability_after"],
        },
        path,
        title=f"{validation['infants']} validation infants",
    )


def _copy(source: str | os.PathLike, target: Path, what: str, fix: str) -> None:
    if not os.path.isfile(source):
        raise FileNotFoundError(f"{what} {source} does not exist: {fix}")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)


def export_bundle(
    config: str | os.PathLike,
    checkpoint: str | os.PathLike,
    out_dir: str | os.PathLike,
    preprocess_config: str | os.PathLike | None = None,
    abstention: Abstention | None = None,
    name: str | None = None,
    overwrite: bool = False,
    zip_path: str | os.PathLike | None = None,
    validation: dict | None = None,
) -> Path:
    """Write a bundle folder for a trained classifier; returns its path.

    The folder is assembled next to ``out_dir`` and renamed into place, so a failure leaves
    no half-written bundle, and an existing bundle is only replaced (atomically) with
    ``overwrite``.

    Args:
        config: the classifier config (``tools/train.py``'s); its ``preprocess_config`` names
            the chain its cache was made with, unless ``preprocess_config`` is given.
        checkpoint: the trained classifier checkpoint.
        out_dir: the bundle folder to write.
        preprocess_config: the chain config, overriding the classifier config's key.
        abstention: when results say "uncertain" (default :class:`Abstention`).
        name: the bundle's name in reports (default: the classifier config's file stem).
        overwrite: replace an existing ``out_dir``.
        zip_path: also write the bundle as this one ``.zip`` file (atomically).
        validation: the record :func:`gm_plugins.deploy.validation.fit_validation` made on
            the classifier's validation infants (calibration, agreement, domain), or None for
            a bundle that abstains only on its fixed thresholds.

    Raises:
        FileNotFoundError: a config or checkpoint is missing (the message names it).
        ConfigError: the classifier config names no chain or no test windows.
        FileExistsError: ``out_dir`` exists and ``overwrite`` is False.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise FileExistsError(f"{out_dir} exists; pass overwrite=True (--overwrite) to replace it")
    cfg = load_config(config)
    chain_path = preprocess_config or cfg.get("preprocess_config", None)
    if chain_path is None:
        raise ConfigError(
            f"{config} names no preprocess_config (the chain its cache was made with): add "
            "preprocess_config = 'configs/preprocess/<chain>.py' to it (the dataset _base_ "
            "files do) or pass --preprocess-config"
        )
    chain = read_chain_config(chain_path)
    window, aggregation = classifier_window(cfg)
    classes = tuple(cfg.get("classes", None) or GM_CLASSES)
    abstention = abstention or Abstention()

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        _copy(checkpoint, staging / CLASSIFIER_CHECKPOINT, "classifier checkpoint",
              "pass the .pth that tools/train.py wrote for this config")  # fmt: skip
        cfg.dump(str(staging / CLASSIFIER_CONFIG))
        steps = []
        for step in chain.preprocess_pipeline:
            step = dict(step)
            role = MODEL_STEPS.get(step.get("type"))
            if role is not None and step.get("config"):
                if not step.get("checkpoint"):
                    raise ConfigError(
                        f"{chain_path}: the {step['type']} step has no checkpoint; a bundle "
                        "ships trained models only (train it with tools/train.py)"
                    )
                model_cfg = Config.fromfile(str(step["config"]))
                (staging / "models").mkdir(exist_ok=True)
                model_cfg.dump(str(staging / "models" / f"{role}.py"))
                fix = "train it with tools/train.py or fix the path in the chain config"
                _copy(step["checkpoint"], staging / "models" / f"{role}.pth",
                      f"{step['type']} checkpoint", fix)  # fmt: skip
                step.update(config=f"models/{role}.py", checkpoint=f"models/{role}.pth")
            steps.append(step)
        Config(dict(default_scope="mmaction", preprocess_pipeline=steps)).dump(
            str(staging / PREPROCESS_CONFIG)
        )
        if validation is not None:
            _plot_validation(validation, staging / RELIABILITY_DIAGRAM)
        files = sorted(p.relative_to(staging).as_posix() for p in staging.rglob("*") if p.is_file())
        manifest = dict(
            format=BUNDLE_FORMAT,
            name=name or Path(config).stem,
            created=datetime.now(UTC).isoformat(timespec="seconds"),
            source=dict(
                config=os.fspath(config),
                checkpoint=os.fspath(checkpoint),
                preprocess_config=os.fspath(chain_path),
            ),
            class_names=list(classes),
            window=window,
            aggregation=aggregation,
            abstention=vars(abstention),
            validation=validation,
            versions=package_versions(),
            files={path: sha256_of(staging / path) for path in files},
        )
        write_json_atomic(staging / MANIFEST, manifest)
        _swap_in(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if zip_path is not None:
        zip_bundle(out_dir, zip_path)
    return out_dir


def _swap_in(staging: Path, target: Path) -> None:
    """Rename ``staging`` to ``target``; an existing target is moved aside first and deleted
    only once the new one is in place."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.replaced-{os.getpid()}")
        os.replace(target, old)
    try:
        os.replace(staging, target)
    except BaseException:
        if old is not None:
            os.replace(old, target)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def zip_bundle(bundle_dir: str | os.PathLike, zip_path: str | os.PathLike) -> Path:
    """Write the bundle folder as one .zip (atomically); returns its path."""
    bundle_dir, zip_path = Path(bundle_dir), Path(zip_path)
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{zip_path.name}.", dir=zip_path.parent)
    os.close(handle)
    try:
        with zipfile.ZipFile(temporary, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(bundle_dir.rglob("*")):
                if path.is_file():
                    archive.write(path, path.relative_to(bundle_dir).as_posix())
        os.replace(temporary, zip_path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return zip_path


def _unpack(zip_path: Path) -> tuple[Path, object]:
    """Unpack a zipped bundle into a temporary folder removed when the bundle is dropped."""
    keeper = tempfile.TemporaryDirectory(prefix="gm_bundle_")
    folder = Path(keeper.name)
    try:
        with zipfile.ZipFile(zip_path) as archive:
            for member in archive.namelist():
                target = (folder / member).resolve()
                if folder.resolve() not in target.parents:
                    raise BundleError(f"{zip_path}: member {member!r} points outside the bundle")
            archive.extractall(folder)
    except zipfile.BadZipFile as error:
        raise BundleError(f"{zip_path} is not a readable zip file ({error})") from error
    return folder, keeper


def verify_bundle(root: str | os.PathLike) -> dict:
    """Check a bundle folder against its manifest; returns the manifest.

    Raises:
        BundleError: naming every missing file and every file whose sha256 differs, or a
            manifest of another format.
    """
    root = Path(root)
    manifest_path = root / MANIFEST
    if not manifest_path.is_file():
        raise BundleError(
            f"{root} is not a bundle: it has no {MANIFEST} "
            "(write one with tools/deployment/export_bundle.py)"
        )
    try:
        manifest = json.loads(manifest_path.read_text())
    except json.JSONDecodeError as error:
        raise BundleError(f"{manifest_path} is not valid JSON ({error})") from error
    if manifest.get("format") != BUNDLE_FORMAT:
        raise BundleError(
            f"{manifest_path}: format {manifest.get('format')!r}, this gm_plugins reads "
            f"{BUNDLE_FORMAT!r}; export the bundle again with this version"
        )
    files = manifest.get("files") or {}
    problems = []
    for required in (CLASSIFIER_CONFIG, CLASSIFIER_CHECKPOINT, PREPROCESS_CONFIG):
        if required not in files:
            problems.append(f"{required}: not listed in the manifest")
    for relative, expected in files.items():
        path = root / relative
        if not path.is_file():
            problems.append(f"{relative}: missing")
        elif sha256_of(path) != expected:
            problems.append(f"{relative}: sha256 differs from the manifest (changed or damaged)")
    if problems:
        raise BundleError(
            f"{root}: the bundle is incomplete or was modified, refusing to use it:\n  "
            + "\n  ".join(problems)
            + "\nExport it again with tools/deployment/export_bundle.py or copy it whole."
        )
    return manifest


def load_bundle(path: str | os.PathLike) -> Bundle:
    """Open and verify a bundle folder or ``.zip``; model paths come back absolute."""
    path = Path(path)
    keep = None
    if path.is_file() and zipfile.is_zipfile(path):
        try:
            verify_published(path)  # a zoo bundle must still match the hash in its name
        except ZooError as error:
            raise BundleError(str(error)) from error
        path, keep = _unpack(path)
    elif not path.exists():
        raise FileNotFoundError(f"bundle {path} does not exist (write one with export_bundle.py)")
    manifest = verify_bundle(path)
    chain = Config.fromfile(str(path / PREPROCESS_CONFIG))
    steps = []
    for step in chain.preprocess_pipeline:
        step = dict(step)
        for key in ("config", "checkpoint"):
            if isinstance(step.get(key), str) and not os.path.isabs(step[key]):
                step[key] = str(path / step[key])
        steps.append(step)
    abstention = Abstention(**manifest.get("abstention", {}))
    validation = manifest.get("validation")
    if validation is not None and validation.get("format") != VALIDATION_FORMAT:
        raise BundleError(
            f"{path}: validation record of format {validation.get('format')!r}, this "
            f"gm_plugins reads {VALIDATION_FORMAT!r}; export the bundle again"
        )
    return Bundle(
        root=path,
        manifest=manifest,
        classifier_config=Config.fromfile(str(path / CLASSIFIER_CONFIG)),
        classifier_checkpoint=path / CLASSIFIER_CHECKPOINT,
        preprocess_pipeline=steps,
        class_names=tuple(manifest["class_names"]),
        window=dict(manifest["window"]),
        aggregation=str(manifest.get("aggregation", "mean")),
        abstention=abstention,
        manifest_sha256=sha256_of(path / MANIFEST),
        validation=validation,
        _keep=keep,
    )
