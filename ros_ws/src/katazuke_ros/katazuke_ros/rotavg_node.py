"""rotavg_server: certified chordal rotation averaging as a ROS 2 service.

Serves ``katazuke_interfaces/srv/RotationAveraging`` on ``rotation_averaging`` (the SLAM
backend calls it to initialise global BA). Requests are answered one at a time on the
node's single executor thread (a second request waits for the first; parameter services
wait too while a solve runs). Bad requests (inconsistent sizes, NaN, bad anchor) get
``success = false`` and a message, never a crash. Relative rotations follow the rule of
:mod:`katazuke.perception.rotavg.validate`: within ``ROTATION_TOL`` (1e-2, largest
``|singular value - 1|``) they are projected to SO(3); further off, the request is refused
with a message naming the edge and its deviation.

Parameters: one per :class:`katazuke.perception.rotavg.RotAvgConfig` field (``robust``
and ``anchor`` come from each request instead).
"""
from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
from rclpy.node import Node

from katazuke.errors import KatazukeError
from katazuke.perception.rotavg import (RotAvgConfig, RotationAveraging, ViewGraph,
                                        single_threaded_blas)
from katazuke_interfaces.srv import RotationAveraging as RotationAveragingSrv
from katazuke_ros.node_utils import declare_config, run_node


class RotAvgServer(Node):
    """Answers rotation-averaging requests with rotations and an optimality certificate."""

    def __init__(self, **node_kwargs: object) -> None:
        super().__init__("rotavg_server", **node_kwargs)
        self._config = declare_config(self, RotAvgConfig)
        self._srv = self.create_service(RotationAveragingSrv, "rotation_averaging", self._on_request)
        self.get_logger().info("rotation_averaging service ready")

    def _graph(self, req: RotationAveragingSrv.Request) -> ViewGraph:
        n = int(req.num_nodes)
        ei = np.asarray(req.edge_i, dtype=np.int64)
        ej = np.asarray(req.edge_j, dtype=np.int64)
        rel = np.asarray(req.relative_rotations, dtype=np.float64)
        w = np.asarray(req.weights, dtype=np.float64)
        m = ei.size
        if ej.size != m:
            raise KatazukeError(f"edge_i has {m} entries but edge_j has {ej.size}")
        if rel.size != 9 * m:
            raise KatazukeError(f"relative_rotations needs 9 values per edge ({9 * m}), got {rel.size}")
        if w.size not in (0, m):
            raise KatazukeError(f"weights needs one value per edge ({m}) or none, got {w.size}")
        if m == 0:
            raise KatazukeError("request has no edges")
        # The rotation rule of perception/rotavg/validate.py: within ROTATION_TOL projected,
        # beyond it an InputError naming the edge (the response's message).
        return ViewGraph.from_arrays(n, np.stack([ei, ej], axis=1), rel.reshape(m, 3, 3),
                                     w if w.size else None, source="request")

    def _on_request(self, req: RotationAveragingSrv.Request,
                    resp: RotationAveragingSrv.Response) -> RotationAveragingSrv.Response:
        t0 = time.perf_counter()
        try:
            graph = self._graph(req)
            if not 0 <= int(req.anchor) < graph.num_nodes:
                raise KatazukeError(f"anchor {req.anchor} is not a node (0..{graph.num_nodes - 1})")
            cfg = replace(self._config, robust=bool(req.robust), anchor=int(req.anchor))
            with single_threaded_blas():
                res = RotationAveraging(cfg).solve(graph)
        except KatazukeError as exc:
            resp.success = False
            resp.message = str(exc)
            resp.solve_time_s = time.perf_counter() - t0
            self.get_logger().warning(f"rejected request: {exc}")
            return resp
        c = res.certificate
        resp.success = True
        resp.message = "; ".join(res.notes) if res.notes else (
            "certified global optimum" if c.certified else "solution not certified")
        resp.rotations = res.rotations.reshape(-1).tolist()
        resp.cost = float(res.cost)
        resp.dual_bound = float(c.dual_bound)
        resp.duality_gap = float(c.relative_gap)
        resp.certificate_min_eigenvalue = float(c.min_eigenvalue)
        resp.certified = bool(c.certified)
        resp.rejected_edges = [int(e) for e in res.rejected_edges]
        resp.solve_time_s = time.perf_counter() - t0
        self.get_logger().info(
            f"solved n={graph.num_nodes} m={graph.num_edges}: cost {res.cost:.6g}, lambda_min "
            f"{c.min_eigenvalue:.3g}, certified {c.certified}, {resp.solve_time_s:.3f} s")
        return resp


def main(args: list[str] | None = None) -> int:
    return run_node(RotAvgServer, args)


if __name__ == "__main__":
    raise SystemExit(main())
