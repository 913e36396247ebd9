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


# ---------------------------------------------------------------- declared range checks
from katazuke import config as kconfig  # noqa: E402


@kconfig.dataclass(frozen=True)
class Ranged:
    rate_hz: float = kconfig.positive(10.0, "loop rate (Hz)")
    slack: float = kconfig.non_negative(0.0, "slack (s)")
    offset: float = kconfig.finite(-1.5, "offset (m)")
    p: float = kconfig.in_range(0.5, "probability", 0.0, 1.0)
    gains: tuple[float, ...] = kconfig.positive((1.0, 2.0), "per-axis gains")
    limit: float | None = kconfig.positive(None, "optional limit")
    lo: float = 0.0
    hi: float = 1.0

    def __post_init__(self) -> None:        # a cross-field check stays as code
        if not self.lo < self.hi:
            raise ConfigError(f"lo must be < hi; got {self.lo}, {self.hi}")


@dataclass(frozen=True)
class PlainRanged:                           # a plain dataclass: load_config checks it
    rate_hz: float = field(default=1.0, metadata={"help": "rate", "check": "positive"})


def test_declared_ranges_pass_defaults_and_keep_help() -> None:
    c = Ranged()
    assert c.rate_hz == 10.0 and c.limit is None
    assert field_help(Ranged, "rate_hz") == "loop rate (Hz)"
    assert load_config(Ranged, {"p": 1.0, "slack": 0, "limit": 3.0}).p == 1.0


@pytest.mark.parametrize("kwargs,needle", [
    ({"rate_hz": 0.0}, "Ranged.rate_hz must be a finite number > 0; got 0.0"),
    ({"rate_hz": float("inf")}, "Ranged.rate_hz must be a finite number > 0; got inf"),
    ({"slack": -0.1}, "Ranged.slack must be a finite number >= 0; got -0.1"),
    ({"offset": float("nan")}, "Ranged.offset must be a finite number; got nan"),
    ({"p": 1.5}, "Ranged.p must be a number in [0, 1]; got 1.5"),
    ({"gains": (1.0, -2.0)}, "Ranged.gains must be a finite number > 0 (each item); got (1.0, -2.0)"),
    ({"limit": -1.0}, "Ranged.limit must be a finite number > 0; got -1.0"),
    ({"lo": 2.0}, "lo must be < hi"),
])
def test_declared_ranges_checked_on_direct_construction_and_load(kwargs: dict, needle: str) -> None:
    with pytest.raises(ConfigError) as exc:
        Ranged(**kwargs)
    assert needle in str(exc.value)
    with pytest.raises(ConfigError) as exc:
        load_config(Ranged, kwargs, where="params.yaml")
    assert str(exc.value).startswith("params.yaml: ") and needle in str(exc.value)


def test_plain_dataclass_ranges_checked_by_the_loader_and_bad_rules_refused() -> None:
    with pytest.raises(ConfigError, match="PlainRanged.rate_hz must be a finite number > 0"):
        load_config(PlainRanged, {"rate_hz": -1})
    with pytest.raises(ValueError, match="lo <= hi"):
        kconfig.in_range(0.5, "x", 1.0, 0.0)

    @dataclass(frozen=True)
    class Typo:
        x: float = field(default=1.0, metadata={"check": "postive"})
    with pytest.raises(ValueError, match="unknown check 'postive'"):
        kconfig.check_fields(Typo())


def test_union_errors_say_why_each_type_failed() -> None:
    with pytest.raises(ConfigError, match="matches none of .*must be a string"):
        load_config(Cfg, {"name": 3})


from katazuke.config import dataclass as _kdataclass


@_kdataclass(frozen=True)
class _OverlayInner:
    a: int = 1
    b: str = "class-default"


@_kdataclass(frozen=True)
class _OverlayOuter:
    inner: _OverlayInner = field(default_factory=lambda: _OverlayInner(a=5, b="outer-default"))


def test_partial_nested_mapping_overrides_the_fields_default_instance():
    cfg = load_config(_OverlayOuter, {"inner": {"a": 7}})
    assert cfg.inner == _OverlayInner(a=7, b="outer-default")   # b from the field's default
    with pytest.raises(ConfigError, match="unknown key"):
        load_config(_OverlayOuter, {"inner": {"c": 1}})
