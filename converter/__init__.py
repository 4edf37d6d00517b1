"""PyTorch PicoSAM3 -> MCT INT8 -> operator/SRAM gate -> imxconv-pt -> packerOut.zip, with reports.

Light to import: the stages import torch / MCT when they run. The layout of a convert output directory
(what the device side reads) is :mod:`imx500_sam.convert_output`; ``converter.artifacts`` holds the host-side
stage artifacts.
"""
