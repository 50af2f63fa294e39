"""Video and image frames in and out: :mod:`~motiontransfer.video.io` streams video files, frame folders and images
as (3, H, W) float tensors in [0, 1] and writes them atomically; :mod:`~motiontransfer.video.frames` turns the
Python API's inputs (paths, arrays, tensors, iterables) into such frames.

This package depends on nothing of the library but :mod:`motiontransfer.errors` and :mod:`motiontransfer.fileio`,
so that data, training, inference and pictures can all use it."""
