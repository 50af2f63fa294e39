"""Building models from model files: every tensor comes from the file, nothing is left uninitialised."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from motiontransfer.experiment import load_experiment
from motiontransfer.families.fomm.animator import FOMMAnimator
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


class _WithExtraNetwork(FOMMAnimator):
    """A model with a network its model files do not store."""

    def __init__(self, experiment: object) -> None:
        super().__init__(experiment)  # type: ignore[arg-type]
        self.extra = nn.Linear(64, 64)


def test_a_network_the_file_does_not_fill_keeps_its_random_initialisation() -> None:
    torch.manual_seed(0)
    original = _WithExtraNetwork(load_experiment(CONFIGS["fomm"]))
    loaded = _WithExtraNetwork.from_model_file(original.to_model_file())
    assert torch.equal(loaded.generator.state_dict()["final.weight"], original.generator.state_dict()["final.weight"])
    weight = loaded.extra.weight  # nn.Linear's default: uniform in +-1/sqrt(64), not uninitialised memory
    assert torch.isfinite(weight).all() and weight.abs().max() <= 0.125 and weight.std() > 0.05
