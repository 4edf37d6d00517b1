"""Every figure in the project's documents comes from a committed JSON under benchmarks/results: each cited
figure equals its JSON value, each cited JSON says its command, commit, machine and date, and a number with a
decimal point or a percent sign that carries no citation is flagged (unless it is in ``NOT_MEASUREMENTS``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.doc_figures import Figure, figures, json_value, matches

REPO = Path(__file__).resolve().parents[1]
NAMED_DOCS = ["README.md", "benchmarks/README.md", "imx500_sam/model/weights/MODEL_CARD.md"]
DOCS = [*NAMED_DOCS, *sorted(str(p.relative_to(REPO)) for p in (REPO / "docs").glob("*.md"))]
# Numbers that are not measurements: versions, settings, definitions. (document, token, words around it)
_CARD = "imx500_sam/model/weights/MODEL_CARD.md"
NOT_MEASUREMENTS: set[tuple[str, str, str]] = {
    (_CARD, "2603.11917", "arXiv 2603.11917"),  # the paper's identifier
    (_CARD, "0.1", "imx500-sam 0.1"),  # the toolkit's earlier version
    (_CARD, "2.13", "torch 2.13"),
    ("benchmarks/README.md", "0.1", "imx500-sam 0.1"),
    ("README.md", "3.10", "Python 3.10+"),  # versions
    ("README.md", "10%", "10%, made square), so raw pixels"),  # the prompt's definition
    ("docs/convert.md", "0.1", "imx500-sam 0.1"),
    ("docs/doctor.md", "2.6", "MCT 2.6 with converter 3.19"),
    ("docs/doctor.md", "3.19", "MCT 2.6 with converter 3.19"),
    ("docs/emulator.md", "0.8", "stay above IoU 0.8"),  # test thresholds
    ("docs/emulator.md", "0.8", ">= 0.8x the IoU"),
    ("docs/int8-host-network.md", "1.21", "onnxruntime 1.21"),
    ("docs/int8-host-network.md", "99.9%", "exactly and >= 99.9% of"),  # a test's threshold
    ("docs/int8-host-network.md", "99.9%", "on >= 99.9% of mask pixels on held-out crops"),  # a test's threshold
    ("docs/rpk.md", "3.6", "libarchive 3.6"),
    ("docs/verification.md", "99.9%", "| INT8 host network | derived from the MCTQ file"),  # tests' thresholds
    ("docs/eval.md", "10%", "pad_bbox_to_square` (10% each side"),
    ("docs/eval.md", "13.0", "Pillow here is 13.0"),
    ("docs/eval.md", "12.2", "lock pins 12.2"),
    ("docs/run.md", "10%", "square grown 10% and shifted"),
    ("docs/run.md", "10%", "padded by 10% of its"),
    ("docs/run.md", "1.1", "a square of 1.1 x the box's longer side"),
    ("docs/run.md", "10%", "no 10% padding"),
    ("docs/serve.md", "0.6", "IoU > 0.6"),  # a test's threshold
}


def _all() -> list[Figure]:
    return [f for doc in DOCS for f in figures(doc, (REPO / doc).read_text())]


def _excuses(entry: tuple[str, str, str], f: Figure) -> bool:
    doc, token, words = entry
    return doc == f.doc and token == f.text and words in f.context


def _allowed(f: Figure) -> bool:
    return any(_excuses(e, f) for e in NOT_MEASUREMENTS)


def test_every_cited_figure_equals_its_json_value() -> None:
    wrong = []
    for f in _all():
        if f.cite is None:
            continue
        file, path = f.cite
        assert file.startswith("benchmarks/results/") and (REPO / file).is_file(), f"{f.doc}:{f.line}: {file}"
        data = json.loads((REPO / file).read_text())
        assert all(k in data for k in ("command", "commit", "machine", "date")), f"{file}: provenance missing"
        try:
            value = json_value(REPO, file, path)
        except (KeyError, IndexError, ValueError, TypeError):
            wrong.append(f"{f.doc}:{f.line}: {f.text} cites {file}#{path}, which does not exist")
            continue
        if not matches(f, value):
            wrong.append(f"{f.doc}:{f.line}: {f.text} but {file}#{path} = {value}")
    assert not wrong, "\n".join(wrong)


def test_no_figure_without_a_source() -> None:
    uncited = [f"{f.doc}:{f.line}: {f.text} in: {f.context}" for f in _all() if f.cite is None and not _allowed(f)]
    assert not uncited, f"{len(uncited)} figures cite no JSON:\n" + "\n".join(uncited)


def test_the_checker_catches_a_wrong_and_an_uncited_figure(tmp_path: Path) -> None:
    res = tmp_path / "benchmarks" / "results"
    res.mkdir(parents=True)
    (res / "x.json").write_text(json.dumps({"a": {"b": [0.12345, 0.9993]}}))
    text = (
        "ok 0.1235<!-- fig: benchmarks/results/x.json#a.b.0 --> and 99.93%<!-- fig: benchmarks/results/x.json#a.b.1 -->"
        "\nwrong 0.125<!-- fig: benchmarks/results/x.json#a.b.0 -->; uncited 0.5 and 3%; `0.7` in code; MCT 2.5.1"
        "\n```\n--lr 1.5e-3 0.25\n```\n"
    )
    figs = figures("d.md", text)
    assert [(f.text, f.cite is not None) for f in figs] == [
        ("0.1235", True), ("99.93%", True), ("0.125", True), ("0.5", False), ("3%", False),
    ]  # fmt: skip
    ok = [matches(f, json_value(tmp_path, *f.cite)) for f in figs if f.cite]
    assert ok == [True, True, False]


@pytest.mark.parametrize("doc", NAMED_DOCS)
def test_documents_exist(doc: str) -> None:
    assert (REPO / doc).is_file()


def test_docs_folder_is_read() -> None:
    """The checks above cover docs/*.md: there are such documents, so an emptied glob cannot pass silently."""
    assert len(DOCS) > len(NAMED_DOCS)


def test_every_allowance_is_used() -> None:
    """Each ``NOT_MEASUREMENTS`` entry excuses an uncited number in its document (a stale entry is removed, so the
    list cannot grow into a blanket pass)."""
    figs = [f for f in _all() if f.cite is None]
    unused = [e for e in sorted(NOT_MEASUREMENTS) if not any(_excuses(e, f) for f in figs)]
    assert not unused, "allowances that match no uncited number:\n" + "\n".join(map(str, unused))


def test_each_figure_stands_in_one_document() -> None:
    """A measured figure lives in one document (benchmarks/README.md, or the model card for training history);
    the others link to it."""
    where: dict[tuple[str, str], set[str]] = {}
    for f in _all():
        if f.cite is not None:
            where.setdefault(f.cite, set()).add(f.doc)
    twice = [f"{file}#{path}: {sorted(docs)}" for (file, path), docs in where.items() if len(docs) > 1]
    assert not twice, "figures cited in more than one document:\n" + "\n".join(twice)
