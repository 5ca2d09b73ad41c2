"""TFLite reader: the FlatBuffer model (schema read by hand) lowered to ONNX-semantics nodes.

Float32, float16 (weights stored as float16 behind DEQUANTIZE) and int8/uint8 quantized
models are supported. Quantized tensors keep their integer type in the graph; each op
dequantizes its quantized inputs (DequantizeLinear), computes in float32 and quantizes its
output (QuantizeLinear) with the tensor's own scale and zero point, so results match the
TFLite interpreter to within one quantization step. Constant weights are dequantized
(and sparse ones densified) once at load time. Inputs and outputs stay NHWC.
"""

from __future__ import annotations

import pathlib
from dataclasses import dataclass

import numpy as np

from ..errors import ModelError, ModelFormatError, UnsupportedOp, UnsupportedOperatorError
from ..graph import Graph, GraphBuilder
from . import _flatbuf as fb
from ._nhwc import Value, set_outputs
from .tflite_ops import OPCODE_NAMES, OPS

_DTYPES = {
    0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 4: np.int64, 6: np.bool_, 7: np.int16,
    8: np.complex64, 9: np.int8, 10: np.float64, 11: np.complex128, 12: np.uint64, 15: np.uint32, 16: np.uint16,
}  # fmt: skip
_QUANTIZED = (np.int8, np.uint8, np.int16, np.int32)


@dataclass
class Tensor:
    """One TFLite tensor: name, dtype, shape (None for dynamic dims), constant data and quantization."""

    index: int
    name: str
    dtype: np.dtype
    shape: tuple[int | None, ...]
    data: np.ndarray | None = None
    scale: np.ndarray | None = None
    zero_point: np.ndarray | None = None
    quantized_dim: int = 0

    @property
    def quantized(self) -> bool:
        return self.scale is not None and self.scale.size > 0 and self.dtype.type in _QUANTIZED

    def dequantized(self) -> np.ndarray:
        """The constant data as float32 (dequantized if quantized, upcast if float16)."""
        assert self.data is not None
        if not self.quantized:
            return self.data.astype(np.float32) if self.data.dtype == np.float16 else self.data
        shape = [1] * self.data.ndim
        if self.scale.size > 1:
            shape[self.quantized_dim] = -1
        zp = (
            self.zero_point if self.zero_point is not None and self.zero_point.size else np.zeros(1)
        ).reshape(shape if self.scale.size > 1 else [1] * self.data.ndim)
        return ((self.data.astype(np.float64) - zp) * self.scale.reshape(shape)).astype(np.float32)


@dataclass
class Operator:
    """One TFLite operator: its builtin name, tensor indices (-1: omitted) and options table."""

    op: str
    inputs: list[int]
    outputs: list[int]
    options: fb.Table | None
    version: int = 1


def read_tflite(
    path: str | pathlib.Path | bytes, signature: str | None = None, opset: int = 21
) -> Graph:
    """Read a `.tflite` model into a `Graph` (NHWC, as the TFLite interpreter takes it).

    `signature` picks a SignatureDef by key (default: the first subgraph's signature, or
    the main subgraph when the file has none).

    **Example:**

    ```python
    graph = read_tflite("mobilenet_int8.tflite")
    graph.inputs[0].describe()  # 'serving_default_image:0: int8[?,16,16,3]'
    ```
    """
    if isinstance(path, (bytes, bytearray, memoryview)):
        buf, path = bytes(path), pathlib.Path("model.tflite")
    else:
        path = pathlib.Path(path)
        if not path.is_file():
            raise ModelFormatError(f"{path}: no such file")
        buf = path.read_bytes()
    if len(buf) < 8 or buf[4:8] != b"TFL3":
        raise ModelFormatError(f"{path}: not a TFLite FlatBuffer (missing the 'TFL3' identifier)")
    try:
        model = fb.root(buf)
        return _Reader(buf, model, signature, opset, path.stem).run()
    except ModelError:
        raise
    except (IndexError, KeyError, ValueError, TypeError, OverflowError, UnicodeError) as exc:
        raise ModelFormatError(
            f"{path}: damaged TFLite model ({type(exc).__name__}: {exc})"
        ) from exc


