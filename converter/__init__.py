"""PyTorch PicoSAM3 -> MCT INT8 -> operator/SRAM gate -> imxconv-pt -> packerOut.zip, with reports.

Light to import: the stages import torch / MCT when they run. ``converter.artifacts`` (the output
contract of ``imx500-sam convert``) never imports torch, so the Pi runtime and emulator may use it.
"""
