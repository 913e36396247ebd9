"""Config of the object map (frozen dataclass, YAML/ROS-parameter loadable)."""
from __future__ import annotations

from katazuke.config import dataclass, field

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

    gate_distance: float = field(default=0.25, metadata={
        "help": "m; a detection further than this from every instance starts a new instance"})
    merge_distance: float = field(default=0.15, metadata={
        "help": "m; two compatible instances closer than this are merged into one"})
    min_category_compat: float = field(default=0.15, metadata={
        "help": "a detection may join an instance when its probability of the instance's "
                "category is at least this (or either is 'unknown')"})
    min_objectness: float = field(default=0.3, metadata={
        "help": "detections below this objectness are ignored"})
    confirm_observations: int = field(default=2, metadata={
        "help": "an instance is reported once fused from this many detections"})
    report_min_objectness: float = field(default=0.7, metadata={
        "help": "an instance is reported only once one of its detections reached this objectness "
                "(weak detections still support instances, but cannot create reported ones)"})
    hit_gain: float = field(default=0.5, metadata={
        "help": "confidence update on a detection: c += hit_gain * objectness * (1 - c)"})
    miss_decay: float = field(default=0.6, metadata={
        "help": "confidence factor when the instance should have been seen but was not"})
    forget_after_misses: int = field(default=3, metadata={
        "help": "K: consecutive views that should show the instance but do not -> removed"})
    min_confidence: float = field(default=0.1, metadata={
        "help": "instances whose confidence falls below this are removed"})
    depth_tolerance: float = field(default=0.15, metadata={
        "help": "m; the view 'should see' an instance when the measured depth at its projection "
                "is no nearer than expected depth minus this (not occluded)"})
    image_margin_px: int = field(default=10, metadata={
        "help": "projections closer than this to the image border do not count as visible"})
    max_range: float = field(default=4.0, metadata={
        "help": "m; instances further from the camera than this are not checked for absence"})
    position_window: int = field(default=20, metadata={
        "help": "observations kept per instance; the position is their weighted median"})
    destinations: tuple[str, ...] = field(default=DEFAULT_DESTINATIONS, metadata={
        "help": "category->container rules, each 'category=container_id'"})
    synonyms: tuple[str, ...] = field(default=DEFAULT_SYNONYMS, metadata={
        "help": "query word->category rules, each 'word=category' ('any' matches every object)"})
    landmarks: tuple[str, ...] = field(default=DEFAULT_LANDMARKS, metadata={
        "help": "named furniture/containers for answers, each 'name=x,y,z,sx,sy,sz' "
                "(centre and size of an axis-aligned box in the map frame, m)"})
    near_distance: float = field(default=1.2, metadata={
        "help": "m; a landmark within this horizontal distance is named as 'near'"})
