"""The ``motiontransfer`` command line.

Each command is a thin layer over the Python API: parse flags, call the library, report. A user mistake
(:class:`~motiontransfer.errors.UserError`, or a bad or missing flag) prints one line ``motiontransfer: error:
...`` naming the file or flag and exits with code 2; a traceback means a bug.
"""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from motiontransfer.errors import UserError

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


@app.command("demo")
def demo(
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("out"),
    family: Annotated[FamilyName, typer.Option(help="Procedural family to show.")] = FamilyName.faces,
    size: Annotated[int, typer.Option(help="Frame size in pixels.")] = 128,
    frames: Annotated[int, typer.Option(help="Number of frames.")] = 64,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """Run the embedded default job (no data or weights needed).

    Until a trained model ships, it renders a procedural cross-identity clip with its ground truth.
    """
    from motiontransfer.demo import run_demo

    outputs = run_demo(out, family.value, _positive("--size", size, 16), _positive("--frames", frames), seed)
    for path in outputs:
        typer.echo(f"wrote {path}")


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
) -> None:
    """Render a procedural dataset with ground truth (FOMM layout).

    Each video gets a JSON sidecar with GT keypoints, visibility, identity parameters and action label.
    """
    from motiontransfer.data.synthetic import ProceduralSource, ProceduralSpec
    from motiontransfer.data.synthetic.writer import write_dataset, write_preview

    _positive("--videos", videos)
    _positive("--frames", frames)
    _positive("--size", size, 16)
    _positive("--clips-per-identity", clips_per_identity)
    if test_videos is not None:
        _positive("--test-videos", test_videos, 0)
    if preview is not None and preview.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        raise UserError(f"--preview must name a .png or .jpg file, got {preview}")
    counts = write_dataset(family.value, out, videos, frames, size, seed, test_videos, video_format.value,
                           clips_per_identity)
    typer.echo(f"wrote {counts['train']} train and {counts['test']} test videos to {out}")
    if preview is not None:
        spec = ProceduralSpec(family=family.value, size=size, videos=videos, frames=frames, seed=seed,
                              clips_per_identity=clips_per_identity)
        typer.echo(f"wrote {write_preview(ProceduralSource(spec), preview)}")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    command = typer.main.get_command(app)
    try:
        command.main(args=argv, prog_name="motiontransfer", standalone_mode=False)
    except click_exceptions.UsageError as exc:
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
        print(f"motiontransfer: error: {exc.format_message()}{hint}", file=sys.stderr)
        return 2
    except UserError as exc:
        print(f"motiontransfer: error: {exc}", file=sys.stderr)
        return 2
    except (click_exceptions.Abort, KeyboardInterrupt):
        print("motiontransfer: interrupted", file=sys.stderr)
        return 130
    except click_exceptions.Exit as exc:
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
