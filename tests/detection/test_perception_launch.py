"""launch/perception.launch.xml and launch/params/perception.yaml agree with the node configs."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import yaml

from katazuke.config import load_config


def test_params_yaml_loads_into_node_configs(repo) -> None:
    from katazuke_ros.detector_node import DetectorNodeConfig
    from katazuke_ros.object_map_node import ObjectMapNodeConfig

    data = yaml.safe_load((repo / "launch" / "params" / "perception.yaml").read_text())
    assert set(data) == {"detector", "object_map"}
    det = load_config(DetectorNodeConfig, data["detector"]["ros__parameters"])
    om = load_config(ObjectMapNodeConfig, data["object_map"]["ros__parameters"])
    assert det == DetectorNodeConfig(), "perception.yaml differs from the detector defaults"
    assert om == ObjectMapNodeConfig(), "perception.yaml differs from the object_map defaults"


def test_launch_file_is_valid_ros2_launch_xml(repo) -> None:
    root = ET.parse(repo / "launch" / "perception.launch.xml").getroot()
    assert root.tag == "launch"
    args = {a.get("name"): a for a in root.iter("arg")}
    assert all(a.get("description") for a in args.values()), "every <arg> needs a description"
    setup = (repo / "ros_ws" / "src" / "katazuke_ros" / "setup.py").read_text()
    execs = {n.get("exec") for n in root.iter("node")}
    assert execs == {"detector", "object_map"}
    for e in execs:
        assert f'"{e}"' in setup
    used = set()
    for n in root.iter():
        for v in n.attrib.values():
            i = 0
            while (i := v.find("$(var ", i)) >= 0:
                j = v.index(")", i)
                used.add(v[i + 6:j].strip())
                i = j
    assert used <= set(args), f"undeclared launch args {used - set(args)}"


def test_offline_benchmarks_use_the_node_detector_settings(repo) -> None:
    from katazuke.cli.bench_detector import node_detector_config

    node = yaml.safe_load((repo / "launch" / "params" / "perception.yaml").read_text())
    block = node["detector"]["ros__parameters"]["detector"]
    cfg = node_detector_config("/tmp/x.pt", "none")
    assert (cfg.weights, cfg.classifier_weights) == ("/tmp/x.pt", "none")
    assert cfg.classifier_top_k == block["classifier_top_k"]
    assert cfg.score_threshold == block["score_threshold"]
    assert cfg.num_threads == block["num_threads"]
