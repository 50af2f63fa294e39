"""Models that ship inside the package: small FOMM models trained here, on the CPU, on the procedural sets.

They are what ``motiontransfer demo`` runs, and they can be named wherever a checkpoint is accepted
(``motiontransfer animate --checkpoint fomm-faces ...``, ``motiontransfer.load("fomm-puppets")``). They are
produced by ``benchmarks/fomm_synthetic.py --export`` (the recipe, budget and measured quality are in
docs/fomm-synthetic.md) and stored as float16 safetensors model files.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from motiontransfer.errors import UserError

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
