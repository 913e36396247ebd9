"""What the task manager does with a grounded instruction (a ``GroundingResult``).

Torch-free, so the task manager can take grounding results without loading the network.
"""
from __future__ import annotations

from katazuke.planning.tasks.parser import GoalMode, Intent, TidyGoal

__all__ = ["task_command"]


def task_command(intent: int, target_id: int, destination: str, needs_clarification: bool,
                 description: str = "", instruction: str = "") -> tuple[str, TidyGoal | None]:
    """What the task manager does with a grounding result (``GroundingResult`` fields).

    Returns:
        ``("stop", None)`` for STOP; ``("submit", goal)`` for TIDY_ALL, and for MOVE (with a
        target and a destination) or LOOK_AT (with a target) that need no clarification;
        ``("", None)`` otherwise (a question is pending, "where is" was answered, nothing
        was understood): nothing moves.
    """
    it = int(intent)
    if it == Intent.STOP:
        return "stop", None
    if it == Intent.TIDY_ALL:
        return "submit", TidyGoal(GoalMode.TIDY_ALL, instruction=instruction)
    if needs_clarification or not target_id:
        return "", None
    if it == Intent.MOVE and destination:
        return "submit", TidyGoal(GoalMode.MOVE, int(target_id), description, destination,
                                  instruction)
    if it == Intent.LOOK_AT:
        return "submit", TidyGoal(GoalMode.LOOK_AT, int(target_id), description, "",
                                  instruction)
    return "", None
