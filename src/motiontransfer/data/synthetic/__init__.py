"""Procedural datasets with ground truth: articulated puppets, cartoon faces and moving shapes.

Entry points: :class:`ProceduralSource` (an indexable collection of videos rendered on demand, with GT
keypoints and cross-identity transfer ground truth), :class:`ProceduralSpec` (the ``procedural:`` data string)
and :func:`get_family`. Writing to disk lives in :mod:`motiontransfer.data.synthetic.writer`.
"""

from motiontransfer.data.synthetic.base import Family, RenderedFrame
from motiontransfer.data.synthetic.source import (
    FAMILIES,
    MOTIONS,
    ProceduralSource,
    ProceduralSpec,
    ProceduralVideo,
    get_family,
    is_procedural,
)

__all__ = [
    "FAMILIES",
    "MOTIONS",
    "Family",
    "ProceduralSource",
    "ProceduralSpec",
    "ProceduralVideo",
    "RenderedFrame",
    "get_family",
    "is_procedural",
]
