"""``imx500-sam serve``: prompt the AI Camera (--rpk) or the emulator (--emulate) from a browser."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from imx500_sam.cli.app import app


@app.command("serve")
def serve(
    rpk: Path = typer.Option(None, "--rpk", help="network.rpk: serve the Raspberry Pi AI Camera (picamera2)."),
    emulate: Path = typer.Option(None, "--emulate", help="A convert output directory: serve the emulated IMX500."),
    source: str = typer.Option(None, "--source", help="Emulator frames: image, folder, video file or webcam index."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on; any non-loopback one needs a token."),
    port: int = typer.Option(8500, "--port", help="Port to listen on (0: any free port)."),
    token: str = typer.Option(None, "--token", help="Require this token (default: generated for a non-loopback host)."),
    masks_only: bool = typer.Option(
        False, "--masks-only", help="Never encode, store or serve a frame: the page shows masks and boxes on black."
    ),
    max_prompts: int = typer.Option(8, "--max-prompts", help="Prompts at once (they take turns, one ROI per frame)."),
    frame_rate: float = typer.Option(
        None,
        "--frame-rate",
        help="Frames per second (camera: the network's inference_rate; emulator: 30, a video's own).",
    ),
    threads: int = typer.Option(None, "--threads", help="Emulator: onnxruntime threads (default: up to 4)."),
    fast_int8: bool = typer.Option(False, "--fast-int8", help="Emulator: onnxruntime's fused INT8 kernels (faster)."),
) -> None:
    """Live view + mask overlay in a browser: drag a box to prompt (the model's crop, as run), JSON API, MJPEG."""
    from imx500_sam.serve.server import ServeAddress, ServeOptions
    from imx500_sam.serve.server import serve as run_server

    def ready(address: ServeAddress) -> None:
        print(f"imx500-sam serve: open {address.url}  (Ctrl-C stops)", flush=True)

    options = ServeOptions(
        rpk=rpk, emulate=emulate, source=source, host=host, port=port, token=token, masks_only=masks_only,
        max_prompts=max_prompts, frame_rate=frame_rate, threads=threads, fast_int8=fast_int8,
    )  # fmt: skip
    frames = run_server(options, on_ready=ready)
    print(f"imx500-sam serve: the source ended after {frames} frame(s).", file=sys.stderr)
