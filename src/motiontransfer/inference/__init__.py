"""Inference: the streaming animation and reconstruction pipeline over any model family."""

from motiontransfer.inference.pipeline import Landmarker, animate, find_best_frame, reconstruct

__all__ = ["Landmarker", "animate", "find_best_frame", "reconstruct"]
