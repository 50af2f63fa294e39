"""The interface every model family implements, so that the inference pipeline, the Python API and the CLI
contain no family-specific code.

A family wraps its networks in an :class:`AnimationModel` that exposes five primitives:

* ``extract_motion(frames) -> Motion``: the motion representation of each frame (FOMM: keypoints + Jacobians;
  Monkey-Net: keypoints + covariances; LIA: latent motion magnitudes).
* ``transfer(source_motion, driving_motion, driving_initial, mode, adapt_scale) -> Motion``: the motion to impose
  on the source, either the driving motion itself (``absolute``) or the driving change since ``driving_initial``
  applied to the source's (``relative``).
* ``encode_source(source) -> SourceState``: everything that depends on the source image only, computed once per
  source (its motion and encoder features).
* ``render(source_state, target_motion) -> dict``: ``prediction`` (B, 3, H, W) plus per-frame extras for
  visualisation (occlusion map, masks, deformed source, ...), each with batch dimension B first.
* ``motion_keypoints(motion) -> (B, K, 2)``: points in [-1, 1] to draw and to compare poses with.

Families are found by name through :data:`MODEL_FAMILIES` (a constant table of import paths, loaded on first use),
so :func:`model_from_file` dispatches on a model file's ``family``.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar, Literal, Protocol, TypeVar

import torch
from torch import nn

from motiontransfer.checkpoint import ModelFile, StateDict, state_dicts
from motiontransfer.config import to_dict
from motiontransfer.errors import UserError

TransferMode = Literal["relative", "absolute"]
TRANSFER_MODES: tuple[str, ...] = ("relative", "absolute")

MODEL_FAMILIES: Mapping[str, str] = MappingProxyType({
    "fomm": "motiontransfer.models.fomm_animator:FOMMAnimator",
    "monkeynet": "motiontransfer.models.monkeynet_animator:MonkeyNetAnimator",
    "lia": "motiontransfer.models.lia_animator:LIAAnimator",
    "kpvp": "motiontransfer.models.kpvp_animator:KPVPAnimator",
})

M = TypeVar("M", bound="Motion")


class Motion(Protocol):
    """A batch of per-frame motion representations (batch dimension first in every tensor)."""

    @property
    def batch_size(self) -> int:
        """Number of frames B."""
        ...

    def select(self: M, index: slice) -> M:
        """The frames ``index`` of the batch, keeping the batch dimension."""
        ...


@dataclass(frozen=True)
class SourceState:
    """The source-side work of a model, computed once per source image by ``encode_source``.

    Attributes:
        image: (1, 3, H, W) source image on the model's device.
        motion: the source's own motion (batch 1).
        features: family-specific cached encoder output (FOMM: (1, C', H/4, W/4) generator features).
    """

    image: torch.Tensor
    motion: Any
    features: Any


class AnimationModel(nn.Module, ABC):
    """A family's networks behind the common primitives (see the module docstring).

    Attributes:
        family: the family name (a key of :data:`MODEL_FAMILIES`).
        size: side of the square frames the model expects (inputs are resized to it by the callers).
    """

    family: ClassVar[str]
    inference_networks: ClassVar[tuple[str, ...]] = ("kp_detector", "generator")
    """Attribute names of the networks a model file stores (and :meth:`from_model_file` loads)."""
    size: int
    experiment: Any

    @property
    def device(self) -> torch.device:
        """Device of the model's parameters (inputs are moved there by the callers)."""
        return next(self.parameters()).device

    @abstractmethod
    def extract_motion(self, frames: torch.Tensor) -> Any:
        """Motion of each frame: frames (B, 3, H, W) in [0, 1] -> Motion of batch B."""

    @abstractmethod
    def transfer(self, source_motion: Any, driving_motion: Any, driving_initial: Any | None,
                 mode: TransferMode = "relative", adapt_scale: bool = False) -> Any:
        """The motion to render: ``absolute`` returns ``driving_motion``; ``relative`` applies the change from
        ``driving_initial`` (batch 1) to ``driving_motion`` (batch B) to ``source_motion`` (batch 1), optionally
        scaled to the source's size (``adapt_scale``). Returns a Motion of batch B."""

    @abstractmethod
    def encode_source(self, source: torch.Tensor) -> SourceState:
        """Source-side work, done once per source: source (1, 3, H, W) in [0, 1] -> :class:`SourceState`."""

    @abstractmethod
    def render(self, source_state: SourceState, target_motion: Any) -> dict[str, torch.Tensor]:
        """Animate the source with ``target_motion`` (batch B): dict with ``prediction`` (B, 3, H, W) in [0, 1]
        and family-specific extras for visualisation, each (B, ...)."""

    @abstractmethod
    def motion_keypoints(self, motion: Any) -> torch.Tensor:
        """Points of a Motion of batch B as (B, K, 2) in [-1, 1] (x first), for drawing and best-frame search."""

    @classmethod
    def from_model_file(cls, model_file: ModelFile, device: str | torch.device | None = None) -> AnimationModel:
        """Build the model from a :class:`~motiontransfer.checkpoint.ModelFile` holding the networks named in
        :attr:`inference_networks` (others, such as a discriminator, are ignored) and ``metadata["config"]``, in
        eval mode on ``device`` (default CPU). The default implementation calls ``cls(experiment)``.

        Raises:
            UserError: no or an invalid config in the metadata, or weights that do not match it.
        """
        from motiontransfer.experiment import experiment_from_dict  # the experiment module imports the models

        if "config" not in model_file.metadata:
            raise UserError("the model file has no config in its metadata")
        model = cls(experiment_from_dict(model_file.metadata["config"]))  # type: ignore[call-arg]
        modules = {name: getattr(model, name) for name in cls.inference_networks}
        load_state_dicts(modules, model_file.networks, "the weights do not match the model file's config")
        return model.to(device if device is not None else "cpu").eval()

    def to_model_file(self) -> ModelFile:
        """The :attr:`inference_networks`' weights with ``metadata["config"]`` = the experiment as plain data."""
        networks = state_dicts({name: getattr(self, name) for name in self.inference_networks})
        return ModelFile(self.family, networks, {"config": to_dict(self.experiment)})


def check_mode(mode: str) -> TransferMode:
    """Validate a transfer mode name; raise UserError for anything but ``relative`` / ``absolute``."""
    if mode not in TRANSFER_MODES:
        raise UserError(f"unknown transfer mode {mode!r}; use {' or '.join(TRANSFER_MODES)}")
    return mode  # type: ignore[return-value]


def model_class(family: str) -> type[AnimationModel]:
    """The :class:`AnimationModel` subclass of ``family``; UserError for an unknown family."""
    if family not in MODEL_FAMILIES:
        raise UserError(f"unknown model family {family!r}; known: {', '.join(MODEL_FAMILIES)}")
    module_name, class_name = MODEL_FAMILIES[family].split(":")
    return getattr(importlib.import_module(module_name), class_name)


def model_from_file(model_file: ModelFile, device: str | torch.device | None = None) -> AnimationModel:
    """Instantiate the model stored in ``model_file`` with the class of its family."""
    return model_class(model_file.family).from_model_file(model_file, device=device)


def predict_from_motion(model: Any, source: torch.Tensor, num_frames: int, action: str | None = None,
                        seed: int = 0, batch_size: int = 8) -> tuple[torch.Tensor, Any]:
    """Image-to-video through predicted motion, for models with ``predict_motion(state, num_frames, action=,
    seed=)`` (Monkey-Net's keypoint predictor, KPVP's motion generator): the source is encoded once, the motion of
    ``num_frames`` frames predicted and rendered in batches of ``batch_size``.

    Args:
        model: an :class:`AnimationModel` with ``predict_motion``.
        source: (3, S, S) frame in [0, 1] at the model's size.

    Returns:
        ((T, 3, S, S) frames in [0, 1] on the CPU, the predicted Motion of batch T).
    """
    with torch.no_grad():
        state = model.encode_source(source[None].to(model.device))
        motion = model.predict_motion(state, num_frames, action=action, seed=seed)
        frames = [model.render(state, motion.select(slice(start, start + batch_size)))["prediction"].cpu()
                  for start in range(0, num_frames, batch_size)]
    return torch.cat(frames), motion


# ------------------------------------------------------------------------------------------- strict weight loading


def load_state_dicts(modules: Mapping[str, nn.Module], states: Mapping[str, StateDict], context: str) -> None:
    """Load ``states[name]`` into each of ``modules`` strictly (same keys, same shapes), or raise one UserError
    that lists every problem of every network.

    Args:
        modules: network name -> module to fill.
        states: network name -> state dict (extra networks in ``states`` are ignored).
        context: start of the error message, e.g. ``"checkpoint does not match config vox-256"``.

    Raises:
        UserError: ``"<context>: generator.first.conv.weight has shape (32, 3, 7, 7), expected (64, 3, 7, 7);
            missing keys: ...; unexpected keys: ..."``.
    """
    shapes: list[str] = []
    missing: list[str] = []
    unexpected: list[str] = []
    for name, module in modules.items():
        if name not in states:
            missing.append(f"{name} (the whole network)")
            continue
        expected = module.state_dict()
        given = states[name]
        missing += [f"{name}.{key}" for key in expected if key not in given]
        unexpected += [f"{name}.{key}" for key in given if key not in expected]
        shapes += [f"{name}.{key} has shape {_shape(given[key])}, expected {_shape(value)}"
                   for key, value in expected.items() if key in given and _shape(given[key]) != _shape(value)]
    problems = _listing("", shapes) + _listing("missing keys: ", missing) + _listing("unexpected keys: ", unexpected)
    if problems:
        raise UserError(f"{context}: {'; '.join(problems)}")
    for name, module in modules.items():
        module.load_state_dict(states[name], strict=True)


def _shape(value: Any) -> tuple[int, ...] | str:
    """A tensor's shape, or a description of a value that is not a tensor."""
    return tuple(value.shape) if isinstance(value, torch.Tensor) else f"(not a tensor: {type(value).__name__})"


def _listing(title: str, items: list[str], limit: int = 4) -> list[str]:
    """``[title + first items (+N more)]``, or ``[]`` for no items; shape lines are joined the same way."""
    if not items:
        return []
    more = f" (+{len(items) - limit} more)" if len(items) > limit else ""
    return [title + ", ".join(items[:limit]) + more]
