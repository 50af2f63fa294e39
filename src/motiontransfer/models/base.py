"""The interface every model family implements, so that the inference pipeline, the Python API and the CLI
contain no family-specific code.

A family wraps its networks in an :class:`AnimationModel` that exposes five primitives:

* ``extract_motion(frames) -> Motion``: the motion representation of each frame (FOMM: keypoints + Jacobians;
  Monkey-Net: keypoints + covariances; LIA: latent motion magnitudes).
* ``transfer(source_motion, driving_motion, driving_initial, mode, adapt_scale) -> Motion``: the motion to impose
  on the source, either the driving motion itself (``absolute``) or the driving change since ``driving_initial``
  applied to the source's (``relative``). The method is the same for every family (:meth:`AnimationModel.transfer`);
  a family writes only :meth:`AnimationModel.relative_motion`.
* ``encode_source(source) -> SourceState``: everything that depends on the source image only, computed once per
  source (its motion and encoder features).
* ``render(source_state, target_motion) -> dict``: ``prediction`` (B, 3, H, W) plus per-frame extras for
  visualisation (occlusion map, masks, deformed source, ...), each with batch dimension B first.
* ``motion_keypoints(motion) -> (B, K, 2)``: points in [-1, 1] to draw and to compare poses with.

What a model cannot do (adapt the movement scale without keypoints, generate a video without a motion predictor,
walk latent directions it does not have) raises :class:`~motiontransfer.errors.CapabilityError`, saying so.

Families are registered by name in :mod:`motiontransfer.registry`; a model file's ``family`` picks the class.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol, TypeVar, runtime_checkable

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from motiontransfer.checkpoint import ModelFile, StateDict, state_dicts
from motiontransfer.config import from_dict, to_dict
from motiontransfer.errors import CapabilityError, ConfigError, Term, UserError
from motiontransfer.ops.keypoints import convex_hull_scale

TransferMode = Literal["relative", "absolute"]
TRANSFER_MODES: tuple[str, ...] = ("relative", "absolute")

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


@dataclass(frozen=True)
class ExportGraph:
    """One network of a model (or a slice of one) as a graph a runtime can run on its own (ONNX): a module whose
    ``forward`` takes tensors and returns a tuple of tensors, with the names of both and the axes of variable size.

    Attributes:
        name: the graph's name (the file stem: ``kp_detector``).
        module: ``forward(*inputs) -> tuple of outputs``, in the order of the names; its networks are the model's.
        make_inputs: ``(batch, generator) -> inputs``: plausible example inputs with ``batch`` as the size of every
            dynamic axis, drawn from the torch random ``generator`` (used to trace the graph and to check it).
        input_names, output_names: the tensors' names in the graph.
        dynamic_axes: tensor name -> {axis: symbolic name} for the axes of variable size (the driving batch).
        description: what the graph computes, for people using it.
    """

    name: str
    module: nn.Module
    make_inputs: Callable[[int, torch.Generator], tuple[torch.Tensor, ...]]
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    dynamic_axes: Mapping[str, Mapping[int, str]]
    description: str


class AnimationModel(nn.Module, ABC):
    """A family's networks behind the common primitives (see the module docstring).

    Attributes:
        family: the family name stored in model files (the key of the family's registry entry).
        experiment_type: the experiment dataclass the constructor takes (``cls(experiment)``).
        size: side of the square frames the model expects (inputs are resized to it by the callers).
    """

    family: ClassVar[str]
    experiment_type: ClassVar[type]
    inference_networks: ClassVar[tuple[str, ...]] = ("kp_detector", "generator")
    """Attribute names of the networks a model file stores (and :meth:`from_model_file` loads)."""
    optional_networks: ClassVar[tuple[str, ...]] = ()
    """Attribute names of networks trained separately (a motion predictor): stored when set (not None), loaded when
    the model file has them (built by :meth:`build_optional_network`)."""
    reduced_precision_modules: ClassVar[tuple[str, ...]] = ()
    """Dotted paths of the sub-networks that may run in bfloat16 (``precision="bf16"``, see
    :mod:`motiontransfer.inference.runtime`): convolution stacks that make pixels, never the ones that make
    keypoints, motion fields or masks. A path naming a ModuleList means each of its items."""
    channels_last_inference: ClassVar[bool] = True
    """Whether the fast path stores the networks channels-last (the layout oneDNN's convolutions are fastest with);
    a family whose kernels lose accuracy or speed that way says False."""
    inference_only: str | None = None
    """None for a model as trained; else how it was prepared for inference (``"fast fp32"``, ...), which changes
    its networks' layout so that it cannot be saved or trained."""
    has_keypoints: ClassVar[bool] = True
    """Whether :meth:`motion_keypoints` gives points (False: (B, 0, 2)); without them there is no movement scale to
    adapt and no pose to match."""
    size: int
    experiment: Any

    @property
    def device(self) -> torch.device:
        """Device of the model's parameters (inputs are moved there by the callers)."""
        return next(self.parameters()).device

    # ------------------------------------------------------------------------------------------- the primitives

    @abstractmethod
    def extract_motion(self, frames: torch.Tensor) -> Any:
        """Motion of each frame: frames (B, 3, H, W) in [0, 1] -> Motion of batch B."""

    def transfer(self, source_motion: Any, driving_motion: Any, driving_initial: Any | None,
                 mode: TransferMode = "relative", adapt_scale: bool = False) -> Any:
        """The motion to render, the same steps for every family: ``absolute`` returns ``driving_motion``;
        ``relative`` applies the change from ``driving_initial`` (batch 1) to ``driving_motion`` (batch B) to
        ``source_motion`` (batch 1) with :meth:`relative_motion`, movements scaled by the ratio of the keypoints'
        convex-hull sizes (:func:`~motiontransfer.ops.keypoints.convex_hull_scale`) when ``adapt_scale`` or the
        config's default (:attr:`default_adapt_scale`) asks for it: the argument can switch scaling on, not off.

        Returns:
            A Motion of batch B.

        Raises:
            UserError: an unknown mode. CapabilityError: scale adaptation asked of a model without keypoints.
            ValueError: relative transfer without ``driving_initial``.
        """
        mode = check_mode(mode)
        adapt = bool(adapt_scale) or self.default_adapt_scale
        if adapt and not self.has_keypoints:
            raise CapabilityError(f"a {self.family} model cannot adapt the movement scale (", Term("adapt_scale"),
                                  "): it has no keypoints to measure the sizes with")
        if mode == "absolute":
            return driving_motion
        if driving_initial is None:
            raise ValueError("relative transfer needs the motion of the initial driving frame")
        scale = 1.0
        if adapt:
            scale = convex_hull_scale(self.motion_keypoints(source_motion), self.motion_keypoints(driving_initial))
        return self.relative_motion(source_motion, driving_motion, driving_initial, scale)

    @abstractmethod
    def relative_motion(self, source_motion: Any, driving_motion: Any, driving_initial: Any, scale: float) -> Any:
        """The family's relative transfer: the change from ``driving_initial`` (batch 1) to ``driving_motion``
        (batch B), its movements multiplied by ``scale``, applied to ``source_motion`` (batch 1). Returns a Motion
        of batch B."""

    @property
    def default_adapt_scale(self) -> bool:
        """The config's default for adapting the movement scale (False unless the family's config has one)."""
        return False

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

    # ---------------------------------------------------------------------------------- optional capabilities

    def prediction_problem(self) -> tuple[str, ...] | None:
        """Why this model cannot generate videos from an image, as the parts of a
        :class:`~motiontransfer.errors.CapabilityError` message, or None when it can (a family with a motion
        predictor overrides this and :meth:`predict_motion`)."""
        return (f"a {self.family} model animates from a driving video; it cannot generate videos from an image "
                "(image-to-video needs a model with a motion predictor)",)

    def require_prediction(self) -> None:
        """Raise CapabilityError with :meth:`prediction_problem` unless the model generates videos from an image."""
        problem = self.prediction_problem()
        if problem is not None:
            raise CapabilityError(*problem)

    def predict_motion(self, source_state: SourceState, num_frames: int, action: str | None = None,
                       seed: int = 0) -> Any:
        """The motion of ``num_frames`` frames predicted from the source's (the first frame is the source's);
        ``action`` conditions class-conditional predictors, ``seed`` picks the sample of stochastic ones.

        Raises:
            CapabilityError: the model has no motion predictor.
        """
        self.require_prediction()
        raise NotImplementedError(f"{type(self).__name__} says it predicts but has no predict_motion")

    def predict_video(self, source: torch.Tensor, num_frames: int, action: str | None = None, seed: int = 0,
                      batch_size: int = 8) -> torch.Tensor:
        """Generate a video from one image: source (3, S, S) in [0, 1] at the model's size -> (T, 3, S, S) frames in
        [0, 1] on the CPU, the first rendering the source's own motion (see :func:`predict_from_motion`).

        Raises:
            CapabilityError: the model has no motion predictor.
        """
        self.require_prediction()
        return predict_from_motion(self, source, num_frames, action, seed, batch_size)[0]

    def walk_directions(self, source: torch.Tensor, offsets: torch.Tensor,
                        directions: list[int] | None = None) -> torch.Tensor:
        """The source animated along one latent motion direction at a time (models with a motion dictionary):
        source (1, 3, S, S), offsets (V,) -> (len(directions), V, 3, S, S).

        Raises:
            CapabilityError: the model has no latent motion directions.
        """
        raise CapabilityError(f"a {self.family} model has no latent motion directions to walk")

    def build_optional_network(self, name: str) -> nn.Module:
        """A fresh network ``name`` of :attr:`optional_networks`, built from the experiment."""
        raise NotImplementedError(f"{type(self).__name__} lists no optional network {name!r}")

    def export_graphs(self) -> tuple[ExportGraph, ...]:
        """The model's networks as graphs a runtime can run without PyTorch (``motiontransfer export``; see
        :mod:`motiontransfer.inference.onnx_export`): the source-side work as graphs of its own, so that a source is
        encoded once, and the driving batch as a dynamic axis. The graphs use the model's networks (not copies).

        Raises:
            CapabilityError: the family does not describe its networks as exportable graphs.
        """
        raise CapabilityError(f"a {self.family} model cannot be exported to ONNX yet: its family does not describe "
                              "its networks as exportable graphs")

    # ------------------------------------------------------------------------------------------ model files

    @classmethod
    def from_model_file(cls, model_file: ModelFile, device: str | torch.device | None = None) -> AnimationModel:
        """Build the model from a :class:`~motiontransfer.checkpoint.ModelFile` holding the networks named in
        :attr:`inference_networks` (others, such as a discriminator, are ignored; :attr:`optional_networks` are
        loaded when present) and ``metadata["config"]``, in eval mode on ``device`` (default CPU).

        Raises:
            UserError: no or an invalid config in the metadata, or weights that do not match it.
        """
        config = model_file.metadata.get("config")
        if not isinstance(config, dict):
            raise UserError("the model file has no config in its metadata")
        try:
            experiment = from_dict(cls.experiment_type, config)
        except ConfigError as exc:
            raise ConfigError(f"the model file's config: {exc}") from None
        with WithoutRandomInitialisation():
            model = cls(experiment)  # type: ignore[call-arg]
        modules = {name: getattr(model, name) for name in cls.inference_networks}
        if any(name not in modules for name, _ in model.named_children()):
            model = cls(experiment)  # type: ignore[call-arg]  # a network the file does not fill needs its init
            modules = {name: getattr(model, name) for name in cls.inference_networks}
        load_state_dicts(modules, model_file.networks, "the weights do not match the model file's config")
        for name in cls.optional_networks:
            if name in model_file.networks:
                with WithoutRandomInitialisation():
                    network = model.build_optional_network(name)
                load_state_dicts({name: network}, model_file.networks,
                                 f"the {name} does not match the model file's config")
                setattr(model, name, network)
        return model.to(device if device is not None else "cpu").eval()

    def networks_present(self) -> list[str]:
        """Attribute names of the :attr:`inference_networks` and of the :attr:`optional_networks` that are set."""
        return [*self.inference_networks, *(n for n in self.optional_networks if getattr(self, n) is not None)]

    def mark_inference_only(self, description: str) -> None:
        """Record that the networks were rewritten for inference (``description``: how); see
        :attr:`inference_only`."""
        self.inference_only = description

    def to_model_file(self) -> ModelFile:
        """The :attr:`inference_networks`' weights (and the :attr:`optional_networks` that are set) with
        ``metadata["config"]`` = the experiment as plain data.

        Raises:
            CapabilityError: a model prepared for inference (:attr:`inference_only`): load it again without the
                fast path to save it.
        """
        if self.inference_only is not None:
            raise CapabilityError(f"this {self.family} model was prepared for inference ({self.inference_only}) and "
                                  "cannot be saved; load it again with ", Term("accelerate=False"),
                                  " (and fp32) to save it")
        networks = state_dicts({name: getattr(self, name) for name in self.networks_present()})
        return ModelFile(self.family, networks, {"config": to_dict(self.experiment)})


def check_mode(mode: str) -> TransferMode:
    """Validate a transfer mode name; raise UserError for anything but ``relative`` / ``absolute``."""
    if mode not in TRANSFER_MODES:
        raise UserError(f"unknown transfer mode {mode!r}; use {' or '.join(TRANSFER_MODES)}")
    return mode  # type: ignore[return-value]


@runtime_checkable
class VideoPredictor(Protocol):
    """An image-to-video model as the prediction protocol sees it (every :class:`AnimationModel` that passes
    :func:`check_predictor`, or a stand-in)."""

    size: int

    def predict_video(self, source: torch.Tensor, num_frames: int, action: str | None = None,
                      seed: int = 0) -> torch.Tensor:
        """(3, S, S) source frame in [0, 1] -> (T, 3, S, S) generated frames in [0, 1], the first being the
        source's reconstruction; ``action`` is ignored by unconditional models; ``seed`` picks the sample."""
        ...


def check_predictor(model: Any) -> VideoPredictor:
    """``model`` if it generates videos from an image, else a CapabilityError saying why not."""
    if isinstance(model, AnimationModel):
        model.require_prediction()
    elif not isinstance(model, VideoPredictor):
        raise CapabilityError(f"a {type(model).__name__} cannot generate videos from an image (image-to-video)")
    return model


def predict_from_motion(model: AnimationModel, source: torch.Tensor, num_frames: int, action: str | None = None,
                        seed: int = 0, batch_size: int = 8) -> tuple[torch.Tensor, Any]:
    """Image-to-video through predicted motion (:meth:`AnimationModel.predict_motion`): the source is encoded once,
    the motion of ``num_frames`` frames predicted and rendered in batches of ``batch_size``.

    Args:
        model: a model that predicts motion.
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


class WithoutRandomInitialisation(TorchFunctionMode):
    """Within this context (this thread only), modules are built without drawing their random initial weights:
    the random fills (``Tensor.uniform_`` / ``normal_`` / ``random_``, torch.nn.init's random initialisers) leave
    their tensor as it is, and ``torch.rand`` / ``randn`` (and their ``_like`` forms) return uninitialised tensors.
    For networks whose every parameter is loaded next: the draws took 0.26-0.30 s of each vox-256 model load.
    Other operations run as usual (building on the meta device instead imported torch._dynamo, 0.8 s).
    """

    # torch.nn.init's functions are caught themselves: calls made inside a caught call are not seen again.
    SKIPPED_FILLS: ClassVar[frozenset[str]] = frozenset({
        "uniform_", "normal_", "random_", "trunc_normal_", "kaiming_uniform_", "kaiming_normal_", "xavier_uniform_",
        "xavier_normal_", "orthogonal_", "sparse_"})
    EMPTY_FACTORIES: ClassVar[dict[str, Callable[..., torch.Tensor]]] = {
        "rand": torch.empty, "randn": torch.empty, "rand_like": torch.empty_like, "randn_like": torch.empty_like}

    def __torch_function__(self, func: Callable[..., Any], types: Any, args: tuple[Any, ...] = (),
                           kwargs: dict[str, Any] | None = None) -> Any:
        kwargs = dict(kwargs or {})
        name = getattr(func, "__name__", "")  # by name: Tensor methods arrive as torch._C.TensorBase's
        if name in self.SKIPPED_FILLS:  # Tensor.uniform_(...) or torch.nn.init.uniform_(tensor=...)
            target = args[0] if args else kwargs.get("tensor")
            if isinstance(target, torch.Tensor):
                return target
        if name in self.EMPTY_FACTORIES:
            kwargs.pop("generator", None)
            return self.EMPTY_FACTORIES[name](*args, **kwargs)
        return func(*args, **kwargs)


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
