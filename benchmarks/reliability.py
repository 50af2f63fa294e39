"""The bad-input matrix of docs/reliability.md: each case run against the command line, with what the user sees,
the exit code and the files the run changed.

Usage::

    python benchmarks/reliability.py            # run every case and write docs/reliability.md
    python benchmarks/reliability.py --check    # run them and compare with docs/reliability.md (exit 1 if stale)

The cases run in a fresh temporary folder, most of them in this process through ``motiontransfer.cli.main``; the
signal cases start the command as a child process and signal it once its temporary output exists. The disk-full
and read-only cases need tmpfs mounts, so root; without root they are left out (``--check`` then compares the
other rows, and the page cannot be rewritten). tests/test_reliability.py runs the same matrix with a tiny model.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from motiontransfer.cli import main
from motiontransfer.data.synthetic.writer import write_dataset
from motiontransfer.video.io import write_image, write_video

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "reliability.md"
MODEL = "MODEL"
"""The model argument as the page shows it (the run uses a bundled model, the test a tiny one)."""
HEADER = """# Reliability: what bad input does

Every row is a mistake or an accident run against the command line, with the one line the user sees, the exit code
and the files the run changed (inputs are never touched; a failed run leaves no output and no hidden temporary
file). Exit codes: 0 success, 2 a user mistake or an output the machine cannot take, 130 Ctrl-C, 143 SIGTERM. A
traceback with exit code 1 would mean a bug.

This page is generated: `python benchmarks/reliability.py` reruns every case and rewrites it (as root: the disk-full
and read-only cases use tmpfs mounts), and `tests/test_reliability.py` fails when it no longer matches what the
command line does. `MODEL` is a model file; the inputs are small files made for the run.

