"""Building models from model files: every tensor comes from the file."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from motiontransfer.experiment import load_experiment
from motiontransfer.families.fomm.animator import FOMMAnimator
from motiontransfer.models.base import WithoutRandomInitialisation
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


def test_building_without_random_initialisation_draws_no_random_numbers() -> None:
    torch.manual_seed(0)
    state = torch.random.get_rng_state()
    with WithoutRandomInitialisation():
        layer = nn.Conv2d(3, 8, 3)
        noise = torch.randn(2, 3, generator=torch.Generator().manual_seed(1))
        ones = torch.ones(2)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert layer.weight.shape == (8, 3, 3, 3) and noise.shape == (2, 3) and torch.equal(ones, torch.ones(2))
    nn.Conv2d(3, 8, 3)  # outside: drawn as usual
    assert not torch.equal(torch.random.get_rng_state(), state)


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
