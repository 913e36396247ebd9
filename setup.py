"""Package map for the `katazuke` distribution.

The ROS-free libraries sit at the repository root (perception/, planning/, control/,
sim/) but are installed as `katazuke.perception`, ... so that our `control` can never
shadow python-control's `control` module, nor the other way round.
"""
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).resolve().parent
LIBRARIES = ("perception", "planning", "control", "sim")

packages = ["katazuke"] + [f"katazuke.{p}" for p in find_packages(str(HERE / "katazuke"))]
package_dir = {"katazuke": "katazuke"}
for lib in LIBRARIES:
    package_dir[f"katazuke.{lib}"] = lib
    packages.append(f"katazuke.{lib}")
    packages += [f"katazuke.{lib}.{p}" for p in find_packages(str(HERE / lib))]

setup(packages=packages, package_dir=package_dir, include_package_data=True,
      package_data={"": ["*.yaml", "*.pt", "*.json", "*.urdf", "*.obj", "*.png", "*.xml"]})
