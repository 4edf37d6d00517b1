"""``python -m imx500_sam``."""

from imx500_sam.cli import entrypoint

entrypoint()
