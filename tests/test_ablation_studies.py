"""The ablation studies of benchmarks/ablations.yaml: every variant is a valid config that builds its networks
(a typo in a dotted key or a value fails here, not after an hour of training)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

from motiontransfer.config import load_yaml
from motiontransfer.engine.distributed import DistributedContext
from motiontransfer.experiment import experiment_from_dict, resolve_config
from motiontransfer.training.trainer import build_task

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))
from ablations import apply_changes, slug, store  # noqa: E402

STUDIES = yaml.safe_load((BENCHMARKS / "ablations.yaml").read_text())["studies"]
VARIANTS = [(study, variant) for study in STUDIES for variant in study["variants"]]


@pytest.mark.slow
@pytest.mark.parametrize(("study", "variant"), VARIANTS, ids=[f"{s['name']}-{slug(v['name'])}" for s, v in VARIANTS])
def test_every_variant_is_a_valid_config_that_builds(study: dict, variant: dict) -> None:
    config = apply_changes(load_yaml(resolve_config(study["base"])), variant.get("set", {}))
    experiment = experiment_from_dict(config)
    task = build_task(experiment, DistributedContext(), steps_per_epoch=10)
    networks = task.networks()
    assert networks and all(sum(p.numel() for p in net.parameters()) > 0 for net in networks.values())
    assert len(variant.get("paper", [])) == len(study["metrics"])


def test_apply_changes_refuses_a_missing_section() -> None:
    with pytest.raises(KeyError, match="not a section"):
        apply_changes({"model_params": {}}, {"model_params.generator_parms.x": 1})
    assert apply_changes({"a": {"b": 1}}, {"a.b": None}) == {"a": {"b": None}}


def test_store_merges_variants_of_processes_sharing_a_study(tmp_path: Path) -> None:
    path = tmp_path / "ablations.json"
    path.write_text(json.dumps({"other": {"variants": {"x": {}}, "minutes": {}}}))
    store(path, "lia", {"steps": 400, "variants": {"A": {"l1": 1.0}}, "minutes": {"A": 2.0}}, merge=True)
    store(path, "lia", {"steps": 400, "variants": {"B": {"l1": 2.0}}, "minutes": {"B": 3.0}}, merge=True)
    stored = json.loads(path.read_text())
    assert stored["lia"]["variants"] == {"A": {"l1": 1.0}, "B": {"l1": 2.0}}
    assert stored["lia"]["minutes"] == {"A": 2.0, "B": 3.0}
    assert stored["other"] == {"variants": {"x": {}}, "minutes": {}}  # other studies are kept
    store(path, "lia", {"steps": 400, "variants": {"A": {"l1": 0.9}}, "minutes": {}}, merge=True)  # A reused
    assert json.loads(path.read_text())["lia"]["minutes"]["A"] == 2.0  # its training time stands
    store(path, "lia", {"steps": 400, "variants": {"C": {"l1": 0.5}}, "minutes": {"C": 1.0}}, merge=False)
    stored = json.loads(path.read_text())["lia"]
    assert stored["variants"] == {"C": {"l1": 0.5}} and stored["minutes"] == {"C": 1.0}  # a whole-study run
