"""Configuration of the task manager: planner and behaviour knobs, the container
assignment and the instruction vocabulary.

Everything world-specific (which container each category goes to, the words for object
kinds, the furniture) lives in ``launch/params/tidy.yaml`` and reaches the algorithms
only through :class:`TidyConfig`. The YAML keeps ROS-parameter shapes (nested mappings and
lists of strings only) so the node can declare the same block as parameters:

.. code-block:: yaml

    task_manager:
      ros__parameters:
        planner: {max_failures: 3, ...}
        behaviour: {approach_poses: 3, ...}
        containers:
          bin_red: {colour: red, categories: [toy, soft]}
        vocabulary:
          categories: {toy: [toy, toys]}
          kinds: {duck: {category: toy, words: [duck, rubber duck]}}
          container_words: [bin, box, basket]
          furniture: {table: {words: [table], center_xy: [0.4, 1.3], size_xy: [1.2, 0.7]}}
"""
from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

from katazuke.config import (dataclass, field, in_range, load_config, non_negative, positive,
                             read_yaml)
from katazuke.errors import ConfigError

__all__ = ["TaskPlannerConfig", "BehaviourConfig", "ContainerSpec", "CategorySpec", "KindSpec",
           "FurnitureSpec", "Vocabulary", "TidyConfig", "load_tidy_config",
           "tidy_config_from_params"]


@dataclass(frozen=True)
class TaskPlannerConfig:
    """Knobs of :class:`~katazuke.planning.tasks.planner.TaskPlanner`."""

    max_failures: int = positive(3, "failed tries of an item (any step) before it is FAILED")
    min_confidence: float = in_range(0.3, "map objects below this existence confidence are "
                                     "not planned (they may be false detections)", 0.0, 1.0)
    container_radius_m: float = positive(0.2, "an object whose xy lies within this distance of "
                                         "its container's centre (or inside the container's "
                                         "footprint when known) counts as already tidied, m")
    improve_rounds: int = non_negative(20, "rounds of 2-opt / relocate improvement after the "
                                       "greedy order (0 = greedy only)")
    reassociate_radius_m: float = non_negative(
        0.25, "an item whose object left the map is handed to a new map object within this "
              "xy distance of where it was last seen (the object map re-created it under a new "
              "id), keeping its state and counts, m (0 = never)")
    duplicate_radius_m: float = non_negative(
        0.12, "a new map object this close (xy, m) to an unfinished item's object that is still "
              "in the map is the same thing seen twice (the map keeps two instances when their "
              "categories disagree): it gets no item of its own (0 = off)")
    ignore_in_containers: bool = field(default=True, metadata={
        "help": "tidy-all leaves objects seen inside any container alone (a container's rim "
                "detected as an object, an object someone put there); a user's MOVE command "
                "still takes them"})


@dataclass(frozen=True)
class BehaviourConfig:
    """Knobs of :class:`~katazuke.planning.tasks.behaviour.TidyBehaviour`. Times are on the
    robot's clock (sim seconds in simulation)."""

    explore_first: bool = field(default=True, metadata={
        "help": "scan the room (Skills.explore) at the start of a tidy-all task"})
    explore_retries: int = non_negative(3, "scans tried again after a failed scan of the room "
                                        "(a node still starting, tf not yet there) before "
                                        "the task fails")
    explore_retry_s: float = non_negative(2.0, "robot-clock seconds between two scan tries")
    viewpoints_xy: tuple[float, ...] = field(default=(), metadata={
        "help": "room points the robot drives to and scans the room from once nothing is left "
                "to tidy, nearest first, as x, y pairs in the map frame (m) flattened into one "
                "list (a ROS parameter cannot nest lists); () = scan only where the task "
                "starts"})
    approach_poses: int = positive(3, "distinct approach poses the navigator is asked for "
                                   "(approach index 0..n-1) before an approach failure counts "
                                   "against the same pose again")
    max_perceive_retries: int = non_negative(2, "re-perceptions after a failed segmentation "
                                             "before the try counts as failed")
    vanished_grace_s: float = non_negative(
        1.0, "an object that has been out of the object map this long while the robot drives "
             "to it or waits to see it again is given up at once ('not_found'): the map "
             "dropped it because views that should show it did not (a table leg taken for a "
             "bottle from afar), so the rest of the drive, the look and the re-perceptions "
             "would be wasted, s")
    max_trapped_recoveries: int = non_negative(
        3, "consecutive navigation failures with cause 'trapped' (the robot's own start stuck "
           "in the cost map's inflation, not the item's fault) answered by a recovery - scan "
           "the room so the cost map around the robot is seen afresh, then try the same item "
           "again - without counting against the item; after that many in a row they count "
           "as the item's failures. A successful drive resets the count")
    skill_timeout_s: float = positive(90.0, "a skill still RUNNING after this long is cancelled "
                                      "and fails with cause 'timeout', s")
    safe_timeout_s: float = positive(20.0, "time allowed to make the robot safe (stop, stow, "
                                     "release) before the behaviour moves on regardless, s")
    item_budget_s: float = positive(240.0, "time budget of one item over all its tries; "
                                    "exceeded -> FAILED with cause 'timeout', s")
    item_budget_ticks: int = positive(20000, "tick budget of one item over all its tries")
    task_budget_s: float = positive(3600.0, "time budget of a whole task; exceeded -> the task "
                                    "FAILED and its unfinished items SKIPPED 'timeout', s")
    task_budget_ticks: int = positive(500000, "tick budget of a whole task")

    def __post_init__(self) -> None:
        v = self.viewpoints_xy
        if len(v) % 2 or not all(math.isfinite(float(x)) for x in v):
            raise ConfigError(f"behaviour.viewpoints_xy must be finite x, y pairs (an even "
                              f"count of numbers); got {list(v)}")

    @property
    def viewpoints(self) -> list[tuple[float, float]]:
        """:attr:`viewpoints_xy` as ``(x, y)`` pairs."""
        v = [float(x) for x in self.viewpoints_xy]
        return list(zip(v[0::2], v[1::2]))


