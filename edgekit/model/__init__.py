"""The source model: loading Hugging Face checkpoints (``EdgeModel``), tokenising inputs (parity
feeds, calibration) and the shipped real-text samples. Imports ``core`` only.
"""
