"""The tidy-up video: the head camera beside a top view of what the stack knows.

:class:`TidyView` listens on a :class:`katazuke.ros.probe.Probe` to the stack's own topics
(never the ground truth): the head camera, ``costmap`` (the navigator's), ``object_map``,
``path`` (the plan handed to the controller), ``odom`` (the robot) and ``task_status`` (each
item's state and the current step), and the containers of the task manager's configuration.
Each camera frame becomes one video frame (on sim time: a frame lost on the way repeats the
previous one): the camera image on the left, on the right the cost map (grey: unknown,
white: free, black: occupied, shaded: inflation), the containers in their colours, every
mapped object as a dot coloured by its item state, the planned path, the robot's footprint,
and a caption with the progress and the current step.
"""
from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["TidyView", "STATE_COLOURS"]

#: item state (TaskItem constants) -> BGR colour of its dot
STATE_COLOURS = {0: (200, 200, 200), 1: (0, 200, 255), 2: (255, 160, 0), 3: (0, 200, 0),
                 4: (0, 0, 230), 5: (150, 150, 150)}
_STATE_NAMES = {0: "pending", 1: "active", 2: "in hand", 3: "placed", 4: "failed", 5: "skipped"}
_BIN_BGR = {"red": (40, 40, 220), "blue": (220, 90, 30), "green": (40, 170, 40),
            "yellow": (30, 210, 230)}