@dataclass(frozen=True)
class ContainerSpec:
    """One container and the categories that belong in it."""

    id: str = field(default="", metadata={"help": "container id, e.g. 'bin_red'"})
    colour: str = field(default="", metadata={"help": "colour name users say ('red')"})
    categories: tuple[str, ...] = field(default=(), metadata={
        "help": "object categories that go into this container"})
    position: tuple[float, float, float] | None = field(default=None, metadata={
        "help": "known centre in the map frame, m (a prior; a container seen in the object "
                "map replaces it); null = only from the map", "check": "finite"})
    size_xy: tuple[float, float] = field(default=(0.0, 0.0), metadata={
        "help": "footprint (axis-aligned in the map frame), m; (0, 0) = use the planner's "
                "container_radius_m", "check": "non_negative"})


@dataclass(frozen=True)
class CategorySpec:
    """Words that name a category."""

    name: str = field(default="", metadata={"help": "category name ('toy')"})
    words: tuple[str, ...] = field(default=(), metadata={"help": "phrases naming it ('toys')"})


@dataclass(frozen=True)
class KindSpec:
    """An object kind, its category and the phrases that name it."""

    name: str = field(default="", metadata={"help": "kind name as in ObjectInstance.kind"})
    category: str = field(default="", metadata={"help": "its category"})
    words: tuple[str, ...] = field(default=(), metadata={"help": "phrases naming it"})


@dataclass(frozen=True)
class FurnitureSpec:
    """A piece of furniture users may refer to ("the mug on the table")."""

    name: str = field(default="", metadata={"help": "furniture name ('table')"})
    words: tuple[str, ...] = field(default=(), metadata={"help": "phrases naming it"})
    center_xy: tuple[float, float] = field(default=(0.0, 0.0), metadata={
        "help": "footprint centre in the map frame, m"})
    size_xy: tuple[float, float] = field(default=(0.0, 0.0), metadata={
        "help": "footprint size (axis-aligned in the map frame), m; (0, 0) = no region"})


@dataclass(frozen=True)
class Vocabulary:
    """What the rule-based parser understands."""

    categories: tuple[CategorySpec, ...] = field(default=(), metadata={"help": "category words"})
    kinds: tuple[KindSpec, ...] = field(default=(), metadata={"help": "object kind words"})
    container_words: tuple[str, ...] = field(default=("bin", "box", "basket", "container"),
                                             metadata={"help": "nouns naming a container"})
    furniture: tuple[FurnitureSpec, ...] = field(default=(), metadata={"help": "furniture"})

    def __post_init__(self) -> None:
        cats = {c.name for c in self.categories}
        for k in self.kinds:
            if k.category not in cats:
                raise ConfigError(f"vocabulary kind '{k.name}' has category '{k.category}', "
                                  f"which is not in vocabulary.categories {sorted(cats)}")


