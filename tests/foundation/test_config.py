"""katazuke.config: frozen dataclass configs from YAML with strict keys and types."""
from __future__ import annotations

from dataclasses import FrozenInstanceError, dataclass, field
from pathlib import Path

import pytest

from katazuke.config import config_to_dict, field_help, load_config
from katazuke.errors import ConfigError


@dataclass(frozen=True)
class Inner:
    gain: float = field(default=1.0, metadata={"help": "proportional gain"})


@dataclass(frozen=True)
class Cfg:
    rate_hz: float = field(default=10.0, metadata={"help": "loop rate"})
    horizon: int = 5
    mode: str = "lqr"
    weights: tuple[float, ...] = (1.0, 2.0)
    inner: Inner = field(default_factory=Inner)
    name: str | None = None


def test_defaults_and_overrides() -> None:
    c = load_config(Cfg, {"horizon": 7}, rate_hz=20)
    assert c.horizon == 7 and c.rate_hz == 20.0 and isinstance(c.rate_hz, float)
    with pytest.raises(FrozenInstanceError):
        c.horizon = 3  # type: ignore[misc]


def test_yaml_file_and_nested(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text("rate_hz: 50\nweights: [3, 4.5]\ninner: {gain: 0.25}\n")
    c = load_config(Cfg, p)
    assert c.weights == (3.0, 4.5) and c.inner.gain == 0.25
    assert config_to_dict(c)["inner"] == {"gain": 0.25}
    assert field_help(Cfg, "rate_hz") == "loop rate"


@pytest.mark.parametrize("data, needle", [
    ({"rate": 1}, "unknown key(s) ['rate']"),
    ({"horizon": "five"}, "'horizon' must be an integer"),
    ({"horizon": True}, "'horizon' must be an integer"),
    ({"weights": 3}, "'weights' must be a list"),
    ({"inner": {"gain": "x"}}, "'gain' must be a number"),
])
def test_errors_name_the_key(data: dict, needle: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load_config(Cfg, data)
    assert needle in str(exc.value)


def test_missing_and_bad_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(Cfg, tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("rate_hz: [1, 2\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(Cfg, bad)
    lst = tmp_path / "list.yaml"
    lst.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(Cfg, lst)
