"""Neural Descriptor Fields (Simeonov et al., ICRA 2022) on Vector Neurons, CPU-sized.

``NdfNetwork`` (:mod:`.model`) is an occupancy network whose VN-PointNet encoder
(:mod:`.vn`) makes the shape code rotate with the cloud; :class:`DescriptorField` gives the
descriptors ``f(q | P)`` (the decoder's concatenated activations) of query points, which
do not change when the cloud and the queries move together by any rigid transform.
:func:`minimise_pose_energy` (:mod:`.optimize`) finds the gripper poses whose query points
reproduce a demonstration's descriptors on a new cloud. :mod:`.shapes` and :mod:`.data`
make the procedural training data (mugs, bowls, bottles; occupancy labels; rendered partial
clouds); :mod:`.train` trains and evaluates. Torch is imported by these modules; nothing
happens at import time.
"""
from katazuke.perception.ndf.config import (NdfDataConfig, NdfModelConfig, NdfTrainConfig,
                                            PoseOptConfig)
from katazuke.perception.ndf.field import MIN_CLOUD_POINTS, DescriptorField
from katazuke.perception.ndf.gripper import gripper_collision_points, gripper_query_points
from katazuke.perception.ndf.model import NdfNetwork, load_ndf_weights, save_ndf_weights
from katazuke.perception.ndf.optimize import (PoseEnergyResult, minimise_pose_energy,
                                              random_rotations, transform_points)
from katazuke.perception.ndf.vn import (VNInvariant, VNLeakyReLU, VNLinear, VNLinearLeakyReLU,
                                        VNMaxPool, VNMeanPool, VNResnetBlock)

__all__ = ["NdfModelConfig", "PoseOptConfig", "NdfDataConfig", "NdfTrainConfig", "NdfNetwork",
           "DescriptorField", "MIN_CLOUD_POINTS", "PoseEnergyResult", "minimise_pose_energy",
           "random_rotations", "transform_points", "save_ndf_weights", "load_ndf_weights",
           "gripper_query_points", "gripper_collision_points", "VNLinear", "VNLeakyReLU",
           "VNLinearLeakyReLU", "VNMeanPool", "VNMaxPool", "VNInvariant", "VNResnetBlock"]