| Case | Command | What the user sees | Exit | Files changed |
| --- | --- | --- | --- | --- |
"""


@dataclass(frozen=True)
class Case:
    """One row: ``args`` after ``motiontransfer`` (relative to the work folder; ``MODEL`` is replaced), the exit
    code it must give, and how it runs: ``signal`` is sent once the hidden temporary output exists, ``mount`` names
    the tmpfs it needs (``full`` or ``ro``), ``locked`` runs it without write permission to ``locked/``, ``child``
    in a child process even without a signal."""

    name: str
    args: tuple[str, ...]
    exit_code: int
    signal: int | None = None
    mount: str | None = None
    locked: bool = False
    child: bool = False


def _animate(out: str, *extra: str, source: str = "source.png", driving: str = "driving.mp4") -> tuple[str, ...]:
    """``animate`` of the tiny inputs with ``--out out`` and ``extra`` options."""
    return ("animate", "--checkpoint", MODEL, "--source", source, "--driving", driving, "--out", out, *extra)


CASES: tuple[Case, ...] = (
    Case("source image missing", _animate("out.mp4", source="missing.png"), 2),
    Case("driving video is an empty file", _animate("out.mp4", driving="empty.mp4"), 2),
    Case("driving video damaged (decodes partly)", _animate("out.mp4", driving="damaged.mp4"), 0),
    Case("`--out` is `--driving`", _animate("driving.mp4"), 2),
    Case("`--out` is `--driving` spelled another way", _animate("./sub/../driving.mp4"), 2),
    Case("`--out` is a symbolic link to `--driving`", _animate("link.mp4"), 2),
    Case("one frame folder as `--driving` and `--out`", _animate("frames/", driving="frames"), 2),
    Case("`--visualize` would write over `--driving`", _animate("take.mp4", "--visualize", driving="take-viz.mp4"), 2),
    Case("output folder is a file", _animate("notes.txt/out.mp4"), 2),
    Case("output is a character device", _animate("/dev/full"), 2),
    Case("unknown output format", _animate("out.xyz"), 2),
    Case("random bytes named `.pth.tar`", ("animate", "--checkpoint", "random.pth.tar", "--source", "source.png",
                                           "--driving", "driving.mp4", "--out", "out.mp4"), 2),
    Case("a LIA checkpoint with a FOMM config", ("animate", "--checkpoint", "lia.pt", "--config", "vox-256",
                                                 "--source", "source.png", "--driving", "driving.mp4", "--out",
                                                 "out.mp4"), 2),
    # A child process: when the disk is full before the mp4 header is written, PyAV never closes the file (the
    # deleted temporary file stays open until the process ends), and an open file keeps the tmpfs from unmounting.
    Case("disk full (mp4)", _animate("full/out.mp4"), 2, mount="full", child=True),
    Case("disk full (GIF)", _animate("full/out.gif"), 2, mount="full"),
    Case("disk full (frame folder)", _animate("full/frames"), 2, mount="full"),
    Case("read-only folder", _animate("ro/out.mp4"), 2, mount="ro"),
    Case("permission-denied folder", _animate("locked/out.mp4"), 2, locked=True),
    Case("Ctrl-C (SIGINT) during `animate`", _animate("out-long.mp4", driving="long.mp4"), 130,
         signal=signal.SIGINT),
    Case("SIGTERM during `animate`", _animate("out-long.mp4", driving="long.mp4"), 143, signal=signal.SIGTERM),
    Case("`convert --out` is `--input`", ("convert", "--from", "fomm", "--input", "random.pth.tar", "--out",
                                          "random.pth.tar"), 2),
    Case("`convert --out` without a model-file suffix", ("convert", "--from", "fomm", "--input", "random.pth.tar",
                                                          "--out", "y.pth"), 2),
    Case("malformed YAML config", ("train", "--config", "bad.yaml", "--out", "run"), 2),
    Case("`train --out` is a file", ("train", "--config", "bad.yaml", "--out", "notes.txt"), 2),
    Case("`make-dataset --size 100000`", ("make-dataset", "shapes", "--out", "big", "--size", "100000"), 2),
    Case("`make-dataset --out` is a file", ("make-dataset", "shapes", "--out", "notes.txt"), 2),
    Case("`make-dataset` into an existing dataset", ("make-dataset", "faces", "--out", "dataset"), 2),
    Case("`demo --out` is a file", ("demo", "--out", "notes.txt"), 2),
)


@dataclass
class Outcome:
    """What a case did: exit code, stderr and stdout lines, and the paths it added, changed or removed."""

    case: Case
    exit_code: int
    stderr: list[str]
    stdout: list[str]
    changed: list[str] = field(default_factory=list)

    def row(self) -> str:
        """The case's table row."""
        command = " ".join(["motiontransfer", *self.case.args])
        seen = self.stderr + (self.stdout if self.exit_code == 0 else [])
        shown = "<br>".join(f"`{line}`" for line in seen) or "(nothing)"
        changed = ", ".join(f"`{path}`" for path in self.changed) or "nothing"
        return f"| {self.case.name} | `{command}` | {_cell(shown)} | {self.exit_code} | {_cell(changed)} |"


def _cell(text: str) -> str:
    """Escape the table's column separator."""
    return text.replace("|", "\\|")


# ------------------------------------------------------------------------------------------------------ inputs


