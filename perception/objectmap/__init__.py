"""Object map: fuse 3D detections into instances, forget what is gone, answer "where is".

``ObjectMap(ObjectMapConfig()).update(t, detections, view)`` then ``.instances`` and
``.where_is("mug")``; :func:`box_to_3d` lifts a detection box with depth (Open3D point
cloud, imported only when it runs). ROS-free.
"""
from katazuke.perception.objectmap.config import ObjectMapConfig
from katazuke.perception.objectmap.lifting import (LiftingConfig, box_points, box_to_3d,
                                                 object_points)
from katazuke.perception.objectmap.objectmap import (CATEGORY_NAMES, KNOWN_CATEGORIES, CameraView,
                                                     Instance, Landmark, ObjectMap, Observation3D,
                                                     WhereIsResult)

__all__ = ["ObjectMap", "ObjectMapConfig", "Observation3D", "CameraView", "Instance", "Landmark",
           "WhereIsResult", "CATEGORY_NAMES", "KNOWN_CATEGORIES", "box_to_3d", "box_points",
           "object_points", "LiftingConfig"]
