"""launch/perception.launch.xml and launch/params/perception.yaml agree with the node configs."""
from __future__ import annotations

import yaml

from katazuke.config import load_config


def test_params_yaml_loads_into_node_configs(repo) -> None:
    from katazuke_ros.detector_node import DetectorNodeConfig
    from katazuke_ros.object_map_node import ObjectMapNodeConfig

    data = yaml.safe_load((repo / "launch" / "params" / "perception.yaml").read_text())
    assert set(data) == {"detector", "object_map"}
    # Every key is a field (load_config rejects unknown keys and bad values); the file holds
    # only deployment overrides, so it may differ from the defaults.
    load_config(DetectorNodeConfig, data["detector"]["ros__parameters"])
    load_config(ObjectMapNodeConfig, data["object_map"]["ros__parameters"])


def test_launch_file_is_valid_ros2_launch_xml(repo, assert_launch_file_valid) -> None:
    assert_launch_file_valid(repo / "launch" / "perception.launch.xml", {"detector", "object_map"})


def test_offline_benchmarks_use_the_node_detector_settings(repo) -> None:
    from katazuke.bench.detection import node_detector_config

    from katazuke.perception.detection import DetectorConfig

    node = yaml.safe_load((repo / "launch" / "params" / "perception.yaml").read_text())
    block = node["detector"]["ros__parameters"]["detector"]
    cfg = node_detector_config("/tmp/x.pt", "none")
    assert (cfg.weights, cfg.classifier_weights) == ("/tmp/x.pt", "none")
    # The node's deployed settings: the library defaults with the file's overrides.
    expected = load_config(DetectorConfig, block, weights="/tmp/x.pt", classifier_weights="none")
    assert cfg == expected
    assert cfg.classifier_top_k == block["classifier_top_k"]
    assert cfg.num_threads == block["num_threads"]


def test_deterministic_switch_reaches_both_nodes(repo, assert_launch_file_valid) -> None:
    """deterministic:=true (perception and replay launch files) sets deterministic_replay on
    the detector and the object map; the default stays live (stale frames dropped)."""
    from katazuke.launcher.graph import ParamDict

    def params(graph) -> dict[str, dict]:
        out = {}
        for p in graph.processes:
            vals: dict = {}
            for entry in p.params:
                if isinstance(entry, ParamDict):
                    vals.update(entry.values)
            out[p.node_name] = vals
        return out

    live = assert_launch_file_valid(repo / "launch" / "perception.launch.xml",
                                    {"detector", "object_map"})
    det = assert_launch_file_valid(repo / "launch" / "perception.launch.xml",
                                   {"detector", "object_map"}, {"deterministic": "true"})
    # (assert_launch_file_valid takes an <include>'s <arg>s for undescribed declarations)
    from katazuke.launcher import load_launch

    replay = load_launch(repo / "launch" / "replay.launch.xml", {"bag": "/tmp/b"})
    assert sorted(p.node_name for p in replay.processes) == ["bag_player", "detector",
                                                            "object_map"]
    for graph, want in ((live, False), (det, True), (replay, True)):
        p = params(graph)
        assert p["detector"]["deterministic_replay"] is want, p
        assert p["object_map"]["deterministic_replay"] is want, p
    player = params(replay)["bag_player"]
    assert player["bag"] == "/tmp/b" and player["deterministic.enabled"] is True, player
