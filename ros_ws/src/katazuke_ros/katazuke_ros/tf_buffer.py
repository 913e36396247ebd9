"""A small TF buffer for nodes (tf2_ros does not exist on PyPI).

Stores /tf and /tf_static transforms (tf2_msgs/TFMessage) per parent/child edge with
their stamps, interpolates (slerp) between stamps, and chains lookups through the tree.
Quaternions are ``xyzw``.
"""
from __future__ import annotations

import bisect
import threading
from collections import deque

import numpy as np
from tf2_msgs.msg import TFMessage

from katazuke_ros.node_utils import stamp_to_sec

__all__ = ["TransformBuffer", "quat_xyzw_to_matrix", "matrix_to_quat_xyzw"]


# ----------------------------------------------------------------------------- math
def quat_xyzw_to_matrix(q: np.ndarray) -> np.ndarray:
    """Unit quaternion ``(4,)`` xyzw -> rotation ``(3, 3)``."""
    x, y, z, w = np.asarray(q, float) / np.linalg.norm(q)
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def matrix_to_quat_xyzw(R: np.ndarray) -> np.ndarray:
    """Rotation ``(3, 3)`` -> unit quaternion xyzw with w >= 0."""
    R = np.asarray(R, float)
    tr = np.trace(R)
    if tr > 0:
        s = 2.0 * np.sqrt(tr + 1.0)
        q = np.array([(R[2, 1] - R[1, 2]) / s, (R[0, 2] - R[2, 0]) / s, (R[1, 0] - R[0, 1]) / s, s / 4])
    else:
        i = int(np.argmax(np.diag(R)))
        j, k = (i + 1) % 3, (i + 2) % 3
        s = 2.0 * np.sqrt(1.0 + R[i, i] - R[j, j] - R[k, k])
        q = np.zeros(4)
        q[i] = s / 4
        q[j] = (R[j, i] + R[i, j]) / s
        q[k] = (R[k, i] + R[i, k]) / s
        q[3] = (R[k, j] - R[j, k]) / s
    q /= np.linalg.norm(q)
    return -q if q[3] < 0 else q


def _slerp(q0: np.ndarray, q1: np.ndarray, a: float) -> np.ndarray:
    d = float(np.dot(q0, q1))
    if d < 0:
        q1, d = -q1, -d
    if d > 0.9995:
        q = q0 + a * (q1 - q0)
        return q / np.linalg.norm(q)
    th = np.arccos(d)
    return (np.sin((1 - a) * th) * q0 + np.sin(a * th) * q1) / np.sin(th)


# ----------------------------------------------------------------------------- tf buffer
class TransformBuffer:
    """Transforms by (parent, child) with time histories; chained lookups between frames.

    Dynamic transforms are interpolated (linear translation, slerp rotation) between the two
    stored samples around the query time, or the nearest sample is used within ``tolerance``
    seconds outside the stored span. Static transforms hold at all times. The frame graph is
    treated as undirected; a lookup walks the path from target to source.
    """

    def __init__(self, history_s: float = 10.0) -> None:
        self.history_s = history_s
        self._static: dict[tuple[str, str], np.ndarray] = {}
        self._dyn: dict[tuple[str, str], tuple[list[float], list[np.ndarray], list[np.ndarray]]] = {}
        self._lock = threading.Lock()

    def set_transform(self, parent: str, child: str, t: float, translation: np.ndarray,
                      quat_xyzw: np.ndarray, static: bool = False) -> None:
        """Store ``T_parent_child`` (maps child-frame points into the parent frame) at time t."""
        parent, child = parent.lstrip("/"), child.lstrip("/")
        tr = np.asarray(translation, float)
        q = np.asarray(quat_xyzw, float)
        q = q / np.linalg.norm(q)
        with self._lock:
            if static:
                T = np.eye(4)
                T[:3, :3] = quat_xyzw_to_matrix(q)
                T[:3, 3] = tr
                self._static[(parent, child)] = T
                return
            ts, trs, qs = self._dyn.setdefault((parent, child), ([], [], []))
            i = bisect.bisect_right(ts, t)
            ts.insert(i, t)
            trs.insert(i, tr)
            qs.insert(i, q)
            while ts and ts[-1] - ts[0] > self.history_s:
                ts.pop(0)
                trs.pop(0)
                qs.pop(0)

    def _edge(self, parent: str, child: str, t: float, tolerance: float) -> np.ndarray | None:
        if (parent, child) in self._static:
            return self._static[(parent, child)]
        hist = self._dyn.get((parent, child))
        if not hist or not hist[0]:
            return None
        ts, trs, qs = hist
        i = bisect.bisect_left(ts, t)
        if i < len(ts) and ts[i] == t:
            tr, q = trs[i], qs[i]
        elif 0 < i < len(ts):
            a = (t - ts[i - 1]) / (ts[i] - ts[i - 1])
            tr = (1 - a) * trs[i - 1] + a * trs[i]
            q = _slerp(qs[i - 1], qs[i], a)
        else:
            j = 0 if i == 0 else len(ts) - 1
            if abs(ts[j] - t) > tolerance:
                return None
            tr, q = trs[j], qs[j]
        T = np.eye(4)
        T[:3, :3] = quat_xyzw_to_matrix(q)
        T[:3, 3] = tr
        return T

    def lookup(self, target: str, source: str, t: float, tolerance: float = 0.2
               ) -> tuple[np.ndarray | None, str]:
        """``T_target_source`` (4, 4) at time t, or (None, reason)."""
        target, source = target.lstrip("/"), source.lstrip("/")
        if target == source:
            return np.eye(4), ""
        with self._lock:
            adj: dict[str, list[tuple[str, str, str]]] = {}
            for p, c in list(self._static) + list(self._dyn):
                adj.setdefault(p, []).append((c, p, c))
                adj.setdefault(c, []).append((p, p, c))
            # Breadth-first search from source to target.
            prev: dict[str, tuple[str, str, str] | None] = {source: None}
            queue = deque([source])
            while queue and target not in prev:
                f = queue.popleft()
                for nb, p, c in adj.get(f, []):
                    if nb not in prev:
                        prev[nb] = (f, p, c)
                        queue.append(nb)
            if target not in prev:
                known = sorted(adj)
                return None, (f"no transform chain from '{source}' to '{target}' "
                              f"(known frames: {known[:12]})")
            T = np.eye(4)  # accumulates T_target_<frame> walking back from target
            f = target
            while prev[f] is not None:
                g, p, c = prev[f]  # edge between g (closer to source) and f
                E = self._edge(p, c, t, tolerance)
                if E is None:
                    return None, (f"transform {p} -> {c} not available at t={t:.3f} "
                                  f"(tolerance {tolerance} s)")
                # E = T_p_c. We need T_f_g.
                T_f_g = np.linalg.inv(E) if f == c else E
                T = T @ T_f_g
                f = g
            return T, ""

    def add_tf_message(self, msg: TFMessage, static: bool) -> None:
        """Store every transform of a tf2_msgs/TFMessage."""
        for ts in msg.transforms:
            tr, r = ts.transform.translation, ts.transform.rotation
            self.set_transform(ts.header.frame_id, ts.child_frame_id, stamp_to_sec(ts.header.stamp),
                               np.array([tr.x, tr.y, tr.z]), np.array([r.x, r.y, r.z, r.w]), static)


# ----------------------------------------------------------------------------- sync
