"""Building models from model files: every tensor comes from the file."""

from __future__ import annotations

import pytest
import torch

from motiontransfer.experiment import load_experiment
from motiontransfer.registry import family

CONFIGS = {"fomm": "synthetic-faces-64", "lia": "lia-synthetic-faces-64", "kpvp": "kpvp-synthetic-faces-64",
           "monkeynet": "monkeynet-synthetic-faces-64"}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_every_parameter_and_buffer_is_the_files(name: str) -> None:
    torch.manual_seed(0)
    spec = family(name)
    original = spec.model(load_experiment(CONFIGS[name])).eval()
    for optional in original.optional_networks:
        setattr(original, optional, original.build_optional_network(optional))
    model_file = original.to_model_file()
    loaded = spec.model.from_model_file(model_file)
    assert not loaded.training
    expected = original.state_dict()
    state = loaded.state_dict()
    assert state.keys() == expected.keys() and len(state) > 10
    for key, value in state.items():
        assert value.device.type == "cpu" and torch.equal(value, expected[key]), key
