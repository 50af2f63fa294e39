"""Official checkpoints -> model files: reading the authors' checkpoints safely (``torch_checkpoint``), the
network mapping every keypoint family shares (``networks``), and :func:`~motiontransfer.convert.official.
convert_official` (``official``), which recognises a checkpoint's family and calls that family's converter
(``families/<name>/convert.py``, registered in its :class:`~motiontransfer.registry.FamilySpec`)."""