class _Reader:
    def __init__(
        self, buf: bytes, model: fb.Table, signature: str | None, opset: int, name: str
    ) -> None:
        self.buf = buf
        self.model = model
        self.b = GraphBuilder(opset=opset, name=name)
        self.signature = signature
        self.buffers = model.tables(4)
        codes = []
        for oc in model.tables(1):
            code = max(oc.scalar(3, "i", 0), oc.scalar(0, "b", 0))
            codes.append(
                (
                    OPCODE_NAMES.get(code, f"BUILTIN_{code}")
                    if code != 32
                    else "CUSTOM:" + oc.string(1),
                    oc.scalar(2, "i", 1),
                )
            )
        self.codes = codes

    # -- structure ---------------------------------------------------------------------

    def _buffer(self, index: int) -> bytes | None:
        if index <= 0 or index >= len(self.buffers):
            return None
        buffer = self.buffers[index]
        data = buffer.vector(0, "u1")
        if data.size:
            return data.tobytes()
        offset, size = buffer.scalar(1, "Q", 0), buffer.scalar(2, "Q", 0)
        if offset > 1 and size:
            if offset + size > len(self.buf):
                raise ModelFormatError("TFLite buffer points outside the file (truncated?)")
            return self.buf[offset : offset + size]
        return None

    def _tensor(self, index: int, t: fb.Table) -> Tensor:
        type_code = t.scalar(1, "b", 0)
        if type_code not in _DTYPES:
            raise ModelFormatError(
                f"tensor {t.string(3)!r} has unsupported TFLite type {type_code}"
            )
        dtype = np.dtype(_DTYPES[type_code])
        shape = [int(d) for d in t.vector(0, "<i4")]
        sig = t.vector(7, "<i4")
        if sig.size == len(shape):
            shape = [None if int(s) < 0 else d for s, d in zip(sig, shape, strict=True)]
        tensor = Tensor(index, t.string(3) or f"t{index}", dtype, tuple(shape))
        raw = self._buffer(t.scalar(2, "I", 0))
        if raw is not None:
            count = int(np.prod([d or 0 for d in shape])) if shape else 1
            if t.has(6):  # sparse constant: densified in numpy
                from .tflite_sparse import densify

                tensor.data = densify(
                    t.table(6), np.frombuffer(raw, dtype), tuple(int(d) for d in shape)
                )
            else:
                if count * dtype.itemsize != len(raw):
                    raise ModelFormatError(
                        f"tensor {tensor.name!r}: {len(raw)} bytes of data for shape {shape} {dtype}"
                    )
                tensor.data = np.frombuffer(raw, dtype).reshape(shape).copy()
        q = t.table(4)
        if q is not None:
            scale = q.vector(2, "<f4")
            if scale.size:
                tensor.scale = scale.astype(np.float32)
                tensor.zero_point = q.vector(3, "<i8")
                tensor.quantized_dim = q.scalar(6, "i", 0)
        return tensor

    def _choose_subgraph(
        self,
    ) -> tuple[int, list[tuple[str, int]] | None, list[tuple[str, int]] | None]:
        sigs = self.model.tables(7)
        if not sigs:
            if self.signature is not None:
                raise ModelFormatError(
                    f"signature {self.signature!r} requested but the model has no signatures"
                )
            return 0, None, None
        keys = [s.string(2) for s in sigs]
        if self.signature is None:
            chosen = next((s for s in sigs if s.scalar(4, "I", 0) == 0), sigs[0])
        elif self.signature in keys:
            chosen = sigs[keys.index(self.signature)]
        else:
            raise ModelFormatError(f"no signature {self.signature!r}; the model has {keys}")

        def maps(i):
            return [(m.string(0), m.scalar(1, "I", 0)) for m in chosen.tables(i)]

        return chosen.scalar(4, "I", 0), maps(0), maps(1)

    # -- conversion -------------------------------------------------------------------

    def subgraph(self, index: int) -> tuple[fb.Table, list[Tensor], list[Operator]]:
        """Parse subgraph `index`: its table, tensors and operators (fresh each call)."""
        subgraphs = self.model.tables(2)
        if index >= len(subgraphs):
            raise ModelFormatError(f"reference to subgraph {index}, the model has {len(subgraphs)}")
        sg = subgraphs[index]
        tensors = [self._tensor(i, t) for i, t in enumerate(sg.tables(0))]
        ops = []
        for op in sg.tables(3):
            code = op.scalar(0, "I", 0)
            if code >= len(self.codes):
                raise ModelFormatError(
                    f"operator refers to opcode {code}, the model has {len(self.codes)}"
                )
            name, version = self.codes[code]
            ins = [int(i) for i in op.vector(1, "<i4")]
            outs = [int(i) for i in op.vector(2, "<i4")]
            if any(i >= len(tensors) for i in (*ins, *outs)):
                raise ModelFormatError(
                    f"{name} operator refers to a tensor beyond the {len(tensors)} in the subgraph"
                )
            ops.append(Operator(name, ins, outs, op.table(4), version))
        return sg, tensors, ops

    def lower_subgraph(self, b: GraphBuilder, index: int, inputs: list[Value]) -> list[Value]:
        """Lower subgraph `index` into `b` with its inputs bound to `inputs`; its outputs (source layout)."""
        sg, tensors, ops = self.subgraph(index)
        in_idx = [int(i) for i in sg.vector(1, "<i4")]
        if len(in_idx) != len(inputs):
            raise ModelFormatError(
                f"subgraph {index} takes {len(in_idx)} inputs, {len(inputs)} given"
            )
        ctx = LowerContext(b, tensors, self)
        for i, v in zip(in_idx, inputs, strict=True):
            ctx.env[i] = v
        for op in ops:
            OPS[op.op](ctx, op)
        return [ctx.raw(int(i)) for i in sg.vector(2, "<i4")]

    def run(self) -> Graph:
        if not self.model.tables(2):
            raise ModelFormatError("TFLite model has no subgraphs")
        index, sig_in, sig_out = self._choose_subgraph()
        sg, tensors, ops = self.subgraph(index)
        for k in range(len(self.model.tables(2))):
            self._check_supported(*reversed(self.subgraph(k)[1:]) if k != index else (ops, tensors))
        ctx = LowerContext(self.b, tensors, self)
        in_idx = [i for _, i in sig_in] if sig_in else [int(i) for i in sg.vector(1, "<i4")]
        out_idx = [i for _, i in sig_out] if sig_out else [int(i) for i in sg.vector(2, "<i4")]
        for i in in_idx:
            t = tensors[i]
            ctx.env[i] = Value(self.b.input(t.name, t.dtype, t.shape), t.shape, t.dtype)
        for op in ops:
            OPS[op.op](ctx, op)
        outputs = []
        for i in out_idx:
            t = tensors[i]
            value = ctx.raw(i)
            outputs.append((value.last(self.b), t.name, t.dtype, t.shape))
        set_outputs(self.b, outputs)
        graph = self.b.build()
        graph.metadata["source_format"] = "tflite"
        return graph

    def _check_supported(self, ops: list[Operator], tensors: list[Tensor]) -> None:
        missing: dict[str, list[str]] = {}
        for op in ops:
            if op.op not in OPS:
                where = tensors[op.outputs[0]].name if op.outputs else "?"
                missing.setdefault(op.op, []).append(where)
        if missing:
            raise UnsupportedOperatorError(
                [UnsupportedOp(op, "tflite", 0, tuple(where)) for op, where in missing.items()],
                source="TFLite model",
            )


