"""Data: streaming video I/O, FOMM-layout datasets, procedural datasets with ground truth."""
