"""Config loading: strict validation with dotted key paths in errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pytest

from motiontransfer.config import from_dict, from_yaml, to_dict
from motiontransfer.errors import ConfigError, InputFileError


@dataclass
class Inner:
    num_kp: int = 10
    scales: tuple[float, ...] = (1.0, 0.5)


@dataclass
class Outer:
    name: str
    inner: Inner = field(default_factory=Inner)
    mode: Literal["relative", "absolute"] = "relative"
    weight: float = 1.0
    path: Path | None = None
    flags: list[bool] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.weight < 0:
            raise ValueError("weight must be non-negative")


def test_builds_nested_dataclasses_and_converts_types() -> None:
    cfg = from_dict(Outer, {"name": "x", "inner": {"num_kp": 5, "scales": [1, 0.25]}, "weight": 2,
                            "path": "a/b", "flags": [True, False]})
    assert cfg.inner == Inner(num_kp=5, scales=(1.0, 0.25))
    assert isinstance(cfg.weight, float) and cfg.weight == 2.0
    assert cfg.path == Path("a/b")
    assert cfg.flags == [True, False]


def test_unknown_key_is_an_error_naming_the_dotted_path() -> None:
    with pytest.raises(ConfigError, match=r"inner\.num_kps"):
        from_dict(Outer, {"name": "x", "inner": {"num_kps": 5}})


@pytest.mark.parametrize(
    ("data", "pattern"),
    [
        ({}, "missing required key name"),
        ({"name": 3}, "name: expected a string"),
        ({"name": "x", "inner": {"num_kp": 2.5}}, r"inner\.num_kp: expected an integer"),
        ({"name": "x", "inner": {"num_kp": True}}, r"inner\.num_kp: expected an integer"),
        ({"name": "x", "mode": "sideways"}, "mode: 'sideways' is not one of"),
        ({"name": "x", "weight": -1}, "weight must be non-negative"),
        ({"name": "x", "inner": {"scales": "1"}}, r"inner\.scales: expected a list"),
    ],
)
def test_bad_values_are_errors(data: dict, pattern: str) -> None:
    with pytest.raises(ConfigError, match=pattern):
        from_dict(Outer, data)


def test_yaml_round_trip(tmp_path: Path) -> None:
    import yaml

    cfg = Outer(name="y", inner=Inner(3, (1.0,)), path=Path("p"))
    plain = to_dict(cfg)
    assert plain["inner"]["scales"] == [1.0] and plain["path"] == "p"
    file = tmp_path / "c.yaml"
    file.write_text(yaml.safe_dump(plain))
    assert from_yaml(Outer, file) == cfg


def test_to_dict_converts_numpy_values() -> None:
    assert to_dict({"a": np.float32(1.5), "b": np.arange(3)}) == {"a": 1.5, "b": [0, 1, 2]}


def test_yaml_file_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match=r"nope\.yaml"):
        from_yaml(Outer, tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed")
    with pytest.raises(InputFileError, match=r"bad\.yaml"):
        from_yaml(Outer, bad)
    typo = tmp_path / "typo.yaml"
    typo.write_text("name: x\nwieght: 1\n")
    with pytest.raises(ConfigError, match=r"typo.yaml.*wieght"):
        from_yaml(Outer, typo)


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("a: [1, 2\nb: c\n", "line 2, column 2: expected ',' or ']', but got ':' (in a flow sequence started at "
                             "line 1, column 4)"),
        ("a: b\n  c: d\n", "line 2, column 4: mapping values are not allowed here"),
        ("a: 'open\n", "line 2, column 1: found unexpected end of stream (in a quoted scalar started at line 1, "
                       "column 4)"),
        ("a:\n\t- 1\n", "line 2, column 1: found character '\\t' that cannot start any token"),
    ],
)
def test_a_yaml_syntax_error_is_one_line_with_line_and_column(tmp_path: Path, text: str, where: str) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    with pytest.raises(InputFileError) as caught:
        from_yaml(Outer, bad)
    assert str(caught.value) == f"{bad}: not valid YAML: {where}"
    assert "\n" not in str(caught.value)
