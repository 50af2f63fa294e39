"""What every model family builds on: the :class:`~motiontransfer.models.base.AnimationModel` interface
(``base``), shared motion representations (``motion``: :class:`GaussianKeypoints`) and shared networks
(``keypoint_detector``: FOMM's detector, also KPVP's). The families themselves live in :mod:`motiontransfer.families`.
"""

from motiontransfer.models.base import AnimationModel, SourceState
from motiontransfer.models.motion import GaussianKeypoints

__all__ = ["AnimationModel", "GaussianKeypoints", "SourceState"]
