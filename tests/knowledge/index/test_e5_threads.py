"""ONNX Runtime threads per embedding call: ``ALLO_ONNX_THREADS`` or all the cores."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest.importorskip("onnxruntime")

from allo.knowledge.index.e5_onnx import (
    THREADS_VARIABLE,
    E5OnnxError,
    OnnxE5Embedder,
)


def test_the_variable_sets_the_threads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(THREADS_VARIABLE, "3")
    assert OnnxE5Embedder(tmp_path).threads == 3
    assert OnnxE5Embedder(tmp_path, threads=2).threads == 2  # an explicit value wins


def test_without_the_variable_every_core_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(THREADS_VARIABLE, raising=False)
    assert OnnxE5Embedder(tmp_path).threads == len(os.sched_getaffinity(0))


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5"])
def test_a_bad_value_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv(THREADS_VARIABLE, value)
    with pytest.raises(E5OnnxError, match=THREADS_VARIABLE):
        OnnxE5Embedder(tmp_path)
