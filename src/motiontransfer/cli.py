"""The ``motiontransfer`` command line.

Each command is a thin layer over the Python API: parse flags, call the library, report. A user mistake
(:class:`~motiontransfer.errors.UserError`, or a bad or missing flag) prints one line ``motiontransfer: error:
...`` naming the file or flag and exits with code 2; so does an output the machine cannot take (no space left, a
read-only or permission-denied folder). Ctrl-C (SIGINT) prints ``motiontransfer: interrupted`` and exits with 130,
SIGTERM ``motiontransfer: terminated`` and 143; either way the atomic writers delete their temporary files and leave
no output. Warnings print one line ``motiontransfer: warning: ...``. A traceback means a bug.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import warnings
from collections.abc import Iterable, Iterator, Mapping
from enum import Enum
from pathlib import Path
from types import FrameType
from typing import Annotated, Any, TextIO

import typer

from motiontransfer.errors import ArgumentError, UserError
from motiontransfer.fileio import OUTPUT_FAULTS

try:  # typer >= 0.29 ships its own copy of click; older versions use the click package
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover - depends on the installed typer
    from click import exceptions as click_exceptions

app = typer.Typer(
    name="motiontransfer",
    help="Self-supervised image animation: bring a still image to life with the motion of a driving video.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


class FamilyName(str, Enum):
    puppets = "puppets"
    faces = "faces"
    shapes = "shapes"


class VideoFormatName(str, Enum):
    mp4 = "mp4"
    png = "png"


def _positive(name: str, value: int, minimum: int = 1) -> int:
    if value < minimum:
        raise UserError(f"{name} must be at least {minimum}, got {value}")
    return value


MODEL_FILE_SUFFIXES = (".mt", ".safetensors")


def _same_path(first: Path, second: Path) -> bool:
    """Whether two paths name the same file or folder (also through ``..``, symbolic or hard links)."""
    with contextlib.suppress(OSError):
        if first.exists() and second.exists():
            return os.path.samefile(first, second)
    return first.resolve() == second.resolve()


def _require_distinct(outputs: Mapping[str, Path | None], inputs: Mapping[str, str | Path | None]) -> None:
    """Refuse an output that is one of the command's inputs, before anything is read or written.

    Args:
        outputs: option (``--out``, or a description of a derived file) -> path written, or None.
        inputs: option -> path read, or None; only existing files and folders count (a bundled name such as
            ``vox-256`` is not a path).

    Raises:
        UserError: an output path is the same file or folder as an input.
    """
    for out_name, out in outputs.items():
        for in_name, given in inputs.items():
            if out is None or given is None or not (Path(given).exists() or Path(given).is_symlink()):
                continue
            if _same_path(Path(out), Path(given)):
                raise UserError(f"{out_name} {out} is the same path as {in_name} {given}; writing it would destroy "
                                "the input: choose another output path")


def _require_folder_output(option: str, path: Path) -> None:
    """Refuse an output folder that is not one, or below something that is not a folder, before any work."""
    from motiontransfer.fileio import describe_kind, not_a_folder

    if path.exists() and not path.is_dir():
        raise UserError(f"{option} {path} is {describe_kind(path)}; give a folder")
    blocker = not_a_folder(path)
    if blocker is not None:
        raise UserError(f"{option} {path}: cannot create the folder; {blocker} is {describe_kind(blocker)}")


def _data_splits(data: str) -> dict[str, Path]:
    """The folders of a dataset option that outputs must not replace: the dataset and its splits."""
    return {"--data": Path(data), "--data's test split": Path(data) / "test",
            "--data's train split": Path(data) / "train"}


def _require_model_file_suffix(option: str, path: Path) -> None:
    """Model files are safetensors files: refuse an output name that says otherwise (``model.pth``)."""
    if path.suffix.lower() not in MODEL_FILE_SUFFIXES:
        raise UserError(f"{option} {path}: a model file is written in the safetensors format; name it with "
                        f"{' or '.join(MODEL_FILE_SUFFIXES)} (e.g. {path.with_suffix('.mt').name})")


class BundledModelName(str, Enum):
    faces = "fomm-faces"
    puppets = "fomm-puppets"


class CropName(str, Enum):
    none = "none"
    face = "face"
    body = "body"


class SubjectName(str, Enum):
    face = "face"
    body = "body"


class SplitName(str, Enum):
    train = "train"
    test = "test"


@app.command("demo")
def demo(
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("out"),
    model: Annotated[BundledModelName, typer.Option(help="Bundled model to run.")] = BundledModelName.faces,
    frames: Annotated[int, typer.Option(help="Number of driving frames.")] = 64,
    seed: Annotated[int, typer.Option(help="Random seed: picks the two test identities and the motion.")] = 0,
    device: Annotated[str | None, typer.Option(help="cpu, cuda, cuda:N [default: cuda if available].")] = None,
) -> None:
    """Run the embedded default job: a bundled model animates one procedural identity with another's motion.

    Writes OUT/demo.mp4 and OUT/demo-viz.mp4 (source | driving | occlusion | prediction | ground truth).
    """
    from motiontransfer.demo import run_demo

    _require_folder_output("--out", out)
    result = run_demo(out, model.value, _positive("--frames", frames), seed, device=device, progress=_progress)
    typer.echo(f"wrote {result.video}")
    typer.echo(f"wrote {result.visualization}")
    typer.echo(f"L1 to the ground truth {result.l1:.4f} (copying the source frame: {result.copy_l1:.4f})")


@app.command("make-dataset")
def make_dataset(
    family: Annotated[FamilyName, typer.Argument(help="Which procedural family to render.")],
    out: Annotated[Path, typer.Option(help="Output dataset root (FOMM layout: OUT/train, OUT/test).")],
    videos: Annotated[int, typer.Option(help="Number of training videos.")] = 100,
    test_videos: Annotated[int | None, typer.Option(help="Number of test videos [default: videos / 5].")] = None,
    frames: Annotated[int, typer.Option(help="Frames per video.")] = 64,
    size: Annotated[int, typer.Option(help="Frame size in pixels (square).")] = 64,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same dataset.")] = 0,
    clips_per_identity: Annotated[int, typer.Option(help="Videos per identity (different motions).")] = 1,
    video_format: Annotated[VideoFormatName, typer.Option("--format", help="mp4 files or PNG frame folders.")]
    = VideoFormatName.mp4,
    preview: Annotated[Path | None, typer.Option(help="Also write a PNG grid of sample frames with GT keypoints.")]
    = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace the videos of an earlier dataset in OUT "
                                                                "(without it such a folder is refused).")] = False,
) -> None:
    """Render a procedural dataset with ground truth (FOMM layout).

    Each video gets a JSON sidecar with GT keypoints, visibility, identity parameters and action label.
    """
    from motiontransfer.data.synthetic import ProceduralSource, ProceduralSpec
    from motiontransfer.data.synthetic.writer import check_dataset_root, check_frame_size, write_dataset, write_preview

    _positive("--videos", videos)
    _positive("--frames", frames)
    check_frame_size(size)
    _positive("--clips-per-identity", clips_per_identity)
    if test_videos is not None:
        _positive("--test-videos", test_videos, 0)
    if preview is not None and preview.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        raise UserError(f"--preview must name a .png or .jpg file, got {preview}")
    check_dataset_root(out, overwrite)
    counts = write_dataset(family.value, out, videos, frames, size, seed, test_videos, video_format.value,
                           clips_per_identity, overwrite=overwrite)
    typer.echo(f"wrote {counts['train']} train and {counts['test']} test videos to {out}")
    if preview is not None:
        spec = ProceduralSpec(family=family.value, size=size, videos=videos, frames=frames, seed=seed,
                              clips_per_identity=clips_per_identity)
        typer.echo(f"wrote {write_preview(ProceduralSource(spec), preview)}")


class TransferModeName(str, Enum):
    relative = "relative"
    absolute = "absolute"


class LandmarksName(str, Enum):
    model = "model"
    dlib = "dlib"


# Options shared by the commands that load a model.
CheckpointOption = Annotated[Path, typer.Option(help="Model file (.mt), bundled model name (fomm-faces, fomm-puppets) "
                                                      "or official checkpoint (needs --config).")]
ConfigOption = Annotated[str | None, typer.Option(help="Config of an official checkpoint: bundled name or YAML "
                                                     "(LIA checkpoints default to lia-vox-256).")]
FamilyOption = Annotated[str | None, typer.Option(help="Family of an official checkpoint given without --config "
                                                     "(lia) [default: detected from the file].")]
BatchSizeOption = Annotated[int | None, typer.Option(help="Frames per forward pass [default: on the CPU 1 at 256 px "
                                                          "and up to 8 for smaller frames; 8 on GPUs].")]


class PrecisionName(str, Enum):
    fp32 = "fp32"
    bf16 = "bf16"


PrecisionOption = Annotated[PrecisionName, typer.Option(help="fp32, or bf16 for the decoder stacks (CPUs with "
                                                             "AVX512-BF16 or AMX, recent GPUs; keypoints and motion "
                                                             "stay fp32).")]
EagerOption = Annotated[bool, typer.Option("--eager", help="Run the networks as trained, without the fast path "
                                                           "(which is the default on the CPU and agrees with them "
                                                           "to 1e-4).")]
DeviceOption = Annotated[str | None, typer.Option(help="cpu, cuda, cuda:N [default: cuda if available].")]


def _best_frame(value: str | None) -> int | str | None:
    """``--best-frame``: None, ``auto`` or a frame number >= 0."""
    if value is None or value == "auto":
        return value
    try:
        number = int(value)
    except ValueError:
        number = -1
    if number < 0:
        raise UserError(f"--best-frame must be 'auto' or a frame number >= 0, got {value!r}")
    return number


def _progress(items: Iterable[dict[str, Any]], total: int | None) -> Iterable[dict[str, Any]]:
    """A tqdm progress bar over the frames on stderr (only on a terminal)."""
    from tqdm import tqdm

    return tqdm(items, total=total, unit="frame", disable=None, leave=False)


@app.command("animate")
def animate(
    checkpoint: CheckpointOption,
    source: Annotated[Path, typer.Option(help="Source image.")],
    driving: Annotated[Path, typer.Option(help="Driving video (file or folder of frames).")],
    out: Annotated[Path, typer.Option(help="Output video; gets the driving video's fps and audio.")],
    config: ConfigOption = None,
    family: FamilyOption = None,
    mode: Annotated[TransferModeName, typer.Option(help="Relative (Eqs. 14-15) or absolute motion transfer.")]
    = TransferModeName.relative,
    adapt_scale: Annotated[bool, typer.Option("--adapt-scale", help="Scale movements by the keypoint hulls.")]
    = False,
    best_frame: Annotated[str | None, typer.Option(help="Initial driving frame: 'auto' (best pose match) or N.")]
    = None,
    landmarks: Annotated[LandmarksName, typer.Option(help="Poses for --best-frame auto: model keypoints or dlib.")]
    = LandmarksName.model,
    visualize: Annotated[bool, typer.Option("--visualize", help="Also write <OUT stem>-viz<suffix>.")] = False,
    crop: Annotated[CropName, typer.Option(help="Animate the source's face or body crop, following the driving "
                                                "video's, and paste it back into the full source (output at the "
                                                "source's size); none: whole frames.")] = CropName.none,
    smooth: Annotated[bool, typer.Option("--smooth", help="Smooth the driving motion over time (centred, no lag) "
                                                          "against keypoint jitter.")] = False,
    batch_size: BatchSizeOption = None,
    device: DeviceOption = None,
    precision: PrecisionOption = PrecisionName.fp32,
    eager: EagerOption = False,
) -> None:
    """Animate a source image with the motion of a driving video."""
    from motiontransfer.api import load
    from motiontransfer.inference.landmarks import get_landmarker
    from motiontransfer.inference.smoothing import as_motion_smoother
    from motiontransfer.inference.video import animate_video, visualization_path
    from motiontransfer.preprocess.animate import animate_video_cropped

    initial = _best_frame(best_frame)
    if batch_size is not None:
        _positive("--batch-size", batch_size)
    _require_distinct({"--out": out, "--visualize's output": visualization_path(out) if visualize else None},
                      {"--driving": driving, "--source": source, "--checkpoint": checkpoint, "--config": config})
    animator = load(checkpoint, config=config, device=device, family=family, precision=precision.value,
                    accelerate=False if eager else None)
    options: dict[str, Any] = {"mode": mode.value, "adapt_scale": adapt_scale, "best_frame": initial,
                               "batch_size": batch_size, "landmarks": get_landmarker(landmarks.value),
                               "visualize": visualize, "progress": _progress, "smooth": as_motion_smoother(smooth)}
    if crop is CropName.none:
        paths = animate_video(animator.model, source, driving, out, **options)
    else:
        paths = animate_video_cropped(animator.model, source, driving, out, crop=crop.value, **options)
    for path in paths:
        typer.echo(f"wrote {path}")


@app.command("crop")
def crop(
    video: Annotated[Path, typer.Argument(help="Video file or folder of frames.")],
    out: Annotated[Path, typer.Option(help="Dataset folder for the clips (FOMM layout).")],
    kind: Annotated[SubjectName, typer.Option(help="Subject: face (dlib, the eval extra) or body (mediapipe, the "
                                                   "body-eval extra).")] = SubjectName.face,
    size: Annotated[int, typer.Option(help="Side of the square clips in pixels.")] = 256,
    margin: Annotated[float | None, typer.Option(help="Room around the subject on each side, a fraction of its "
                                                      "size [default: 0.4 for faces, 0.1 for bodies].")] = None,
    min_frames: Annotated[int, typer.Option(help="Drop tracks with fewer frames.")] = 30,
    split: Annotated[SplitName | None, typer.Option(help="Write into OUT/train or OUT/test [default: OUT].")]
    = None,
) -> None:
    """Find, track and crop the faces or bodies of a real video into square clips for training.

    Each track of at least --min-frames frames becomes OUT/<video stem>#<k>.mp4 (its id is the video's stem), with
    <video stem>#<k>.json: the crop box of every frame and the raw detection. A track is cut where the subject is
    lost for more than 5 frames or jumps; its box is smoothed over time.
    """
    from motiontransfer.preprocess.crop import crop_video

    _require_folder_output("--out", out)
    _require_distinct({"--out": out}, {"VIDEO": video})
    report = crop_video(video, out, kind=kind.value, size=size, margin=margin, min_frames=min_frames,
                        split=split.value if split is not None else None, progress=_progress)
    tracked = report.tracked
    typer.echo(f"{kind.value} found in {tracked.detected_frames} of {tracked.num_frames} frames "
               f"({100 * tracked.detection_rate:.1f}%); {len(tracked.tracks)} track(s), "
               f"{len(report.dropped)} shorter than --min-frames {min_frames} dropped")
    for clip in report.clips:
        typer.echo(f"wrote {clip.path} (frames {clip.start}-{clip.start + clip.num_frames - 1}, box centre moves "
                   f"{clip.box_motion:.2f} px a frame) and {clip.boxes_path.name}")


@app.command("reconstruct")
def reconstruct(
    checkpoint: CheckpointOption,
    data: Annotated[str, typer.Option(help="Dataset folder (its test split) or procedural:FAMILY[:options].")],
    config: ConfigOption = None,
    family: FamilyOption = None,
    out: Annotated[Path | None, typer.Option(help="Folder for the reconstructed videos [default: none written].")]
    = None,
    num_videos: Annotated[int | None, typer.Option(help="Only the first N test videos [default: all].")] = None,
    batch_size: BatchSizeOption = None,
    device: DeviceOption = None,
    precision: PrecisionOption = PrecisionName.fp32,
    eager: EagerOption = False,
) -> None:
    """Video reconstruction (the papers' proxy task): print per-video and mean L1."""
    from motiontransfer.api import load
    from motiontransfer.inference.video import reconstruct_dataset

    if num_videos is not None:
        _positive("--num-videos", num_videos)
    if batch_size is not None:
        _positive("--batch-size", batch_size)
    if out is not None:
        _require_folder_output("--out", out)
        _require_distinct({"--out": out}, _data_splits(data))
    animator = load(checkpoint, config=config, device=device, family=family, precision=precision.value,
                    accelerate=False if eager else None)
    total, frames = 0.0, 0
    for result in reconstruct_dataset(animator.model, data, out, num_videos=num_videos, batch_size=batch_size):
        total, frames = total + result.l1 * result.num_frames, frames + result.num_frames
        typer.echo(f"{result.name}\tL1 {result.l1:.5f}\t{result.num_frames} frames")
    typer.echo(f"mean L1 {total / frames:.5f} over {frames} frames")


class EvaluatorName(str, Enum):
    auto = "auto"
    face = "face"
    body = "body"


class ProtocolName(str, Enum):
    reconstruction = "reconstruction"
    cross = "cross"
    prediction = "prediction"


@app.command("evaluate")
def evaluate(
    checkpoint: CheckpointOption,
    data: Annotated[str, typer.Option(help="Dataset folder (its test split) or procedural:FAMILY[:options].")],
    protocol: Annotated[ProtocolName, typer.Option(help="reconstruction (the papers'), cross (procedural identity "
                                                        "A driven by B, against the ground truth) or prediction "
                                                        "(image-to-video models: action accuracy, diversity).")]
    = ProtocolName.reconstruction,
    metrics: Annotated[str, typer.Option(help="Comma-separated metrics: l1, psnr, ssim, akd, mkr, aed, fd_identity "
                                              "(Fréchet distance of identity embeddings; not FID), lpips, fid, fvd "
                                              "(the last three need weight files, see --metrics-dir).")]
    = "l1,psnr,ssim,akd,mkr,aed,lpips,fid,fvd",
    out: Annotated[Path | None, typer.Option(help="Report folder: metrics.json, curves.png, contact-sheet.png "
                                                  "[default: none written].")] = None,
    config: ConfigOption = None,
    family: FamilyOption = None,
    num_videos: Annotated[int | None, typer.Option(help="Only the first N test videos [default: all].")] = None,
    batch_size: BatchSizeOption = None,
    device: DeviceOption = None,
    precision: PrecisionOption = PrecisionName.fp32,
    eager: EagerOption = False,
    metrics_dir: Annotated[Path | None, typer.Option(help="Folder of the LPIPS / FID / FVD weight files "
                                                          "[default: $MOTIONTRANSFER_METRICS_DIR or "
                                                          "~/.cache/motiontransfer/metrics].")] = None,
    evaluator: Annotated[EvaluatorName, typer.Option(help="Keypoint / identity evaluator for AKD, MKR, AED: auto "
                                                          "(procedural data: the bundled ones; folders: face), face "
                                                          "(dlib, eval extra) or body (mediapipe Pose, body-eval "
                                                          "extra).")] = EvaluatorName.auto,
    samples: Annotated[int, typer.Option(help="prediction: futures generated per test video.")] = 4,
    frames: Annotated[int, typer.Option(help="prediction: frames generated per future.")] = 32,
) -> None:
    """Score a model with the papers' metrics (and ours): prints a table, optionally writes a report."""
    from motiontransfer.api import load
    from motiontransfer.evaluation.protocols import check_metrics
    from motiontransfer.evaluation.runner import evaluate as run_evaluation
    from motiontransfer.evaluation.runner import evaluate_prediction, format_prediction_table, format_table

    names = check_metrics([name.strip() for name in metrics.split(",") if name.strip()])
    if num_videos is not None:
        _positive("--num-videos", num_videos)
    if batch_size is not None:
        _positive("--batch-size", batch_size)
    if out is not None:
        _require_folder_output("--out", out)
        _require_distinct({"--out": out}, _data_splits(data))
    animator = load(checkpoint, config=config, device=device, family=family, precision=precision.value,
                    accelerate=False if eager else None)
    if protocol is ProtocolName.prediction:
        report = evaluate_prediction(animator.model, data, out, samples=_positive("--samples", samples),
                                     num_frames=_positive("--frames", frames, 2), num_videos=num_videos,
                                     batch_size=batch_size, progress=_progress)
        typer.echo(format_prediction_table(report.summary))
        for path in report.paths:
            typer.echo(f"wrote {path}")
        return
    report = run_evaluation(animator.model, data, protocol.value, names, out, num_videos=num_videos,
                            batch_size=batch_size, progress=_progress, metrics_dir=metrics_dir,
                            evaluator=evaluator.value)
    for name, reason in report.skipped.items():
        typer.echo(f"{name}: skipped ({reason})", err=True)
    typer.echo(format_table(report.summary, names))
    for path in report.paths:
        typer.echo(f"wrote {path}")


@app.command("convert")
def convert(
    family: Annotated[str, typer.Option("--from", help="Family of the official checkpoint (fomm, monkeynet, lia, ...: "
                                                       "the families with a converter).")],
    input_path: Annotated[Path, typer.Option("--input", help="Official checkpoint, e.g. vox-cpk.pth.tar.")],
    out: Annotated[Path, typer.Option(help="Model file to write (.mt or .safetensors).")],
    config: Annotated[str | None, typer.Option(help="The checkpoint's config: bundled name (vox-256) or YAML path "
                                                    "[LIA: lia-vox-256].")] = None,
) -> None:
    """Convert an official checkpoint into a model file."""
    from motiontransfer.checkpoint import save_model_file
    from motiontransfer.convert.official import convert_official, converter_names
    from motiontransfer.experiment import load_experiment

    if family not in converter_names():
        raise UserError(f"--from {family}: no converter for this family; available: {', '.join(converter_names())}")
    _require_distinct({"--out": out}, {"--input": input_path, "--config": config})
    _require_model_file_suffix("--out", out)
    experiment = load_experiment(config) if config is not None else None
    if experiment is not None and experiment.family != family:
        raise UserError(f"--config {config} is a {experiment.family} config, but --from is {family}")
    model_file = convert_official(input_path, experiment, config, family, family_option="--from")
    save_model_file(out, model_file)
    networks = ", ".join(f"{name} ({len(state)} tensors)" for name, state in model_file.networks.items())
    typer.echo(f"wrote {out}: {family}; {networks}")


@app.command("export")
def export(
    checkpoint: CheckpointOption,
    out: Annotated[Path, typer.Option(help="Folder to write: one .onnx file per graph and manifest.json.")],
    export_format: Annotated[str, typer.Option("--format", help="Export format (onnx).")] = "onnx",
    config: ConfigOption = None,
    family: FamilyOption = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace a previous export in --out.")] = False,
) -> None:
    """Export a model's networks for runtimes without PyTorch (ONNX; FOMM), each checked in ONNX Runtime against
    PyTorch. Needs the export extra. See docs/export.md."""
    from motiontransfer.api import load
    from motiontransfer.inference.onnx_export import FORMATS, check_output_folder, export_onnx, require_onnx

    if export_format not in FORMATS:
        raise UserError(f"--format {export_format}: unknown export format; available: {', '.join(FORMATS)}")
    require_onnx()
    _require_distinct({"--out": out}, {"--checkpoint": checkpoint, "--config": config})
    check_output_folder(out, overwrite)
    animator = load(checkpoint, config=config, device="cpu", family=family, accelerate=False)
    result = export_onnx(animator.model, out, overwrite=overwrite)
    for check in result.checks:
        typer.echo(f"{check.file}: onnxruntime matches PyTorch, max abs difference {check.max_abs_diff:.2g} "
                   f"(batch {check.batch}, tolerance {check.tolerance:g})")
    typer.echo(f"wrote {result.path}: {animator.family} at {animator.size} px, {len(result.checks)} ONNX graphs "
               f"(opset {result.manifest['opset']}) and manifest.json")


@app.command("train-predictor")
def train_predictor(
    checkpoint: CheckpointOption,
    out: Annotated[Path, typer.Option(help="Model file to write: the model plus its keypoint predictor (.mt).")],
    data: Annotated[str | None, typer.Option(help="Dataset folder (its train split) or procedural:FAMILY[:options] "
                                                  "[default: the config's dataset_params.root_dir].")] = None,
    config: ConfigOption = None,
    family: FamilyOption = None,
    epochs: Annotated[int | None, typer.Option(help="Epochs [default: prediction_params.num_epochs].")] = None,
    num_videos: Annotated[int | None, typer.Option(help="Only the first N training videos [default: all].")]
    = None,
    seed: Annotated[int, typer.Option(help="Seed of the initialisation and the sampled windows.")] = 0,
    device: DeviceOption = None,
) -> None:
    """Train the separately trained image-to-video predictor of a model whose family has one (Monkey-Net's keypoint
    predictor, on the keypoints its detector finds in the training videos, Sec. 4.4)."""
    from motiontransfer.api import load
    from motiontransfer.checkpoint import save_model_file
    from motiontransfer.registry import family as family_spec

    if epochs is not None:
        _positive("--epochs", epochs)
    _require_distinct({"--out": out}, {"--checkpoint": checkpoint, "--config": config, "--data": data})
    _require_model_file_suffix("--out", out)
    model = load(checkpoint, config=config, device=device, family=family, accelerate=False).model
    trainer = family_spec(model.family).predictor_trainer
    if trainer is None:
        raise UserError(f"{checkpoint} is a {model.family} model; its family has no separately trained predictor")
    count, result = trainer(model, data, num_videos=num_videos, epochs=epochs, seed=seed)
    save_model_file(out, model.to_model_file())
    typer.echo(f"trained the predictor on {count} videos: loss {result.losses[0]:.4g} -> {result.losses[-1]:.4g}")
    typer.echo(f"wrote {out}")


@app.command("predict")
def predict(
    checkpoint: CheckpointOption,
    source: Annotated[Path, typer.Option(help="Source image (the first frame).")],
    out: Annotated[Path, typer.Option(help="Output video; with --samples N > 1 a folder of N videos and a "
                                           "contact sheet.")],
    frames: Annotated[int, typer.Option(help="Frames to generate.")] = 32,
    action: Annotated[str | None, typer.Option(help="Action of class-conditional models (KPVP).")] = None,
    samples: Annotated[int, typer.Option(help="Futures to generate (stochastic models: seeds SEED, SEED+1, ...).")]
    = 1,
    seed: Annotated[int, typer.Option(help="Sample of stochastic models.")] = 0,
    config: ConfigOption = None,
    family: FamilyOption = None,
    visualize: Annotated[bool, typer.Option("--visualize", help="Also write <OUT stem>-viz<suffix> with the "
                                                               "predicted keypoints.")] = False,
    device: DeviceOption = None,
) -> None:
    """Image-to-video: generate a video (or several futures) from one image with an image-to-video model."""
    from motiontransfer.api import load
    from motiontransfer.inference.video import predict_samples, predict_video_file, visualization_path

    _positive("--frames", frames)
    _positive("--samples", samples)
    _require_distinct({"--out": out, "--visualize's output": visualization_path(out) if visualize else None},
                      {"--source": source, "--checkpoint": checkpoint, "--config": config})
    model = load(checkpoint, config=config, device=device, family=family).model
    if samples > 1:
        if out.suffix and not out.is_dir():
            raise UserError(f"--out {out}: with --samples {samples} the output is a folder; give a name without "
                            "an extension")
        paths = predict_samples(model, source, out, samples=samples, num_frames=frames, action=action, seed=seed)
    else:
        paths = predict_video_file(model, source, out, num_frames=frames, action=action, seed=seed,
                                   visualize=visualize)
    for path in paths:
        typer.echo(f"wrote {path}")


@app.command("lia-directions")
def lia_directions(
    checkpoint: CheckpointOption,
    source: Annotated[Path, typer.Option(help="Source image.")],
    out: Annotated[Path, typer.Option(help="Grid image to write (.png): one row per direction d_i.")],
    span: Annotated[float, typer.Option(help="Largest change of a_i, both ways.")] = 1.0,
    steps: Annotated[int, typer.Option(help="Columns per row (odd: the middle one is the source's own motion).")]
    = 7,
    direction: Annotated[list[int] | None, typer.Option(help="Show only direction i (0-based, repeatable) "
                                                             "[default: all M].")] = None,
    config: ConfigOption = None,
    device: DeviceOption = None,
) -> None:
    """LIA's learned motion directions: the source animated with one magnitude a_i changed at a time (Sec. 4)."""
    import torch

    from motiontransfer.api import load
    from motiontransfer.video.io import read_image, write_image
    from motiontransfer.visualize import image_grid

    _positive("--steps", steps, 2)
    _require_distinct({"--out": out}, {"--source": source, "--checkpoint": checkpoint, "--config": config})
    model = load(checkpoint, config=config, device=device).model
    image = read_image(source, size=model.size).to(model.device)
    with torch.no_grad():
        frames = model.walk_directions(image[None], torch.linspace(-span, span, steps), direction or None).cpu()
    write_image(out, image_grid([list(row) for row in frames]))
    typer.echo(f"wrote {out}: {frames.shape[0]} directions x {steps} steps of a_i in [-{span}, {span}]")


@app.command("train")
def train(
    config: Annotated[str | None, typer.Option(help="Experiment config: bundled name (synthetic-faces-64) or YAML.")]
    = None,
    data: Annotated[str | None, typer.Option(help="Dataset folder or procedural:FAMILY[:options] "
                                                  "[default: the config's dataset_params.root_dir].")] = None,
    out: Annotated[Path | None, typer.Option(help="Run folder (checkpoints, samples, tensorboard).")] = None,
    steps: Annotated[int | None, typer.Option(help="Total optimisation steps [default: from the config]; also "
                                                   "bounds each later stage that optimises (KPVP's stage 3, "
                                                   "instead of motion_params.num_steps).")] = None,
    resume: Annotated[Path | None, typer.Option(help="Continue the run in this folder from its last checkpoint.")]
    = None,
    stage: Annotated[list[int] | None, typer.Option(help="Run only this stage (repeatable): 1 the training; families "
                                                         "with later stages add them (KPVP: 1 detector + "
                                                         "translator, 2 pseudo-labels, 3 motion generator) "
                                                         "[default: all of the family's].")] = None,
    device: Annotated[str | None, typer.Option(help="cpu or cuda [default: cuda if available].")] = None,
) -> None:
    """Train a model (run under 'torchrun --nproc-per-node N' for several processes)."""
    from motiontransfer.training.stages import run_stages

    if config is None and resume is None:
        raise UserError("give --config (to start a run) or --resume RUN (to continue one)")
    if resume is None and out is None:
        raise UserError("--out is required to start a run")
    if steps is not None:
        _positive("--steps", steps)
    if out is not None:
        _require_folder_output("--out", out)
    result = run_stages(config, data=data, out_dir=out, steps=steps, resume=resume, stages=stage, device=device)
    if result.stage1 is not None:
        _report_training(result.stage1)
    for number, output in sorted(result.outputs.items()):
        if output.summary:
            typer.echo(f"stage {number}: {output.summary}")
        typer.echo(f"stage {number}: wrote {output.path}")


def _report_training(result: Any) -> None:
    """Print the steps trained, the last losses and the model written by a stage-1 training."""
    if result.checkpoint is not None:
        losses = ", ".join(f"{name} {value:.4g}" for name, value in result.losses.items())
        typer.echo(f"trained steps {result.start_step}..{result.step} ({result.seconds_per_step:.3f} s/step); "
                   f"{losses}")
        typer.echo(f"wrote {result.checkpoint.model}")
    elif result.start_step >= result.step and result.run_dir is not None:
        typer.echo(f"{result.run_dir}: already trained for {result.step} steps")


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind; 0.0.0.0 opens the page to the network, without "
                                           "a login.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 7860,
    models: Annotated[Path | None, typer.Option(help="Folder whose .mt model files are offered next to the "
                                                     "bundled models.")] = None,
    max_upload_mb: Annotated[float, typer.Option(help="Largest upload (source or driving), in MB.")] = 50.0,
    max_seconds: Annotated[float, typer.Option(help="Longest driving video, in seconds.")] = 30.0,
    keep_minutes: Annotated[float, typer.Option(help="How long uploads and results stay downloadable.")] = 60.0,
    queue_size: Annotated[int, typer.Option(help="Jobs that may wait; more are turned away.")] = 20,
    device: DeviceOption = None,
) -> None:
    """Serve the web page (the web extra): animate an uploaded or sample image with an uploaded, recorded or sample
    driving video, with the options of 'animate', in the browser; jobs run one at a time. Ctrl-C stops it and
    removes every file it wrote. See docs/web.md."""
    from motiontransfer.web import Limits, ServeOptions
    from motiontransfer.web import serve as serve_page

    serve_page(ServeOptions(host=host, port=port, models=models, limits=Limits(max_upload_mb, max_seconds),
                            device=device, keep_minutes=keep_minutes, queue_size=queue_size))