@dataclass(frozen=True)
class TidyConfig:
    """The task manager's configuration (``launch/params/tidy.yaml``)."""

    planner: TaskPlannerConfig = field(default_factory=TaskPlannerConfig,
                                       metadata={"help": "task planner"})
    behaviour: BehaviourConfig = field(default_factory=BehaviourConfig,
                                       metadata={"help": "behaviour"})
    containers: tuple[ContainerSpec, ...] = field(default=(), metadata={
        "help": "container assignment: which categories go into which container"})
    vocabulary: Vocabulary = field(default_factory=Vocabulary, metadata={"help": "parser words"})

    def __post_init__(self) -> None:
        seen: dict[str, str] = {}
        colours: dict[str, str] = {}
        for c in self.containers:
            if not c.id:
                raise ConfigError("TidyConfig.containers: every container needs an id")
            if c.colour and c.colour in colours:
                raise ConfigError(f"containers '{colours[c.colour]}' and '{c.id}' share the "
                                  f"colour '{c.colour}'; colours must tell containers apart")
            colours[c.colour] = c.id
            for cat in c.categories:
                if cat in seen:
                    raise ConfigError(f"category '{cat}' is assigned to both '{seen[cat]}' and "
                                      f"'{c.id}'; give each category one container")
                seen[cat] = c.id

    def container_for(self, category: str) -> str:
        """Container id a category goes to, ``""`` when the assignment has none."""
        for c in self.containers:
            if category in c.categories:
                return c.id
        return ""


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where} must be a mapping; got {type(value).__name__}")
    return value


def tidy_config_from_params(params: Mapping[str, Any], where: str = "tidy params") -> TidyConfig:
    """Build a :class:`TidyConfig` from the ``ros__parameters`` block (ROS-parameter shapes:
    containers, kinds, categories and furniture are mappings keyed by name).

    Raises:
        ConfigError: unknown keys, wrong types, inconsistent assignment or vocabulary.
    """
    params = dict(_mapping(params, where))
    allowed = {"planner", "behaviour", "containers", "vocabulary"}
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; valid keys: {sorted(allowed)}")
    containers = tuple(
        load_config(ContainerSpec, {"id": cid, **_mapping(spec, f"{where}: containers.{cid}")},
                    where=f"{where}: containers.{cid}")
        for cid, spec in _mapping(params.get("containers"), f"{where}: containers").items())
    voc = dict(_mapping(params.get("vocabulary"), f"{where}: vocabulary"))
    vw = f"{where}: vocabulary"
    voc_unknown = sorted(set(voc) - {"categories", "kinds", "container_words", "furniture"})
    if voc_unknown:
        raise ConfigError(f"{vw}: unknown key(s) {voc_unknown}; valid keys: "
                          "['categories', 'container_words', 'furniture', 'kinds']")
    cats = tuple(load_config(CategorySpec, {"name": n, "words": w}, where=f"{vw}.categories.{n}")
                 for n, w in _mapping(voc.get("categories"), f"{vw}.categories").items())
    kinds = tuple(load_config(KindSpec, {"name": n, **_mapping(s, f"{vw}.kinds.{n}")},
                              where=f"{vw}.kinds.{n}")
                  for n, s in _mapping(voc.get("kinds"), f"{vw}.kinds").items())
    furniture = tuple(load_config(FurnitureSpec, {"name": n, **_mapping(s, f"{vw}.furniture.{n}")},
                                  where=f"{vw}.furniture.{n}")
                      for n, s in _mapping(voc.get("furniture"), f"{vw}.furniture").items())
    vkw: dict[str, Any] = {"categories": cats, "kinds": kinds, "furniture": furniture}
    if "container_words" in voc:
        vkw["container_words"] = voc["container_words"]
    vocabulary = load_config(Vocabulary, vkw, where=vw)
    return load_config(TidyConfig, {"planner": _mapping(params.get("planner"), f"{where}: planner"),
                                    "behaviour": _mapping(params.get("behaviour"),
                                                          f"{where}: behaviour"),
                                    "containers": containers, "vocabulary": vocabulary},
                       where=where)


def load_tidy_config(source: str | os.PathLike | Mapping[str, Any],
                     node: str = "task_manager") -> TidyConfig:
    """Load the task manager's configuration from ``launch/params/tidy.yaml`` (or a mapping
    of the same shape).

    Args:
        source: YAML path, or a mapping ``{node: {"ros__parameters": {...}}}``.
        node: the node block to read.

    Raises:
        ConfigError: missing file, missing block, unknown keys, bad values.
    """
    data = source if isinstance(source, Mapping) else read_yaml(source)
    where = f"{source if not isinstance(source, Mapping) else 'tidy config'}: {node}"
    block = _mapping(data, "tidy config").get(node)
    if not isinstance(block, Mapping) or "ros__parameters" not in block:
        raise ConfigError(f"{where}.ros__parameters not found; the file needs a "
                          f"'{node}: ros__parameters:' block")
    return tidy_config_from_params(_mapping(block["ros__parameters"], where), where=where)
