"""TensorFlow DataType codes and TensorProto / TensorShapeProto decoding (schema facts from tensorflow/core/framework)."""

from __future__ import annotations

import numpy as np

from ..errors import ModelFormatError
from ._protowire import Message

TF_DTYPES = {
    1: np.float32, 2: np.float64, 3: np.int32, 4: np.uint8, 5: np.int16, 6: np.int8, 9: np.int64, 10: np.bool_,
    17: np.uint16, 19: np.float16, 22: np.uint32, 23: np.uint64, 8: np.complex64, 18: np.complex128,
}  # fmt: skip
DT_STRING, DT_RESOURCE, DT_VARIANT = 7, 20, 21


def np_dtype(code: int) -> np.dtype:
    code = code - 100 if code > 100 else code  # reference types
    if code not in TF_DTYPES:
        raise ModelFormatError(f"unsupported TensorFlow dtype code {code}")
    return np.dtype(TF_DTYPES[code])


def shape_of(msg: Message | None) -> tuple[int, ...] | None:
    """TensorShapeProto -> tuple of sizes (-1 for unknown), None for unknown rank."""
    if msg is None:
        return ()
    if msg.bool(3):
        return None
    return tuple(d.int(1) for d in msg.msgs(2))


def tensor_value(msg: Message) -> np.ndarray:
    """Decode a TensorProto into a NumPy array."""
    code = msg.int(1)
    shape = shape_of(msg.msg(2)) or ()
    count = int(np.prod(shape)) if shape else 1
    if code == DT_STRING:
        vals = [bytes(v) for _, v in msg.fields.get(8, [])]
        return np.asarray(vals if len(vals) == count else vals * count, dtype=object).reshape(shape)
    dtype = np_dtype(code)
    content = msg.bytes(4)
    if content:
        arr = np.frombuffer(content, dtype)
        if arr.size != count:
            raise ModelFormatError(f"TensorProto has {arr.size} values for shape {shape}")
        return arr.reshape(shape).copy()
    if dtype == np.float32:
        vals = msg.packed(5, "<f4")
    elif dtype == np.float64:
        vals = msg.packed(6, "<f8")
    elif dtype == np.float16:
        vals = np.asarray(msg.ints(13, signed=False), np.uint16).view(np.float16)
    elif dtype == np.int64:
        vals = np.asarray(msg.ints(10), np.int64)
    elif dtype == np.bool_:
        vals = np.asarray(msg.ints(11), np.bool_)
    elif dtype in (np.uint32, np.uint64):
        vals = np.asarray(msg.ints(16 if dtype == np.uint32 else 17, signed=False), dtype)
    else:
        vals = np.asarray(msg.ints(7), np.int64).astype(dtype)
    vals = np.asarray(vals, dtype)
    if vals.size == count:
        return vals.reshape(shape)
    if vals.size == 0:
        return np.zeros(shape, dtype)
    if vals.size < count:  # TensorFlow stores a repeated last value once
        return np.concatenate([vals, np.full(count - vals.size, vals[-1], dtype)]).reshape(shape)
    raise ModelFormatError(f"TensorProto has {vals.size} values for shape {shape}")
