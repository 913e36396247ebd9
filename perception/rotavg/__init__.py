"""katazuke.perception.rotavg: certified chordal rotation averaging (numpy/scipy only).

Solve ``min sum_e w_e ||R_i R_ij - R_j||_F^2`` over SO(3)^n with a Gauss-Newton solver
from a degree-normalised spectral start, a dual (Lagrangian) optimality certificate, a
rank staircase by rotation coordinate descent when the certificate fails, and a GNC-TLS
robust mode; read and write g2o, TORO, 1DSfM and numpy graphs.
"""
from .graph import ViewGraph, chordal_cost, synthetic_graph
from .io import FORMATS, detect_format, read_graph, write_graph, write_rotations
from .validate import ROTATION_TOL, check_quaternions, check_rotation_matrices
from .solver import (Certificate, RotAvgConfig, RotAvgResult, RotationAveraging, certify,
                     solve_rotation_averaging, spectral_init)
from .threads import single_threaded_blas
from .so3 import (angle_between, exp_so3, log_so3, project_to_so3, quat_to_rot, random_rotations,
                  rot_to_quat, rot_to_rpy, rpy_to_rot)

__all__ = ["ViewGraph", "chordal_cost", "synthetic_graph",
           "FORMATS", "detect_format", "read_graph", "write_graph", "write_rotations",
           "ROTATION_TOL", "check_quaternions", "check_rotation_matrices",
           "Certificate", "RotAvgConfig", "RotAvgResult", "RotationAveraging", "certify",
           "solve_rotation_averaging", "spectral_init", "single_threaded_blas",
           "angle_between", "exp_so3", "log_so3", "project_to_so3", "quat_to_rot",
           "random_rotations", "rot_to_quat", "rot_to_rpy", "rpy_to_rot"]