FLAGS: dict[str, str] = {
    "accelerate=False": "--eager",
    "adapt_scale": "--adapt-scale", "action": "--action", "batch_size": "--batch-size", "best_frame": "--best-frame",
    "config": "--config", "crop": "--crop", "data": "--data", "device": "--device", "directions": "--direction",
    "frames": "--frames", "kind": "--kind", "landmarks": "--landmarks", "margin": "--margin",
    "min_frames": "--min-frames",
    "num_frames": "--frames", "out_dir": "--out", "overwrite": "--overwrite", "precision": "--precision",
    "resume": "--resume",
    "samples": "--samples", "size": "--size", "split": "--split", "stages": "--stage", "steps": "--steps",
    "video_format": "--format",
    "fit_keypoint_predictor": "`motiontransfer train-predictor --checkpoint MODEL --out MODEL-PREDICTOR.mt`",
    "run_stages": "`motiontransfer train --resume RUN --stage N`",
}
"""How the command line spells the library's parameters and functions that
:class:`~motiontransfer.errors.ArgumentError` messages name: the library says ``steps must be at least 1``, the
command line ``--steps must be at least 1``."""

INTERRUPTED = 130
"""Exit code after Ctrl-C (SIGINT): 128 + the signal number, as shells report it."""
TERMINATED = 143
"""Exit code after SIGTERM."""


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so that it unwinds like Ctrl-C: every atomic writer deletes its
    temporary output on the way out (a BaseException, so ``except Exception`` blocks do not swallow it)."""


def _one_line(text: str) -> str:
    """``text`` on one line: its lines joined with single spaces."""
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


def _error(message: str) -> None:
    """Print the one-line error report."""
    print(f"motiontransfer: error: {_one_line(message)}", file=sys.stderr)


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: TextIO | None = None, line: str | None = None) -> None:
    """``warnings.showwarning`` of the command line: one line ``motiontransfer: warning: <message>``, without the
    source line Python prints by default."""
    stream = file if file is not None else sys.stderr
    with contextlib.suppress(OSError, ValueError):
        print(f"motiontransfer: warning: {_one_line(str(message))}", file=stream)


@contextlib.contextmanager
def _signals_as_exceptions() -> Iterator[None]:
    """While the command runs: SIGTERM raises :class:`Terminated` and SIGINT ``KeyboardInterrupt``, so that the
    atomic writers clean up on the way out. A second signal while that runs ends the process at once (the default
    action: the user insists). An ignored SIGINT (a background job) stays ignored; outside the main thread nothing
    changes. The previous handlers come back on exit."""
    raised: list[int] = []

    def handler(number: int, frame: FrameType | None) -> None:
        if raised:
            signal.signal(number, signal.SIG_DFL)
            os.kill(os.getpid(), number)
            return
        raised.append(number)
        raise Terminated() if number == signal.SIGTERM else KeyboardInterrupt()

    previous: dict[int, Any] = {}
    for number in (signal.SIGINT, signal.SIGTERM):
        current = signal.getsignal(number)
        if current in (signal.default_int_handler, signal.SIG_DFL):
            with contextlib.suppress(ValueError):  # not the main thread
                previous[number] = signal.signal(number, handler)
    try:
        yield
    finally:
        for number, old in previous.items():
            signal.signal(number, old)


def _run(argv: list[str] | None) -> int:
    """Run the command; user mistakes, faults of the machine and signals become one line and an exit code."""
    command = typer.main.get_command(app)
    try:
        code = command.main(args=argv, prog_name="motiontransfer", standalone_mode=False)
    except click_exceptions.UsageError as exc:
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
        _error(f"{exc.format_message()}{hint}")
        return 2
    except ArgumentError as exc:
        _error(exc.render(FLAGS))
        return 2
    except UserError as exc:
        _error(str(exc))
        return 2
    except OSError as exc:
        if exc.errno not in OUTPUT_FAULTS:
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        _error(f"{where}{OUTPUT_FAULTS[exc.errno]}")
        return 2
    except (typer.Abort, KeyboardInterrupt):
        code = INTERRUPTED
    except Terminated:
        print("motiontransfer: terminated", file=sys.stderr)
        return TERMINATED
    except typer.Exit as exc:
        code = exc.exit_code
    if code == INTERRUPTED:  # typer turns KeyboardInterrupt into this exit code
        print("motiontransfer: interrupted", file=sys.stderr)
    return code if isinstance(code, int) else 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code (0 success, 2 a user mistake or an output
    the machine cannot take, 130 Ctrl-C, 143 SIGTERM)."""
    with _signals_as_exceptions(), warnings.catch_warnings():
        warnings.showwarning = _show_warning
        return _run(argv)


if __name__ == "__main__":
    sys.exit(main())
