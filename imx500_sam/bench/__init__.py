"""Benchmarks on the AI Camera (device side: numpy + OpenCV only, never torch, MCT or ``converter``).

- ``power``: the Raspberry Pi 5 PMIC (``vcgencmd pmic_read_adc``): parser and background sampler.
- ``device``: ``imx500-sam bench device``: per-frame DNN / DSP ms, sensor-to-mask latency, RPS / FPS / DPS,
  frame-rate sweep, power over an idle baseline; on any ``Sensor`` (the AI Camera or the emulated IMX500).
- ``inject``: tensor injection (a chosen crop into the sensor) and ``imx500-sam eval --device``.
- ``record`` / ``plot``: JSON with the command, machine, versions and date; PNG plots drawn with OpenCV.
"""
