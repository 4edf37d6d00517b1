"""imx500-sam: promptable segmentation (PicoSAM3) inside the Sony IMX500 image sensor.

Importing this package is light: no torch, no MCT. Heavy parts are imported by the
modules that need them (``imx500_sam.model``, ``converter``).
"""

__version__ = "0.1.0"
