"""Bench options generated from config dataclasses (katazuke.cli.config_args)."""
from __future__ import annotations


def test_tuple_fields_take_comma_separated_values() -> None:
    import argparse

    import pytest

    from katazuke.bench.grasp import GraspBenchConfig
    from katazuke.cli.config_args import add_config_arguments, config_from_args

    p = argparse.ArgumentParser()
    add_config_arguments(p, GraspBenchConfig)
    cfg = config_from_args(GraspBenchConfig, p.parse_args(["--seeds", "3, 4,5", "--kinds", "duck"]))
    assert cfg.seeds == (3, 4, 5) and cfg.kinds == ("duck",)
    assert config_from_args(GraspBenchConfig, p.parse_args([])).seeds == (0, 1)
    with pytest.raises(SystemExit):
        p.parse_args(["--seeds", "a,b"])
