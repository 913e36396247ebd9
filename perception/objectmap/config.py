"""Config of the object map (frozen dataclass, YAML/ROS-parameter loadable)."""
from __future__ import annotations

import math

from katazuke.config import dataclass, field, in_range, non_negative, positive
from katazuke.errors import ConfigError

__all__ = ["ObjectMapConfig", "DEFAULT_DESTINATIONS", "DEFAULT_SYNONYMS", "DEFAULT_LANDMARKS"]

#: category -> destination container id (the simulator's bins), "category=container".
DEFAULT_DESTINATIONS = ("toy=bin_red", "soft=bin_red", "kitchenware=bin_blue", "bottle=bin_blue",
                        "stationery=bin_green", "box=bin_yellow")
#: furniture and containers of the simulated room (katazuke.sim world layout), map = world.
DEFAULT_LANDMARKS = ("table=0.4,1.3,0.275,1.2,0.7,0.55", "shelf=-1.5,2.3,0.65,1.03,0.35,1.3",
                     "red bin=-1.9,-1.9,0.09,0.4,0.32,0.18", "blue bin=-0.9,-1.95,0.09,0.4,0.32,0.18",
                     "green bin=1.95,-0.9,0.09,0.32,0.4,0.18",
                     "yellow bin=1.95,0.2,0.09,0.32,0.4,0.18")
#: words a spoken query may use -> category, "word=category".
DEFAULT_SYNONYMS = (
    "mug=kitchenware", "cup=kitchenware", "plate=kitchenware", "bowl=kitchenware",
    "spoon=kitchenware", "fork=kitchenware", "dish=kitchenware", "pan=kitchenware",
    "pen=stationery", "pencil=stationery", "marker=stationery", "stapler=stationery",
    "scissors=stationery", "eraser=stationery", "notebook=stationery",
    "book=box", "books=box", "carton=box", "package=box", "boxes=box",
    "plush=soft", "teddy=soft", "pillow=soft", "cushion=soft", "towel=soft", "sock=soft",
    "cloth=soft", "stuffed=soft",
    "ball=toy", "block=toy", "car=toy", "doll=toy", "duck=toy", "toys=toy", "lego=toy",
    "can=bottle", "flask=bottle", "bottles=bottle", "jar=bottle",
    "thing=any", "object=any", "item=any", "something=any", "anything=any")


@dataclass(frozen=True)
class ObjectMapConfig:
    """Fusion, forgetting and query settings of :class:`~katazuke.perception.objectmap.ObjectMap`."""

    gate_distance: float = positive(
        0.25, "m; a detection further than this from every instance starts a new instance")
    merge_distance: float = non_negative(
        0.15, "m; two compatible instances closer than this are merged into one")
    min_category_compat: float = in_range(
        0.15, "a detection may join an instance when its probability of the instance's "
              "category is at least this (or either is 'unknown')", 0.0, 1.0)
    min_objectness: float = in_range(0.3, "detections below this objectness are ignored", 0.0, 1.0)
    confirm_observations: int = in_range(
        2, "an instance is reported once fused from this many detections", 1, math.inf)
    report_min_objectness: float = in_range(
        0.7, "an instance is reported only once one of its detections reached this objectness "
             "(weak detections still support instances, but cannot create reported ones)",
        0.0, 1.0)
    hit_gain: float = in_range(
        0.5, "confidence update on a detection: c += hit_gain * objectness * (1 - c)", 0.0, 1.0)
    miss_decay: float = field(default=0.6, metadata={
        "help": "confidence factor in (0, 1) when the instance should have been seen but was not"})
    forget_after_misses: int = in_range(
        3, "K: consecutive views that should show the instance but do not -> removed", 1, math.inf)
    min_confidence: float = in_range(
        0.1, "instances whose confidence falls below this are removed", 0.0, 1.0)
    depth_tolerance: float = non_negative(
        0.15, "m; the view 'should see' an instance when the measured depth at its projection "
              "is no nearer than expected depth minus this (not occluded)")
    image_margin_px: int = non_negative(
        10, "projections closer than this to the image border do not count as visible")
    max_range: float = positive(
        4.0, "m; instances further from the camera than this are not checked for absence")
    position_window: int = in_range(
        20, "observations kept per instance; the position is their weighted median", 1, math.inf)
    destinations: tuple[str, ...] = field(default=DEFAULT_DESTINATIONS, metadata={
        "help": "category->container rules, each 'category=container_id'"})
    synonyms: tuple[str, ...] = field(default=DEFAULT_SYNONYMS, metadata={
        "help": "query word->category rules, each 'word=category' ('any' matches every object)"})
    landmarks: tuple[str, ...] = field(default=DEFAULT_LANDMARKS, metadata={
        "help": "named furniture/containers for answers, each 'name=x,y,z,sx,sy,sz' "
                "(centre and size of an axis-aligned box in the map frame, m)"})
    near_distance: float = non_negative(
        1.2, "m; a landmark within this horizontal distance is named as 'near'")

    def __post_init__(self) -> None:
        # An open interval (1 would never forget, 0 forgets at once): not a declared range.
        if not 0 < self.miss_decay < 1:
            raise ConfigError(f"miss_decay must be in (0, 1), got {self.miss_decay}")
