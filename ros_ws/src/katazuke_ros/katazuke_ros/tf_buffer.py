"""A small TF buffer for nodes (tf2_ros does not exist on PyPI).

Stores /tf and /tf_static transforms (tf2_msgs/TFMessage) per parent/child edge with
their stamps, interpolates (slerp) between stamps, and chains lookups through the tree.
Quaternions are ``xyzw``; the rotation math is :mod:`katazuke.geometry`.
"""
from __future__ import annotations

import bisect
import threading
from collections import deque

import numpy as np
from tf2_msgs.msg import TFMessage

from katazuke.errors import InputError
from katazuke.geometry import normalize_quaternion, quat_to_matrix, slerp
from katazuke_ros.node_utils import stamp_to_sec

__all__ = ["TransformBuffer"]


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
        """Store ``T_parent_child`` (maps child-frame points into the parent frame) at time t.

        Raises:
            InputError: the quaternion is zero or not finite.
        """
        parent, child = parent.lstrip("/"), child.lstrip("/")
        tr = np.asarray(translation, float)
        q = normalize_quaternion(quat_xyzw)
        with self._lock:
            if static:
                T = np.eye(4)
                T[:3, :3] = quat_to_matrix(q)
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
            q = slerp(qs[i - 1], qs[i], a)
        else:
            j = 0 if i == 0 else len(ts) - 1
            if abs(ts[j] - t) > tolerance:
                return None
            tr, q = trs[j], qs[j]
        T = np.eye(4)
        T[:3, :3] = quat_to_matrix(q)
        T[:3, 3] = tr
        return T

    def _path(self, target: str, source: str) -> dict[str, tuple[str, str, str] | None]:
        """Breadth-first search from source; ``prev`` links (caller holds the lock)."""
        adj: dict[str, list[tuple[str, str, str]]] = {}
        for p, c in list(self._static) + list(self._dyn):
            adj.setdefault(p, []).append((c, p, c))
            adj.setdefault(c, []).append((p, p, c))
        prev: dict[str, tuple[str, str, str] | None] = {source: None}
        queue = deque([source])
        while queue and target not in prev:
            f = queue.popleft()
            for nb, p, c in adj.get(f, []):
                if nb not in prev:
                    prev[nb] = (f, p, c)
                    queue.append(nb)
        return prev

    def covers(self, target: str, source: str, t: float) -> bool:
        """True when a lookup at ``t`` needs no extrapolation: a chain from source to target
        exists and every dynamic edge on it has a sample stamped at or after ``t``.

        Samples of one edge arrive in order, so once this holds the answer of
        :meth:`lookup` at ``t`` no longer changes as newer transforms arrive: what a
        deterministic replay waits for before using a transform.
        """
        target, source = target.lstrip("/"), source.lstrip("/")
        if target == source:
            return True
        with self._lock:
            prev = self._path(target, source)
            if target not in prev:
                return False
            f = target
            while prev[f] is not None:
                g, p, c = prev[f]
                if (p, c) not in self._static:
                    ts = self._dyn[(p, c)][0]
                    if not ts or ts[-1] < t:
                        return False
                f = g
            return True

    def lookup(self, target: str, source: str, t: float, tolerance: float = 0.2
               ) -> tuple[np.ndarray | None, str]:
        """``T_target_source`` (4, 4) at time t, or (None, reason)."""
        target, source = target.lstrip("/"), source.lstrip("/")
        if target == source:
            return np.eye(4), ""
        with self._lock:
            prev = self._path(target, source)
            if target not in prev:
                known = sorted({f for edge in list(self._static) + list(self._dyn) for f in edge})
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

    def add_tf_message(self, msg: TFMessage, static: bool) -> list[str]:
        """Store every transform of a tf2_msgs/TFMessage.

        Returns:
            One reason per transform that was skipped (a zero or non-finite quaternion), for
            the caller to log; empty when all were stored.
        """
        rejected = []
        for ts in msg.transforms:
            tr, r = ts.transform.translation, ts.transform.rotation
            try:
                self.set_transform(ts.header.frame_id, ts.child_frame_id, stamp_to_sec(ts.header.stamp),
                                   np.array([tr.x, tr.y, tr.z]), np.array([r.x, r.y, r.z, r.w]), static)
            except InputError as e:
                rejected.append(f"{ts.header.frame_id} -> {ts.child_frame_id}: {e}")
        return rejected


# ----------------------------------------------------------------------------- sync