def make_inputs(work: Path) -> None:
    """The small input files of the cases (seeded: the same bytes every run)."""
    rng = np.random.default_rng(0)
    write_image(work / "source.png", rng.random((64, 64, 3), dtype=np.float32))
    base = rng.random((48, 64, 3), dtype=np.float32)
    write_video(work / "driving.mp4", (np.roll(base, 2 * t, axis=1) for t in range(8)), fps=10)
    write_video(work / "long.mp4", (np.roll(base[:32, :32], t, axis=1) for t in range(600)), fps=25)
    write_video(work / "clip.mp4", (np.roll(base, t, axis=0) for t in range(60)), fps=10)
    data = (work / "clip.mp4").read_bytes()
    (work / "damaged.mp4").write_bytes(data[: len(data) * 6 // 10])
    (work / "clip.mp4").unlink()
    shutil.copyfile(work / "driving.mp4", work / "take-viz.mp4")
    (work / "empty.mp4").write_bytes(b"")
    (work / "sub").mkdir()
    (work / "link.mp4").symlink_to("driving.mp4")
    for index in range(3):
        write_image(work / "frames" / f"{index:06d}.png", rng.random((32, 32, 3), dtype=np.float32))
    (work / "notes.txt").write_text("not a folder\n")
    (work / "random.pth.tar").write_bytes(random.Random(0).randbytes(4096))
    torch.save({"gen": {"enc.fc.0.weight": torch.zeros(2, 2)}, "args": {}}, work / "lia.pt")
    (work / "bad.yaml").write_text("dataset_params: [1, 2\nmodel_params: {}\n")
    write_dataset("faces", work / "dataset", videos=2, frames=2, size=32, seed=0, test_videos=1, progress=False)
    (work / "locked").mkdir(mode=0o555)
    (work / "locked").chmod(0o555)


def can_mount() -> bool:
    """Whether tmpfs mounts are possible here (root on Linux)."""
    return sys.platform.startswith("linux") and os.geteuid() == 0 and shutil.which("mount") is not None


@contextlib.contextmanager
def mounts(work: Path) -> Iterator[set[str]]:
    """Mount ``work/full`` (a 64 KiB tmpfs, filled up) and ``work/ro`` (a read-only tmpfs) when possible; yields
    the names mounted, unmounts on exit."""
    mounted: list[Path] = []
    try:
        if can_mount():
            for name, options in (("full", "size=64k"), ("ro", "size=64k,ro")):
                folder = work / name
                folder.mkdir()
                result = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
                                        capture_output=True, check=False)
                if result.returncode == 0:
                    mounted.append(folder)
            if work / "full" in mounted:
                _fill(work / "full" / "filler")
        yield {folder.name for folder in mounted}
    finally:
        for folder in reversed(mounted):
            subprocess.run(["umount", str(folder)], capture_output=True, check=False)


def _fill(path: Path) -> None:
    """Write zeros to ``path`` until its file system is full."""
    handle = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        with contextlib.suppress(OSError):
            while os.write(handle, bytes(4096)):
                pass
    finally:
        os.close(handle)


# ------------------------------------------------------------------------------------------------------ running


def snapshot(work: Path) -> dict[str, tuple[int, int]]:
    """Every path under ``work`` (hidden ones too, not following links) -> (size, modification time in ns) for
    files and links, (-1, -1) for folders (their own times change with their entries)."""
    found = {}
    for folder, folders, files in os.walk(work):
        for name in folders:
            path = Path(folder) / name
            found[path.relative_to(work).as_posix()] = (-1, -1) if not path.is_symlink() else (0, 0)
        for name in files:
            path = Path(folder) / name
            info = path.lstat()
            found[path.relative_to(work).as_posix()] = (info.st_size, info.st_mtime_ns)
    return found


def _changes(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]) -> list[str]:
    """Paths added, removed or changed between two snapshots (inside an added or removed folder only the folder
    is listed)."""
    changed = sorted(name for name in set(before) | set(after) if before.get(name) != after.get(name))
    return [name for name in changed if not any(name.startswith(other + "/") for other in changed)]


@contextlib.contextmanager
def _working_directory(path: Path) -> Iterator[None]:
    """Run the block in ``path``."""
    previous = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def _in_process(args: Sequence[str], work: Path) -> tuple[int, str, str]:
    """``main(args)`` in ``work``, with its stdout and stderr captured."""
    out, err = io.StringIO(), io.StringIO()
    with _working_directory(work), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


# The CLI in a child process, with Python's Ctrl-C handler even when this process ignores SIGINT (a background job
# passes that on, and the CLI keeps an ignored SIGINT ignored).
CHILD = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
         "from motiontransfer.cli import main; sys.exit(main(sys.argv[1:]))")


def _child_command(args: Sequence[str], locked: bool) -> list[str]:
    """The command line of a child process running the CLI (without the permission to bypass file modes when
    ``locked`` and root)."""
    command = [sys.executable, "-c", CHILD, *args]
    if locked and os.geteuid() == 0:
        command = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", *command]
    return command