class LowerContext:
    """State of one subgraph's lowering: the builder, the tensors, and their graph values."""

    def __init__(
        self, b: GraphBuilder, tensors: list[Tensor], reader: _Reader | None = None
    ) -> None:
        self.b = b
        self.tensors = tensors
        self.reader = reader
        self.env: dict[int, Value] = {}
        self._float: dict[int, Value] = {}

    def const(self, i: int) -> np.ndarray | None:
        """The raw constant data of tensor `i` (None if it is computed)."""
        return None if i < 0 else self.tensors[i].data

    def weights(self, i: int) -> np.ndarray:
        """Constant weights of tensor `i` as float32 (dequantized); an error if computed."""
        t = self.tensors[i]
        if t.data is None:
            raise ModelFormatError(
                f"weights {t.name!r} are computed at run time; only constant weights are supported"
            )
        return t.dequantized()

    def raw(self, i: int) -> Value:
        """Tensor `i` as stored by TFLite (quantized tensors keep their integer type)."""
        if i not in self.env:
            t = self.tensors[i]
            if t.data is None:
                raise ModelFormatError(f"tensor {t.name!r} is read before any operator produces it")
            self.env[i] = Value(self.b.initializer(_safe(t.name), t.data), t.shape, t.dtype)
        return self.env[i]

    def fv(self, i: int) -> Value:
        """Tensor `i` as float32 when quantized or float16 (else as stored)."""
        t = self.tensors[i]
        if not t.quantized and t.dtype != np.float16:
            return self.raw(i)
        if i not in self._float:
            if t.data is not None:
                value = Value(
                    self.b.initializer(_safe(t.name) + "_dequant", t.dequantized()),
                    t.shape,
                    np.dtype(np.float32),
                )
            elif not t.quantized:
                raw = self.raw(i)
                value = raw.like(
                    self.b.node("Cast", [raw.stored()], {"to": 1}), dtype=np.dtype(np.float32)
                )
            else:
                raw = self.raw(i)
                scale, zp = self.qparams(t)
                value = raw.like(
                    self.b.node("DequantizeLinear", [raw.stored(), scale, zp]),
                    dtype=np.dtype(np.float32),
                )
            self._float[i] = value
        return self._float[i]

    def qparams(self, t: Tensor) -> tuple[str, str]:
        if t.scale.size != 1:
            raise ModelFormatError(
                f"tensor {t.name!r}: per-channel quantized activations are not supported"
            )
        zp = t.zero_point[0] if t.zero_point is not None and t.zero_point.size else 0
        return (
            self.b.initializer("scale", np.float32(t.scale[0])),
            self.b.initializer("zero_point", np.asarray(zp, t.dtype)),
        )

    def set(self, i: int, value: Value) -> None:
        """Store the float32 result of an op as tensor `i`, quantizing it if the tensor is quantized."""
        t = self.tensors[i]
        if t.quantized and value.dtype != t.dtype:
            scale, zp = self.qparams(t)
            q = value.like(
                self.b.node("QuantizeLinear", [value.stored(), scale, zp]), dtype=t.dtype
            )
            self.env[i] = q
            self._float[i] = value
            return
        if t.dtype == np.float16 and value.dtype == np.float32:
            self._float[i] = value
            value = value.like(self.b.node("Cast", [value.stored()], {"to": 10}), dtype=t.dtype)
        self.env[i] = value

    def shape(self, i: int) -> tuple[int | None, ...]:
        return self.tensors[i].shape


def _safe(name: str) -> str:
    return name.replace(":", "_").replace(";", "_") or "t"
