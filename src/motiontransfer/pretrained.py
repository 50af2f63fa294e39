"""Where weight files are: the one place that knows, for every pretrained network the library uses.

* Bundled in the package (``motiontransfer/weights``): small FOMM models trained here, on the CPU, on the
  procedural sets (what ``motiontransfer demo`` runs; they can be named wherever a checkpoint is accepted:
  ``motiontransfer animate --checkpoint fomm-faces ...``, ``motiontransfer.load("fomm-puppets")``; produced by
  ``benchmarks/fomm_synthetic.py --export``, recipe and quality in docs/fomm-synthetic.md, stored as float16
  safetensors model files), and the procedural evaluators (:func:`bundled_evaluator_path`).
* Supplied by the user, never downloaded: VGG19 for the perceptual loss (torch hub's cache,
  :func:`find_vgg19_weights`), the LPIPS / FID / FVD networks (:func:`metrics_weights_dir`) and dlib's face models
  (the ``face_recognition_models`` package, :func:`dlib_model_file`).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterable
from importlib import resources
from pathlib import Path

from motiontransfer.errors import UserError

EVAL_EXTRA_HINT = 'install the eval extra: pip install -e ".[eval]" (or pip install "motiontransfer[eval]")'
"""How to get dlib and its face models."""

BUNDLED_MODELS: dict[str, tuple[str, str]] = {
    "fomm-faces": ("fomm-faces-64.mt", "faces"),
    "fomm-puppets": ("fomm-puppets-64.mt", "puppets"),
}
"""Bundled model name -> (file name in the package's ``weights`` folder, procedural family it was trained on)."""

_WEIGHTS_PACKAGE = "motiontransfer.weights"


def weights_dir() -> Path:
    """The package folder holding the bundled model files."""
    return Path(str(resources.files(_WEIGHTS_PACKAGE)))


def is_bundled_name(name: str | Path) -> bool:
    """True when ``name`` is the name of a bundled model (``fomm-faces``, ...)."""
    return str(name) in BUNDLED_MODELS


def bundled_model_path(name: str) -> Path:
    """Path of the bundled model ``name``.

    Raises:
        UserError: an unknown name, or a package installed without its weights (a broken install).
    """
    if name not in BUNDLED_MODELS:
        raise UserError(f"unknown bundled model {name!r}; choose one of {', '.join(BUNDLED_MODELS)}")
    path = weights_dir() / BUNDLED_MODELS[name][0]
    if not path.is_file():
        raise UserError(f"the bundled model {name!r} is missing from this installation ({path}); "
                        "reinstall motiontransfer")
    return path


def bundled_family(name: str) -> str:
    """The procedural family (``faces``, ``puppets``) the bundled model ``name`` was trained on."""
    if name not in BUNDLED_MODELS:
        raise UserError(f"unknown bundled model {name!r}; choose one of {', '.join(BUNDLED_MODELS)}")
    return BUNDLED_MODELS[name][1]


EVALUATOR_KINDS = ("keypoints", "identity", "actions")


def bundled_evaluator_path(kind: str, family: str, must_exist: bool = True) -> Path:
    """Path of the bundled procedural evaluator ``kind`` (``keypoints`` or ``identity``, see
    :mod:`motiontransfer.evaluation.procedural`; ``actions``, see :mod:`motiontransfer.evaluation.actions`) for
    ``family`` (``faces``, ``puppets``).

    Raises:
        UserError: an unknown kind or family, or (with ``must_exist``) a missing file.
    """
    if kind not in EVALUATOR_KINDS or family not in ("faces", "puppets"):
        raise UserError(f"no bundled {kind!r} evaluator for {family!r}: kinds are {', '.join(EVALUATOR_KINDS)}, "
                        "families faces and puppets")
    path = weights_dir() / f"eval-{kind}-{family}.mt"
    if must_exist and not path.is_file():
        raise UserError(f"the bundled {kind} evaluator for {family} is missing from this installation ({path}); "
                        "reinstall motiontransfer")
    return path


# ------------------------------------------------------------------------------------------ user-supplied files


def first_existing(folder: Path, names: Iterable[str]) -> Path | None:
    """The first ``folder / name`` that is a file, or None."""
    for name in names:
        if (folder / name).is_file():
            return folder / name
    return None


def torch_home() -> Path:
    """torch hub's cache root: $TORCH_HOME, else $XDG_CACHE_HOME/torch, else ~/.cache/torch."""
    if os.environ.get("TORCH_HOME"):
        return Path(os.environ["TORCH_HOME"]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    return Path(cache).expanduser() / "torch"


def vgg19_search_locations(configured_path: str | os.PathLike[str] | None) -> list[str]:
    """Human-readable list of the places :func:`find_vgg19_weights` looks at, in order."""
    places = [str(Path(configured_path).expanduser())] if configured_path else []
    places.append(str(torch_home() / "hub" / "checkpoints" / "vgg19-*.pth"))
    return places


def find_vgg19_weights(configured_path: str | os.PathLike[str] | None) -> Path | None:
    """Locate a torchvision-format VGG19 state dict without downloading anything.

    Looks at ``configured_path`` (when given and an existing file), then for ``vgg19-*.pth`` in
    ``$TORCH_HOME/hub/checkpoints`` (TORCH_HOME defaulting to ``$XDG_CACHE_HOME/torch`` or ``~/.cache/torch``, as
    torch hub does; the first name in sorted order wins).

    Returns:
        The file's path, or None when there is none.
    """
    if configured_path:
        path = Path(configured_path).expanduser()
        if path.is_file():
            return path
    checkpoints = torch_home() / "hub" / "checkpoints"
    candidates = sorted(p for p in checkpoints.glob("vgg19-*.pth") if p.is_file()) if checkpoints.is_dir() else []
    return candidates[0] if candidates else None


METRICS_DIR_ENV = "MOTIONTRANSFER_METRICS_DIR"
DEFAULT_METRICS_DIR = Path("~") / ".cache" / "motiontransfer" / "metrics"


def metrics_weights_dir(weights_dir: str | os.PathLike[str] | None = None) -> Path:
    """The folder holding the learned metrics' weight files (LPIPS, FID, FVD; see
    :mod:`motiontransfer.evaluation.learned`).

    Args:
        weights_dir: an explicit folder; None to use ``$MOTIONTRANSFER_METRICS_DIR`` or else
            ``~/.cache/motiontransfer/metrics``.

    Returns:
        The folder, with ``~`` expanded (it need not exist).
    """
    if weights_dir is not None:
        return Path(weights_dir).expanduser()
    configured = os.environ.get(METRICS_DIR_ENV)
    return Path(configured).expanduser() if configured else DEFAULT_METRICS_DIR.expanduser()


def face_models_dirs() -> list[Path]:
    """Folders where ``face_recognition_models`` keeps its .dat files (``<package>/models``), without importing it
    (it needs ``pkg_resources``)."""
    spec = importlib.util.find_spec("face_recognition_models")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    return [Path(location) / "models" for location in locations]


def dlib_model_file(filename: str) -> Path:
    """Path of one of the dlib model files shipped by ``face_recognition_models``.

    Args:
        filename: e.g. ``shape_predictor_68_face_landmarks.dat``.

    Raises:
        UserError: the package or the file is not installed.
    """
    found = (first_existing(folder, (filename,)) for folder in face_models_dirs())
    path = next((path for path in found if path is not None), None)
    if path is None:
        raise UserError(f"the dlib face models need the face_recognition_models data ({filename}); {EVAL_EXTRA_HINT}")
    return path
