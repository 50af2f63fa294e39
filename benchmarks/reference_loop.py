"""The official demo loops, written with our modules: the reference that benchmarks/speed.py measures
``motiontransfer animate`` against (issue 19).

FOMM, as the official ``demo.py --relative --adapt_scale --cpu`` does it:

* the whole driving video is read into memory first, as float64 (H, W, 3) frames (what ``imageio.mimread`` +
  ``skimage.transform.resize`` give), then copied into one float32 (1, 3, T, H, W) tensor;
* the source keypoints and the initial driving frame's keypoints are computed once; everything else is per frame,
  batch 1, eager fp32: the keypoint detector on the driving frame, ``normalize_kp`` (relative keypoints and
  Jacobians, the movement scale from scipy's convex hulls as the official, recomputed every frame), and the FULL
  generator forward ``generator(source, kp_source=..., kp_driving=...)``, which encodes the source again for every
  frame;
* every prediction is kept in a Python list of float32 numpy arrays and the video is written at the end.

LIA, as the official ``run_demo.py`` does it: the whole driving video in memory as one float32 tensor in [-1, 1], the
initial frame's motion once, then per frame the full generator forward ``gen(source, driving, h_start)``: the source
is encoded again (appearance latent, features and its motion code) with the driving frame's motion code, and decoded;
predictions kept in a list, the video written at the end. The relative motion is Eq. 12 on the motion magnitudes
(``A_d - A_1 + A_s``; the dictionary is linear, so this equals the official sum of three directions).

Usage:
    python benchmarks/reference_loop.py --checkpoint M.mt --source S.png --driving D.mp4 --out O.mp4
        [--mode relative|absolute] [--adapt-scale]
The checkpoint is a motiontransfer model file (``.mt``) of the fomm or lia family; the networks are used as they
are (eager, fp32, no fast path). Threads: torch's default, or ``OMP_NUM_THREADS``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.spatial import ConvexHull

from motiontransfer.checkpoint import load_model_file
from motiontransfer.experiment import model_from_file
from motiontransfer.families.fomm.animator import FOMMAnimator
from motiontransfer.families.lia.animator import LIAAnimator
from motiontransfer.families.lia.networks import to_signed, to_unit
from motiontransfer.ops.keypoints import relative_jacobians, relative_keypoints
from motiontransfer.video.io import DEFAULT_FPS, VideoReader, VideoWriter, read_image

Keypoints = dict[str, torch.Tensor]


def official_hull_scale(kp_source: torch.Tensor, kp_initial: torch.Tensor) -> float:
    """The movement scale as the official ``normalize_kp`` computes it: the square roots of the areas of scipy's
    convex hulls (``ConvexHull(...).volume``) of batch element 0's keypoints (K, 2)."""
    source_area = ConvexHull(kp_source[0].detach().cpu().numpy()).volume
    driving_area = ConvexHull(kp_initial[0].detach().cpu().numpy()).volume
    return float(np.sqrt(source_area) / np.sqrt(driving_area))


def read_whole_video(path: str | Path, size: int) -> tuple[list[np.ndarray], float]:
    """Every frame of ``path`` at ``size`` x ``size`` as a float64 (H, W, 3) array in [0, 1] (as the official
    ``mimread`` + skimage ``resize``), and the frame rate."""
    with VideoReader(path, size=size) as reader:
        fps = reader.info.fps or DEFAULT_FPS
        frames = [frame.permute(1, 2, 0).numpy().astype(np.float64) for frame in reader]
    return frames, fps


def read_video_tensor(path: str | Path, size: int) -> tuple[torch.Tensor, float]:
    """The whole video as one float32 (T, 3, size, size) tensor in [0, 1] (as the official LIA demo's
    ``torchvision.io.read_video`` + normalisation), and the frame rate."""
    with VideoReader(path, size=size) as reader:
        fps = reader.info.fps or DEFAULT_FPS
        video = torch.stack(list(reader))
    return video, fps


def read_source(path: str | Path, size: int) -> np.ndarray:
    """The source image at ``size`` x ``size`` as a float64 (H, W, 3) array in [0, 1]."""
    return read_image(path, size=size).permute(1, 2, 0).numpy().astype(np.float64)


def normalize_keypoints(kp_source: Keypoints, kp_driving: Keypoints, kp_initial: Keypoints, *, relative: bool,
                        relative_jacobian: bool, adapt_scale: bool) -> Keypoints:
    """The official ``normalize_kp``: the driving keypoints, or (relative) their change since the initial driving
    frame, scaled by the hulls' size ratio when ``adapt_scale``, added to the source's; Jacobians likewise
    (``J_D J_D,1^-1 J_S``) when ``relative_jacobian``."""
    scale = official_hull_scale(kp_source["value"], kp_initial["value"]) if adapt_scale else 1.0
    normalized = dict(kp_driving)
    if relative:
        normalized["value"] = relative_keypoints(kp_source["value"], kp_driving["value"], kp_initial["value"], scale)
        if relative_jacobian and "jacobian" in kp_driving:
            normalized["jacobian"] = relative_jacobians(kp_source["jacobian"], kp_driving["jacobian"],
                                                        kp_initial["jacobian"])
    return normalized


