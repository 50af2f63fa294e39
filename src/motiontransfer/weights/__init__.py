"""Bundled model files (see :mod:`motiontransfer.pretrained`)."""
