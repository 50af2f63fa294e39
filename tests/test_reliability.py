"""The bad-input matrix (benchmarks/reliability.py, docs/reliability.md) run against the command line with a tiny
model: every case gives its exit code and one line, changes no file (no output, no hidden temporary file, inputs
untouched), and the committed page matches what the command line does."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from fomm_helpers import model_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from reliability import CASES, DOC, Case, Outcome, render, run_matrix, stale_rows, table_rows

FAILURE_LINES = ("motiontransfer: error: ", "motiontransfer: interrupted", "motiontransfer: terminated")


pytestmark = pytest.mark.slow  # every test here reads the outcomes of the whole matrix (12 s under load)


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    """Every case that can run here, run once for the module (the signal and mount cases in child processes)."""
    model = model_file(tmp_path_factory.mktemp("model") / "tiny.mt")
    return {outcome.case.name: outcome for outcome in run_matrix(str(model))}


def _outcome(case: Case, outcomes: dict[str, Outcome]) -> Outcome:
    if case.name not in outcomes:
        pytest.skip("needs tmpfs mounts (disk full, read-only), so root on Linux; not root here" if case.mount
                    else "cannot run here")
    return outcomes[case.name]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_each_case_exits_with_its_code_and_one_line(case: Case, outcomes: dict[str, Outcome]) -> None:
    outcome = _outcome(case, outcomes)
    assert outcome.exit_code == case.exit_code, outcome.row()
    assert not any("Traceback" in line for line in outcome.stderr + outcome.stdout), outcome.row()
    if case.exit_code == 0:  # a warning is one line too, and the output is written
        assert all(line.startswith("motiontransfer: warning: ") for line in outcome.stderr), outcome.row()
        assert outcome.changed == [case.args[case.args.index("--out") + 1]]
        return
    assert len(outcome.stderr) == 1 and outcome.stderr[0].startswith(FAILURE_LINES), outcome.row()
    assert outcome.changed == [], "a refused or interrupted run leaves no file behind and changes no input"


def test_the_cases_cover_the_issue(outcomes: dict[str, Outcome]) -> None:
    seen = {name: " ".join(outcome.stderr) for name, outcome in outcomes.items()}
    assert "not a PyTorch checkpoint" in seen["random bytes named `.pth.tar`"]
    assert "Python objects" not in seen["random bytes named `.pth.tar`"]
    assert "--from" not in seen["a LIA checkpoint with a FOMM config"]
    assert "character device" in seen["output is a character device"]
    assert "line 2, column 13" in seen["malformed YAML config"]
    assert "read 30 frames" in seen["driving video damaged (decodes partly)"]
    assert "--overwrite" in seen["`make-dataset` into an existing dataset"]
    if os.geteuid() == 0 and "disk full (mp4)" in outcomes:
        assert all("no space left" in seen[f"disk full ({kind})"] for kind in ("mp4", "GIF", "frame folder"))


def test_the_page_matches_the_command_line(outcomes: dict[str, Outcome]) -> None:
    page = DOC.read_text(encoding="utf-8")
    assert stale_rows(page, list(outcomes.values())) == [], "regenerate with: python benchmarks/reliability.py"
    if len(outcomes) == len(CASES):
        assert page == render([outcomes[case.name] for case in CASES])
    assert list(table_rows(page)) == [case.name for case in CASES]
