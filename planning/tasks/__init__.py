"""Task planning for the tidy-up: item model, container assignment, task planner, the
rule-based instruction parser and the tickable behaviour over an abstract skills seam.

ROS-free; the task-manager node converts its messages to these types 1:1
(``ItemState`` / ``TaskPhase`` values equal the ``TaskItem`` / ``TaskStatus`` constants,
``TidyGoal`` mirrors the ``Tidy`` goal, ``TaskStatus`` / ``TaskResult`` its feedback and
result).
"""
from katazuke.planning.tasks.behaviour import TaskResult, TaskStatus, TidyBehaviour
from katazuke.planning.tasks.config import (BehaviourConfig, CategorySpec, ContainerSpec,
                                            FurnitureSpec, KindSpec, TaskPlannerConfig,
                                            TidyConfig, Vocabulary, load_tidy_config,
                                            tidy_config_from_params)
from katazuke.planning.tasks.items import (ALLOWED_TRANSITIONS, FINISHED_STATES, Container,
                                           ItemState, MapObject, TaskError, TaskItem, TaskPhase,
                                           TransitionError, progress_fraction,
                                           split_object_map)
from katazuke.planning.tasks.parser import (GoalMode, InstructionParser, Intent, ObjectQuery,
                                            ParseResult, Resolution, TidyGoal)
from katazuke.planning.tasks.planner import TaskPlanner, TravelCost, euclidean_cost, order_cost
from katazuke.planning.tasks.skills import (DoneHandle, NavTarget, SkillHandle, SkillResult,
                                            Skills, SkillStatus)

__all__ = ["TaskResult", "TaskStatus", "TidyBehaviour", "BehaviourConfig", "CategorySpec",
           "ContainerSpec", "FurnitureSpec", "KindSpec", "TaskPlannerConfig", "TidyConfig",
           "Vocabulary", "load_tidy_config", "tidy_config_from_params", "ALLOWED_TRANSITIONS",
           "FINISHED_STATES", "Container", "ItemState", "MapObject", "TaskError", "TaskItem",
           "TaskPhase", "TransitionError", "progress_fraction", "split_object_map", "GoalMode",
           "InstructionParser",
           "Intent", "ObjectQuery", "ParseResult", "Resolution", "TidyGoal", "TaskPlanner",
           "TravelCost", "euclidean_cost", "order_cost", "DoneHandle", "NavTarget", "SkillHandle",
           "SkillResult", "Skills", "SkillStatus"]