def fomm_frame(model: FOMMAnimator, source: torch.Tensor, kp_source: Keypoints, kp_initial: Keypoints,
               frame: torch.Tensor, *, relative: bool = True, adapt_scale: bool = True) -> torch.Tensor:
    """One iteration of the official FOMM loop: keypoints of ``frame`` (1, 3, H, W), normalised, then the full
    generator forward from the source image. Returns the prediction (1, 3, H, W)."""
    kp_driving = model.kp_detector(frame)
    kp_norm = normalize_keypoints(kp_source, kp_driving, kp_initial, relative=relative,
                                  relative_jacobian=relative and model.use_relative_jacobian, adapt_scale=adapt_scale)
    return model.generator(source, kp_source=kp_source, kp_driving=kp_norm)["prediction"]


@torch.no_grad()
def fomm_predictions(model: FOMMAnimator, source_image: np.ndarray, driving_video: list[np.ndarray], *,
                     relative: bool = True, adapt_scale: bool = True) -> list[np.ndarray]:
    """The official ``make_animation``: (H, W, 3) float source and frames -> one (H, W, 3) float32 prediction per
    frame, all kept in memory."""
    source = torch.tensor(source_image[np.newaxis].astype(np.float32)).permute(0, 3, 1, 2)
    driving = torch.tensor(np.array(driving_video)[np.newaxis].astype(np.float32)).permute(0, 4, 1, 2, 3)
    kp_source = model.kp_detector(source)
    kp_initial = model.kp_detector(driving[:, :, 0])
    predictions = []
    for index in range(driving.shape[2]):
        prediction = fomm_frame(model, source, kp_source, kp_initial, driving[:, :, index], relative=relative,
                                adapt_scale=adapt_scale)
        predictions.append(np.transpose(prediction.numpy(), [0, 2, 3, 1])[0])
    return predictions


def lia_frame(model: LIAAnimator, source: torch.Tensor, start: torch.Tensor | None,
              frame: torch.Tensor) -> torch.Tensor:
    """One iteration of the official LIA loop: the full generator forward (source encoded again, the driving
    frame's motion code, decode), images in [-1, 1]; ``start`` the initial frame's motion code (None: absolute).
    Returns the prediction (1, 3, H, W) in [-1, 1]."""
    generator = model.generator
    latent, features = generator.enc.appearance(source)
    magnitudes = generator.enc.motion(frame)
    if start is not None:
        magnitudes = magnitudes - start + generator.enc.fc(latent)
    return generator.dec(latent, generator.latent_shift(magnitudes), features)


@torch.no_grad()
def lia_predictions(model: LIAAnimator, source_image: np.ndarray, driving_video: torch.Tensor, *,
                    relative: bool = True) -> list[np.ndarray]:
    """The official LIA demo loop: (H, W, 3) float source and the whole video (T, 3, H, W) in [0, 1] -> one
    (H, W, 3) float32 prediction in [0, 1] per frame, all kept in memory."""
    source = to_signed(torch.tensor(source_image[np.newaxis].astype(np.float32)).permute(0, 3, 1, 2))
    video = to_signed(driving_video[None])
    start = model.generator.enc.motion(video[:, 0]) if relative else None
    predictions = []
    for index in range(video.shape[1]):
        prediction = to_unit(lia_frame(model, source, start, video[:, index]))
        predictions.append(np.transpose(prediction.numpy(), [0, 2, 3, 1])[0])
    return predictions


def run(checkpoint: str | Path, source: str | Path, driving: str | Path, out: str | Path, *,
        relative: bool = True, adapt_scale: bool = False) -> int:
    """Load, read everything, animate frame by frame, write ``out``; returns the number of frames written."""
    model: Any = model_from_file(load_model_file(checkpoint), device="cpu")
    source_image = read_source(source, model.size)
    if isinstance(model, FOMMAnimator):
        driving_video, fps = read_whole_video(driving, model.size)
        predictions = fomm_predictions(model, source_image, driving_video, relative=relative, adapt_scale=adapt_scale)
    elif isinstance(model, LIAAnimator):
        if adapt_scale:
            raise SystemExit("LIA has no keypoints: there is no movement scale to adapt")
        video, fps = read_video_tensor(driving, model.size)
        predictions = lia_predictions(model, source_image, video, relative=relative)
    else:
        raise SystemExit(f"the reference loop covers fomm and lia models, not {model.family}")
    with VideoWriter(out, fps=fps) as writer:
        for prediction in predictions:
            writer.write(prediction)
    return len(predictions)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True, help="motiontransfer model file (fomm or lia)")
    parser.add_argument("--source", type=Path, required=True)
    parser.add_argument("--driving", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--mode", choices=["relative", "absolute"], default="relative")
    parser.add_argument("--adapt-scale", action="store_true", help="FOMM: scale movements by the keypoint hulls")
    args = parser.parse_args()
    run(args.checkpoint, args.source, args.driving, args.out, relative=args.mode == "relative",
        adapt_scale=args.adapt_scale)


if __name__ == "__main__":
    main()
