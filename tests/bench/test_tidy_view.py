"""The tidy-up video's frame: camera beside a top view drawn from the stack's topics."""
from __future__ import annotations

import numpy as np


def test_frame_shows_the_cost_map_items_by_state_plan_and_robot(tmp_path):
    from katazuke_interfaces.msg import ObjectInstance, ObjectMap, TaskItem, TaskStatus
    from nav_msgs.msg import OccupancyGrid, Odometry
    from nav_msgs.msg import Path as PathMsg
    from geometry_msgs.msg import PoseStamped

    from katazuke.bench.tidy_view import STATE_COLOURS, TidyView
    from katazuke.ros.probe import Probe

    with Probe("tidy_view_test") as probe:
        view = TidyView(probe, tmp_path / "v.mp4", [("bin_red", "red", (-1.9, -1.9), (0.4, 0.32))],
                        fps=10.0, size_px=260)
        grid = OccupancyGrid()
        grid.info.resolution, grid.info.width, grid.info.height = 0.1, 52, 52
        grid.info.origin.position.x = grid.info.origin.position.y = -2.6
        data = np.zeros((52, 52), np.int8)
        data[40:52, :] = 100          # a wall along the top (y > 1.4 m)
        grid.data = data.ravel().tolist()
        view._on_grid(grid)
        om = ObjectMap()
        for oid, x in ((1, 1.0), (2, -1.0)):
            o = ObjectInstance(id=oid)
            o.position.x, o.position.y = x, 0.0
            om.objects.append(o)
        view._on_objects(om)
        st = TaskStatus(current_step="navigate to pre-grasp pose")
        st.items = [TaskItem(object_id=1, state=TaskItem.PLACED), TaskItem(object_id=2, state=TaskItem.FAILED)]
        view._on_status(st)
        path = PathMsg()
        for x in (0.0, 0.5):
            p = PoseStamped()
            p.pose.position.x = x
            path.poses.append(p)
        view._on_path(path)
        odom = Odometry()
        odom.pose.pose.orientation.w = 1.0
        view._on_odom(odom)
        top = view.top_view()
        assert top.shape == (260, 260, 3)
        u1, v = view._px([[1.0, 0.0]])[0]
        u2, _ = view._px([[-1.0, 0.0]])[0]
        assert tuple(top[v, u1]) == STATE_COLOURS[TaskItem.PLACED][::-1]
        assert tuple(top[v, u2]) == STATE_COLOURS[TaskItem.FAILED][::-1]
        _, vw = view._px([[0.0, 2.2]])[0]
        assert top[vw, 130].max() < 10                 # the wall is black
        _, vf = view._px([[0.0, -1.0]])[0]
        assert top[vf, 130].min() > 250                # free floor is white
        assert "2/2 done (1 placed, 1 failed)" in view.caption() and "pre-grasp" in view.caption()
        frame = view.compose(np.zeros((240, 320, 3), np.uint8))
        assert frame.shape[0] % 8 == 0 and frame.shape[1] % 8 == 0
        assert frame.shape[1] == (346 + 260) // 8 * 8  # camera (346 px at 260 high) + top view
        view.close()
