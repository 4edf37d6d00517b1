"""Why does a better-trained PicoSAM3 lose INT8 fidelity? Three candidate causes, measured per checkpoint.

On 64 prompt crops of the registry's evaluate photos (convert's accuracy photos, never calibration or training):
- logit margins: the share of float mask logits near the threshold (|logit| < 0.25 / 0.5 / 1): more of
  them and the same INT8 error flips more pixels;
- per-tensor activation range imbalance: for every ReLU / biased conv output, the largest channel's
  99.9th percentile over the median channel's (IMX500 activations are quantized per tensor, so a wide
  spread leaves few levels to small channels); the median and the worst layers;
- with ``--int8 DIR`` (the convert output of the same checkpoint, in the same order as ``--model``):
  float vs the INT8 host network (derived from the MCTQ file): mean and max |logit difference| and the
  share of mask pixels that flip.

    .venv/bin/python -m benchmarks.int8_sensitivity --model A.pt --int8 A_CONVERT [--model B.pt --int8 B_CONVERT]

Writes benchmarks/results/int8_sensitivity.json.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from benchmarks._common import write_result


def _activation_imbalance(net: object, x: object) -> dict[str, float]:
    import torch

    ratios: dict[str, float] = {}

    def hook(name: str):
        def record(_m: object, _i: object, out: torch.Tensor) -> None:
            a = out.detach().abs().transpose(0, 1).flatten(1)
            sample = a[:, torch.randperm(a.shape[1], generator=torch.Generator().manual_seed(0))[:20000]]
            q = torch.quantile(sample, 0.999, dim=1)
            ratios[name] = float(q.max() / q.median().clamp_min(1e-6))

        return record

    mods = [
        (n, m)
        for n, m in net.named_modules()  # type: ignore[attr-defined]
        if isinstance(m, torch.nn.ReLU) or (isinstance(m, torch.nn.Conv2d) and m.bias is not None)
    ]
    handles = [m.register_forward_hook(hook(n)) for n, m in mods]
    with torch.inference_mode():
        net(x)  # type: ignore[operator]
    for h in handles:
        h.remove()
    return ratios


def measure(models: list[Path], int8_dirs: list[Path], crops: int = 64) -> dict:
    """The three measurements for each checkpoint (and its convert output, when given)."""
    import torch

    from converter.calibration import accuracy_photos, prompt_crops, to_batch
    from imx500_sam.convert_output import ConvertOutputDir
    from imx500_sam.model import load_checkpoint
    from imx500_sam.train.evaluate import onnx_predictor

    batch = to_batch(prompt_crops(accuracy_photos(), crops, 96, seed=1))
    x = torch.from_numpy(batch)
    rows = []
    for k, path in enumerate(models):
        net = load_checkpoint(path).eval()
        with torch.inference_mode():
            logits = net(x).numpy()
        flat = np.abs(logits).ravel()
        ratios = _activation_imbalance(net, x)
        worst = sorted(ratios.items(), key=lambda kv: -kv[1])[:3]
        row = {
            "model": str(path),
            "share_abs_logit_below": {str(t): round(float((flat < t).mean()), 4) for t in (0.25, 0.5, 1.0)},
            "mean_abs_logit": round(float(flat.mean()), 3),
            "activation_range_imbalance": {
                "median_over_layers": round(float(np.median(list(ratios.values()))), 3),
                "worst_layers": {n: round(v, 2) for n, v in worst},
                "layers": len(ratios),
            },
        }
        if k < len(int8_dirs):
            predict, _ = onnx_predictor(ConvertOutputDir.load(int8_dirs[k]).qdq_onnx)
            q = predict(batch)
            diff = np.abs(q - logits)
            row["float_vs_int8_host"] = {
                "convert_dir": str(int8_dirs[k]),
                "mean_abs_logit_diff": round(float(diff.mean()), 4),
                "max_abs_logit_diff": round(float(diff.max()), 3),
                "mask_pixels_flipped": round(float(((q > 0) != (logits > 0)).mean()), 5),
            }
        rows.append(row)
    return {
        "what": "INT8 sensitivity of float checkpoints: logit margins, activation range imbalance, float vs INT8",
        "crops": crops,
        "accuracy_photos": [p.record.source for p in accuracy_photos()],
        "results": rows,
    }


def main() -> None:
    """Measure and write benchmarks/results/int8_sensitivity.json."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, action="append", required=True, help="checkpoint (repeatable)")
    ap.add_argument("--int8", type=Path, action="append", default=[], help="its convert output (same order)")
    ap.add_argument("--crops", type=int, default=64)
    args = ap.parse_args()
    data = measure(args.model, args.int8, args.crops)
    for r in data["results"]:
        print(r)
    print(write_result("int8_sensitivity", data))


if __name__ == "__main__":
    main()
