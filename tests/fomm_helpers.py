"""Small FOMM experiments, models and files shared by the transfer, inference, convert and CLI tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import yaml

from motiontransfer.checkpoint import save_model_file
from motiontransfer.experiment import experiment_from_dict
from motiontransfer.families.fomm.animator import FOMMAnimator
from motiontransfer.families.fomm.config import FommExperiment
from motiontransfer.families.fomm.networks import build_fomm

SIZE = 64


def small_config_dict(num_kp: int = 5, generator_features: int = 8) -> dict[str, Any]:
    """An official-style experiment (as parsed YAML): 64 px, 5 keypoints, half-resolution detector and motion."""
    return {
        "dataset_params": {"frame_shape": [SIZE, SIZE, 3]},
        "model_params": {
            "common_params": {"num_kp": num_kp, "num_channels": 3, "estimate_jacobian": True},
            "kp_detector_params": {"temperature": 0.1, "block_expansion": 8, "max_features": 32, "num_blocks": 3,
                                   "scale_factor": 0.5},
            "generator_params": {
                "block_expansion": generator_features, "max_features": 32, "num_down_blocks": 2,
                "num_bottleneck_blocks": 2, "estimate_occlusion_map": True,
                "dense_motion_params": {"block_expansion": 8, "max_features": 32, "num_blocks": 3,
                                        "scale_factor": 0.5},
            },
            "discriminator_params": {"scales": [1], "block_expansion": 8, "max_features": 32, "num_blocks": 3,
                                     "sn": True},
        },
    }


def small_experiment(**kwargs: Any) -> FommExperiment:
    return experiment_from_dict(small_config_dict(**kwargs))


def randomize_(module: torch.nn.Module, seed: int) -> None:
    """Give every parameter and BatchNorm statistic non-trivial values (the Jacobian head starts at zero, so
    freshly built networks would give identity Jacobians and nothing would test their transfer)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in module.state_dict().items():
            if not tensor.is_floating_point():
                continue
            if name.endswith("running_var"):
                tensor.copy_(0.5 + torch.rand(tensor.shape, generator=generator))
            elif not name.endswith("down.weight"):  # keep the anti-aliasing kernels
                tensor.copy_(0.1 * torch.randn(tensor.shape, generator=generator))
        head = getattr(module, "jacobian", None)
        if isinstance(head, torch.nn.Conv2d):  # keep Jacobians well away from singular
            head.bias.copy_(torch.tensor([1.0, 0.0, 0.0, 1.0]).repeat(head.out_channels // 4))


def small_animator(seed: int = 0, **kwargs: Any) -> FOMMAnimator:
    """A FOMM animator of :func:`small_experiment` with random weights, eval mode, CPU."""
    experiment = small_experiment(**kwargs)
    kp_detector, generator, _ = build_fomm(experiment.model_params)
    randomize_(kp_detector, seed)
    randomize_(generator, seed + 1)
    return FOMMAnimator(experiment, kp_detector, generator).eval()


def official_checkpoint(path: Path, seed: int = 0, legacy: bool = False, **kwargs: Any) -> Path:
    """Save randomly initialised small networks in the official ``Logger.save_cpk`` layout (``legacy``: the
    pre-1.6 non-zip serialisation the released checkpoints use)."""
    experiment = small_experiment(**kwargs)
    kp_detector, generator, discriminator = build_fomm(experiment.model_params)
    randomize_(kp_detector, seed)
    randomize_(generator, seed + 1)
    optimizer = torch.optim.Adam(kp_detector.parameters(), lr=2e-4)
    torch.save({"generator": generator.state_dict(), "kp_detector": kp_detector.state_dict(),
                "discriminator": discriminator.state_dict(), "optimizer_generator": optimizer.state_dict(),
                "optimizer_discriminator": optimizer.state_dict(), "optimizer_kp_detector": optimizer.state_dict(),
                "epoch": 7}, path, _use_new_zipfile_serialization=not legacy)
    return path


def config_yaml(path: Path, **kwargs: Any) -> Path:
    path.write_text(yaml.safe_dump(small_config_dict(**kwargs)))
    return path


def model_file(path: Path, seed: int = 0) -> Path:
    save_model_file(path, small_animator(seed).to_model_file())
    return path


def video_with_audio(path: Path, num_frames: int = 6, size: int = 48, fps: int = 10, seed: int = 0) -> Path:
    """A short H.264 mp4 of moving noise blobs with an AAC 440 Hz sine track (PyAV)."""
    import av
    import numpy as np

    rng = np.random.default_rng(seed)
    base = rng.random((size, size + 16, 3))
    rate, duration = 44100, num_frames / fps
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = size + 16, size, "yuv420p"
        audio = container.add_stream("aac", rate=rate)
        audio.layout = "mono"
        for t in range(num_frames):
            image = (255 * np.roll(base, 2 * t, axis=1)).astype(np.uint8)
            for packet in video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
        samples = (0.3 * np.sin(2 * np.pi * 440 * np.arange(int(rate * duration)) / rate)).astype(np.float32)
        for start in range(0, len(samples), 1024):
            chunk = samples[start:start + 1024]
            frame = av.AudioFrame.from_ndarray(chunk[None], format="flt", layout="mono")
            frame.sample_rate = rate
            frame.pts = start
            for packet in audio.encode(frame):
                container.mux(packet)
        for packet in audio.encode():
            container.mux(packet)
    return path