class TidyView:
    """Composes and writes the demo video from the stack's topics.

    Args:
        probe: the probe whose node subscribes (it must be spun by its owner).
        video_path: the MP4 to write (H.264).
        containers: ``(id, colour, centre_xy, size_xy)`` of each container (the task
            manager's configuration).
        fps: frame rate (the camera's, Hz of sim time).
        room_m: side of the square room drawn (m), centred on the map origin.
        size_px: height of the video (the camera image is scaled to it).
    """

    def __init__(self, probe: Any, video_path: Path, containers: list[tuple], fps: float,
                 room_m: float = 5.2, size_px: int = 360) -> None:
        from katazuke_interfaces.msg import ObjectMap, TaskStatus
        from nav_msgs.msg import OccupancyGrid, Odometry, Path as PathMsg
        from sensor_msgs.msg import Image

        self.video_path = Path(video_path)
        self.containers = containers
        self.fps = float(fps)
        self.room_m = float(room_m)
        self.size = int(size_px)
        self._lock = threading.Lock()
        self._grid: Any = None
        self._objects: list[Any] = []
        self._path: np.ndarray = np.zeros((0, 2))
        self._pose: tuple[float, float, float] | None = None
        self._status: Any = None
        self.writer: Any = None
        self.frames = 0
        self.video_frames = 0
        self._t0: float | None = None
        self._last_t: float | None = None
        probe.collect("head_camera/image_raw", Image, "sensor", self._on_image, keep=False)
        probe.collect("costmap", OccupancyGrid, "latched", self._on_grid, keep=False)
        probe.collect("object_map", ObjectMap, "latched", self._on_objects, keep=False)
        probe.collect("path", PathMsg, "command", self._on_path, keep=False)
        probe.collect("odom", Odometry, "state", self._on_odom, keep=False)
        probe.collect("task_status", TaskStatus, "events", self._on_status, keep=False)

    # -- inputs
    def _on_grid(self, msg: Any) -> None:
        with self._lock:
            self._grid = msg

    def _on_objects(self, msg: Any) -> None:
        with self._lock:
            self._objects = list(msg.objects)

    def _on_path(self, msg: Any) -> None:
        with self._lock:
            self._path = np.array([[p.pose.position.x, p.pose.position.y] for p in msg.poses]
                                  ).reshape(-1, 2)

    def _on_odom(self, msg: Any) -> None:
        from katazuke.ros.conversions import pose_xyyaw

        with self._lock:
            self._pose = tuple(pose_xyyaw(msg.pose.pose))

    def _on_status(self, msg: Any) -> None:
        with self._lock:
            self._status = msg

    def _on_image(self, msg: Any) -> None:
        from katazuke.errors import InputError
        from katazuke.ros.conversions import image_to_numpy, stamp_to_sec

        try:
            img = image_to_numpy(msg, "rgb8")
        except InputError:
            return
        t = stamp_to_sec(msg.header.stamp)
        if self._last_t is not None and t <= self._last_t:
            return
        self._t0 = t if self._t0 is None else self._t0
        self._last_t = t
        self.frames += 1
        frame = self.compose(img)
        if self.writer is None:
            import imageio.v2 as imageio

            self.writer = imageio.get_writer(str(self.video_path), fps=self.fps, codec="libx264",
                                             quality=7, macro_block_size=8,
                                             ffmpeg_log_level="error")
        want = int(round((t - self._t0) * self.fps)) + 1
        self.writer.append_data(frame)
        self.video_frames += 1
        while self.video_frames < want:  # keep the video on sim time
            self.writer.append_data(frame)
            self.video_frames += 1

    # -- drawing
    def _px(self, xy: np.ndarray) -> np.ndarray:
        """Map (x, y) metres -> top-view pixels (x right, y up on screen)."""
        s = self.size / self.room_m
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        return np.column_stack([(xy[:, 0] + self.room_m / 2) * s,
                                (self.room_m / 2 - xy[:, 1]) * s]).round().astype(np.int32)

    def top_view(self) -> np.ndarray:
        """(size, size, 3) uint8 RGB top view of the map, items, plan and robot."""
        import cv2

        with self._lock:
            grid, objects, path, pose, status = (self._grid, list(self._objects), self._path.copy(),
                                                 self._pose, self._status)
        n = self.size
        img = np.full((n, n, 3), 140, np.uint8)  # unknown
        if grid is not None and grid.info.width and grid.info.height:
            g = np.asarray(grid.data, dtype=np.int16).reshape(grid.info.height, grid.info.width)
            shade = np.where(g < 0, 140, 255 - np.clip(g, 0, 100) * 2.55).astype(np.uint8)
            res = grid.info.resolution
            ox, oy = grid.info.origin.position.x, grid.info.origin.position.y
            # the grid's rows are y up; the view's rows are y down
            (x0, y1), (x1, y0) = self._px([[ox, oy], [ox + g.shape[1] * res, oy + g.shape[0] * res]])
            w, h = max(1, x1 - x0), max(1, y1 - y0)
            patch = cv2.resize(shade[::-1], (w, h), interpolation=cv2.INTER_NEAREST)
            xa, ya, xb, yb = max(0, x0), max(0, y0), min(n, x0 + w), min(n, y0 + h)
            if xb > xa and yb > ya:
                img[ya:yb, xa:xb] = patch[ya - y0:yb - y0, xa - x0:xb - x0, None]
        for cid, colour, centre, size in self.containers:
            c = np.asarray(centre[:2], float)
            half = np.asarray(size, float) / 2
            (a, b), (d, e) = self._px([c - half * [1, -1], c + half * [1, -1]])
            cv2.rectangle(img, (int(a), int(b)), (int(d), int(e)), _BIN_BGR.get(colour, (0, 0, 0))[::-1], 2)
        states = {it.object_id: it.state for it in (status.items if status is not None else [])}
        for o in objects:
            (u, v), = self._px([[o.position.x, o.position.y]])
            colour = STATE_COLOURS.get(states.get(o.id, 0), (200, 200, 200))[::-1]
            cv2.circle(img, (int(u), int(v)), 4, colour, -1)
            cv2.circle(img, (int(u), int(v)), 4, (0, 0, 0), 1)
        if len(path) > 1:
            cv2.polylines(img, [self._px(path)], False, (200, 0, 200), 2)
        if pose is not None:
            x, y, yaw = pose
            c, s = math.cos(yaw), math.sin(yaw)
            corners = [(x + c * dx - s * dy, y + s * dx + c * dy)
                       for dx, dy in ((0.3, 0.25), (0.3, -0.25), (-0.3, -0.25), (-0.3, 0.25))]
            cv2.polylines(img, [self._px(corners)], True, (0, 90, 255), 2)
            (u, v), (p, q) = self._px([[x, y], [x + 0.35 * c, y + 0.35 * s]])
            cv2.line(img, (int(u), int(v)), (int(p), int(q)), (0, 90, 255), 2)
        return img

    def caption(self) -> str:
        with self._lock:
            st = self._status
        if st is None:
            return "waiting for the task manager"
        done = sum(it.state in (3, 4, 5) for it in st.items)
        counts = {}
        for it in st.items:
            counts[_STATE_NAMES.get(it.state, "?")] = counts.get(_STATE_NAMES.get(it.state, "?"), 0) + 1
        summary = ", ".join(f"{v} {k}" for k, v in counts.items())
        return f"{done}/{len(st.items)} done ({summary}) | {st.current_step}"

    def compose(self, camera_rgb: np.ndarray) -> np.ndarray:
        """The video frame: the camera (scaled to the view's height) beside the top view,
        with the caption underneath."""
        import cv2

        h = self.size
        w = int(round(camera_rgb.shape[1] * h / camera_rgb.shape[0]))
        cam = cv2.resize(camera_rgb, (w, h), interpolation=cv2.INTER_AREA)
        frame = np.concatenate([cam, self.top_view()], axis=1)
        bar = np.full((28, frame.shape[1], 3), 30, np.uint8)
        cv2.putText(bar, self.caption()[:110], (6, 19), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                    (255, 255, 255), 1, cv2.LINE_AA)
        out = np.concatenate([frame, bar], axis=0)
        return out[: out.shape[0] // 8 * 8, : out.shape[1] // 8 * 8]

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