def _child_environment() -> dict[str, str]:
    """The environment of a child process: this package importable, one thread, default Python warnings."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    env.pop("PYTHONWARNINGS", None)
    return env


def _in_child(args: Sequence[str], work: Path, send: int | None, locked: bool) -> tuple[int, str, str]:
    """Run the CLI in a child process in ``work``; with ``send``, signal it once its temporary output exists."""
    process = subprocess.Popen(_child_command(args, locked), cwd=work, env=_child_environment(), text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if send is not None:
        out = work / args[args.index("--out") + 1]
        deadline = time.monotonic() + 120
        while process.poll() is None and time.monotonic() < deadline:
            if any(work.glob(f".{out.stem}.tmp-*")):
                time.sleep(0.2)  # well inside the work, past opening the output
                process.send_signal(send)
                break
            time.sleep(0.02)
    stdout, stderr = process.communicate(timeout=300)
    return process.returncode, stdout, stderr


def run_case(case: Case, work: Path, model: str) -> Outcome:
    """Run one case in ``work`` and record its outcome (paths relative to ``work``)."""
    args = [model if arg == MODEL else arg for arg in case.args]
    before = snapshot(work)
    child = case.child or case.signal is not None or (case.locked and os.geteuid() == 0)
    code, stdout, stderr = (_in_child(args, work, case.signal, case.locked) if child
                            else _in_process(args, work))
    after = snapshot(work)
    changed = _changes(before, after)
    for name in changed:  # undo what a case wrote, so that every case starts from the same inputs
        path = work / name
        if name in after and name not in before:
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
    lines = [line.replace(str(work) + os.sep, "") for line in stderr.splitlines() if line.strip()]
    return Outcome(case, code, lines, [line for line in stdout.splitlines() if line.strip()], changed)


def available(case: Case, mounted: set[str]) -> bool:
    """Whether ``case`` can run here (its mount exists; a locked folder needs root's setpriv or a non-root user)."""
    if case.mount is not None:
        return case.mount in mounted
    if case.locked:
        return os.geteuid() != 0 or shutil.which("setpriv") is not None
    return True


def run_matrix(model: str, cases: Sequence[Case] = CASES,
               on_case: Callable[[Outcome], None] | None = None) -> list[Outcome]:
    """Run ``cases`` (those possible here) against the CLI with ``model`` in a temporary folder."""
    outcomes = []
    with tempfile.TemporaryDirectory(prefix="reliability-") as folder:
        work = Path(folder)
        make_inputs(work)
        try:
            with mounts(work) as mounted:
                for case in cases:
                    if available(case, mounted):
                        outcomes.append(run_case(case, work, model))
                        if on_case is not None:
                            on_case(outcomes[-1])
        finally:
            (work / "locked").chmod(0o755)
    return outcomes


# ------------------------------------------------------------------------------------------------------ the page


def render(outcomes: Sequence[Outcome]) -> str:
    """docs/reliability.md for ``outcomes``."""
    return HEADER + "".join(outcome.row() + "\n" for outcome in outcomes)


def table_rows(page: str) -> dict[str, str]:
    """The rows of a page by case name."""
    rows = {}
    for line in page.splitlines():
        if line.startswith("| ") and not line.startswith(("| Case ", "| --- ")):
            rows[line[2:].split(" | ", 1)[0]] = line
    return rows


def stale_rows(page: str, outcomes: Sequence[Outcome]) -> list[str]:
    """Differences between the page and ``outcomes``: rows that differ, and cases missing on either side (only the
    cases that ran are compared)."""
    rows = table_rows(page)
    problems = [f"not on the page: {name}" for name in (case.name for case in CASES) if name not in rows]
    problems += [f"not a case: {name}" for name in rows if name not in {case.name for case in CASES}]
    for outcome in outcomes:
        if rows.get(outcome.case.name) != outcome.row():
            problems.append(f"differs: {outcome.case.name}\n  page: {rows.get(outcome.case.name)}\n"
                            f"  run:  {outcome.row()}")
    return problems


def main_script() -> int:
    """Command line of the script; returns its exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare with the page instead of writing it")
    parser.add_argument("--model", default="fomm-puppets", help="model file or bundled name [fomm-puppets]")
    parser.add_argument("--out", type=Path, default=DOC, help="the page [docs/reliability.md]")
    args = parser.parse_args()
    torch.set_num_threads(1)
    outcomes = run_matrix(args.model, on_case=lambda o: print(f"{o.exit_code:4d}  {o.case.name}", file=sys.stderr))
    if args.check:
        problems = stale_rows(args.out.read_text(encoding="utf-8"), outcomes)
        print("\n".join(problems) or f"{args.out}: up to date ({len(outcomes)} of {len(CASES)} cases run)")
        return 1 if problems else 0
    if len(outcomes) < len(CASES):
        print(f"only {len(outcomes)} of {len(CASES)} cases could run here (the others need root for tmpfs mounts); "
              f"{args.out} left as it is", file=sys.stderr)
        return 1
    args.out.write_text(render(outcomes), encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main_script())
