"""The built-in sample: a virtual multi-camera environment cut from PETS 2009 S2.L1 view 1.

Its virtual-camera warps (``virtual_cameras``), floor-plan drawing (``floor_plan``), builder
(``builder``) and PETS ground truth (``ground_truth``) live here and only here: the pipeline,
live and review paths read environments through :mod:`spoton.site` and never import this
package (``orchestration/demo.py``, the CLI's demo commands, tests and benches do).
"""
from pathlib import Path

ENV_NAME = "pets_s2l1"
# the sample's committed config and calibration: the repository's data/ folder
DATA_DIR = Path(__file__).resolve().parents[2] / "data"
