"""rotavg_server answers real rclpy service requests and survives malformed ones."""
from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.ros

rclpy = pytest.importorskip("rclpy")
srv_mod = pytest.importorskip("katazuke_interfaces.srv")


@pytest.fixture
def server_and_client(ros_context):
    from rclpy.executors import MultiThreadedExecutor

    from katazuke_ros.rotavg_node import RotAvgServer

    server = RotAvgServer(context=ros_context)
    client_node = rclpy.create_node("rotavg_test_client", context=ros_context)
    client = client_node.create_client(srv_mod.RotationAveraging, "rotation_averaging")
    ex = MultiThreadedExecutor(num_threads=2, context=ros_context)
    ex.add_node(server)
    ex.add_node(client_node)
    try:
        yield ex, client
    finally:
        ex.shutdown()
        client_node.destroy_node()
        server.destroy_node()


def _call(ex, client, req, timeout: float = 30.0):
    from katazuke.testing import wait_for

    assert wait_for(client.service_is_ready, 10.0, spin=lambda: ex.spin_once(timeout_sec=0.02))
    fut = client.call_async(req)
    assert wait_for(fut.done, timeout, spin=lambda: ex.spin_once(timeout_sec=0.02))
    return fut.result()


def _request(n: int = 25, noise: float = 3.0, seed: int = 30, degree: float = 4.0):
    from katazuke.perception.rotavg import synthetic_graph

    g, R, out = synthetic_graph(n, degree, noise, np.random.default_rng(seed))
    req = srv_mod.RotationAveraging.Request()
    req.num_nodes = n
    req.edge_i = g.edges[:, 0].astype(np.uint32).tolist()
    req.edge_j = g.edges[:, 1].astype(np.uint32).tolist()
    req.relative_rotations = g.rotations.reshape(-1).tolist()
    return req, g, R


def test_service_returns_certified_rotations(server_and_client) -> None:
    from katazuke.perception.rotavg import chordal_cost

    ex, client = server_and_client
    req, g, _ = _request()
    req.anchor = 4
    resp = _call(ex, client, req)
    assert resp.success, resp.message
    R = np.asarray(resp.rotations).reshape(-1, 3, 3)
    assert R.shape == (25, 3, 3)
    np.testing.assert_allclose(R[4], np.eye(3), atol=1e-12)
    assert resp.certified and resp.certificate_min_eigenvalue > -1e-6
    assert resp.cost == pytest.approx(chordal_cost(g, R))
    assert resp.dual_bound <= resp.cost + 1e-9
    assert len(resp.rejected_edges) == 0 and resp.solve_time_s > 0


@pytest.mark.parametrize("mutate, needle", [
    (lambda r: setattr(r, "edge_j", r.edge_j[:-1]), "edge_j has"),
    (lambda r: setattr(r, "relative_rotations", r.relative_rotations[:-2]), "9 values per edge"),
    (lambda r: setattr(r, "relative_rotations", [float("nan")] + list(r.relative_rotations[1:])), "NaN"),
    (lambda r: setattr(r, "weights", [1.0, 2.0]), "weights"),
    (lambda r: setattr(r, "anchor", 999), "anchor 999"),
    (lambda r: setattr(r, "num_nodes", 3), "outside 0..2"),
    # the one rotation rule: edge 2 scaled by 1.05 is 0.05 off a rotation (> ROTATION_TOL)
    (lambda r: setattr(r, "relative_rotations", list(r.relative_rotations[:18]) +
                       [1.05 * x for x in r.relative_rotations[18:27]] +
                       list(r.relative_rotations[27:])), "request: edge 2: relative rotation is "
                                                         "not orthonormal (deviation 0.05"),
])
def test_malformed_requests_fail_cleanly_and_the_server_keeps_serving(server_and_client, mutate,
                                                                      needle: str) -> None:
    ex, client = server_and_client
    req, _, _ = _request(n=10)
    mutate(req)
    resp = _call(ex, client, req)
    assert not resp.success and needle in resp.message
    good, _, _ = _request(n=10)
    assert _call(ex, client, good).success


def test_robust_request_reports_rejected_edges(server_and_client) -> None:
    from katazuke.perception.rotavg import random_rotations

    ex, client = server_and_client
    req, g, _ = _request(n=40, noise=2.0, seed=31, degree=10.0)
    rel = np.asarray(req.relative_rotations).reshape(-1, 3, 3)
    bad = np.random.default_rng(32).choice(g.num_edges, 6, replace=False)
    rel[bad] = random_rotations(6, np.random.default_rng(33))
    req.relative_rotations = rel.reshape(-1).tolist()
    req.robust = True
    resp = _call(ex, client, req)
    assert resp.success and resp.certified
    assert set(bad.tolist()) <= set(resp.rejected_edges)
