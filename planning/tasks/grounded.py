"""What the task manager does with a grounded instruction (a ``GroundingResult``).

Torch-free, so the task manager can take grounding results without loading the network.
"""
from __future__ import annotations

from katazuke.planning.tasks.parser import GoalMode, Intent, TidyGoal

__all__ = ["task_command"]


def task_command(intent: int, target_id: int, destination: str, needs_clarification: bool,
                 description: str = "", instruction: str = "", search_description: str = ""
                 ) -> tuple[str, TidyGoal | None]:
    """What the task manager does with a grounding result (``GroundingResult`` fields).

    Returns:
        ``("stop", None)`` for STOP; ``("submit", goal)`` for TIDY_ALL, and for MOVE (with a
        target and a destination) or LOOK_AT (with a target) that need no clarification;
        ``("", None)`` otherwise (a question is pending, "where is" was answered, nothing
        was understood): nothing moves. MOVE / LOOK_AT of an object not in the map yet
        (``target_id`` 0 and a ``search_description``) is submitted by description: the
        task manager explores to find it (a MOVE without ``destination`` takes the object's
        own container).
    """
    it = int(intent)
    if it == Intent.STOP:
        return "stop", None
    if it == Intent.TIDY_ALL:
        return "submit", TidyGoal(GoalMode.TIDY_ALL, instruction=instruction)
    if needs_clarification:
        return "", None
    if not target_id:
        if search_description and it in (Intent.MOVE, Intent.LOOK_AT):
            mode = GoalMode.MOVE if it == Intent.MOVE else GoalMode.LOOK_AT
            return "submit", TidyGoal(mode, 0, search_description,
                                      destination if it == Intent.MOVE else "", instruction)
        return "", None
    if it == Intent.MOVE and destination:
        return "submit", TidyGoal(GoalMode.MOVE, int(target_id), description, destination,
                                  instruction)
    if it == Intent.LOOK_AT:
        return "submit", TidyGoal(GoalMode.LOOK_AT, int(target_id), description, "",
                                  instruction)
    return "", None
