"""``imx500-sam serve``: prompt the camera (or the emulator) from a browser.

- ``engine``: the camera loop: one ``PromptSession`` (the same as ``run`` and the device bench), prompts added and
  removed between frames, a snapshot per frame for the web side;
- ``app``: the aiohttp application: the page, the JSON API, the MJPEG streams, the token;
- ``server``: opens the sensor, runs the web server in a thread and the camera loop in the main thread, stops both
  on Ctrl-C / SIGTERM;
- ``static/``: the page (plain HTML, CSS and JavaScript, no CDN).

Device side: numpy, OpenCV and aiohttp only (never torch, MCT or ``converter``).
"""
