"""JAX kernels of ONNX operators, grouped by family; importing this package registers them all."""

from importlib import import_module

from ._registry import OpContext, lookup, register_op, registered

_FAMILIES = (
    "math", "reduce", "tensor", "nn", "conv", "pool", "norm", "activation", "image",
    "rnn", "control", "sequence", "quant", "ml", "signal", "random", "text", "training",
)

for _family in _FAMILIES:
    try:
        import_module(f"{__name__}.{_family}")
    except ModuleNotFoundError as _exc:  # a family module not written yet
        if _exc.name != f"{__name__}.{_family}":
            raise

__all__ = ["OpContext", "lookup", "register_op", "registered"]
