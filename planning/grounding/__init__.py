"""katazuke.planning.grounding: spoken / typed instructions grounded in the object map.

ROS-free (PyTorch, numpy). The pieces:

- :mod:`.scene`: :class:`GroundingScene`, built from object-map instances only (category,
  kind, colour, size, position; support furniture and containers from perceived positions
  and the known furniture footprints).
- :mod:`.grammar`: the template-and-paraphrase instruction generator with disjoint
  ``train`` / ``test`` templates, paraphrases and synonyms.
- :mod:`.noise`: the ASR-noise channel learned from recognised synthetic speech.
- :mod:`.model`, :mod:`.train`: the network (intent, target and destination scorers over
  attribute and relation features) and its training and conformal calibration.
- :mod:`.grounder`: :class:`Grounder` (text + scene -> :class:`Grounding`, with a
  clarifying question when the candidates are too close or the transcript is unsure,
  "where is X?" answers) and :class:`Dialogue` (a question and its answer).
"""
from katazuke.planning.grounding.grammar import Example, InstructionGenerator, Intent, Relation
from katazuke.planning.grounding.grounder import Dialogue, Grounder, Grounding
from katazuke.planning.grounding.scene import GroundingScene, SceneContainer, SceneObject
from katazuke.planning.grounding.weights import GroundingError, default_weights_path
from katazuke.planning.tasks.grounded import task_command

__all__ = ["GroundingScene", "SceneObject", "SceneContainer", "InstructionGenerator", "Example",
           "Intent", "Relation", "Grounder", "Grounding", "Dialogue", "GroundingError",
           "default_weights_path", "task_command"]
