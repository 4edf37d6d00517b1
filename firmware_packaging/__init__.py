"""packerOut.zip -> network.rpk -> camera: the .rpk format, intrinsics, the Pi packager and flashing.

No torch, no MCT here: everything in this package runs on a Raspberry Pi.
"""
