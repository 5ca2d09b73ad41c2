"""Weights of Keras layers from HDF5: the Keras 3 layout and the legacy (Keras 2) layout.

Both present one interface: `for_layer(name)` narrows to a layer (or nested model), and
`arrays()` lists that layer's weights in Keras's `get_weights()` order.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from ..errors import ModelFormatError

# Keras 3 stores sub-layers as named groups; these are their get_weights() order.
_CHILD_ORDER = (
    "cell",
    "forward_layer",
    "backward_layer",
    "query_dense",
    "key_dense",
    "value_dense",
    "output_dense",
    "layer",
)


class WeightSource(Protocol):
    def for_layer(self, name: str) -> WeightSource: ...

    def arrays(self) -> list[np.ndarray]: ...

    def close(self) -> None: ...


def _read(dataset: Any) -> np.ndarray:
    try:
        return np.asarray(dataset[()])
    except (OSError, TypeError) as exc:
        raise ModelFormatError(f"unreadable weight {dataset.name!r} ({exc})") from None


class _Keras3:
    """A group of the Keras 3 weights file: `layers/<key>/vars/<i>` and named sub-layers."""

    def __init__(self, group: Any, owner: Any = None) -> None:
        self.group = group
        self.owner = owner

    def for_layer(self, name: str) -> _Keras3:
        if self.group is None or "layers" not in self.group:
            return _Keras3(None)
        layers = self.group["layers"]
        for key in layers:
            vars_ = layers[key].get("vars")
            if vars_ is not None and vars_.attrs.get("name") == name:
                return _Keras3(layers[key])
        return _Keras3(layers.get(name, None))

    def arrays(self) -> list[np.ndarray]:
        if self.group is None:
            return []
        out = []
        if "vars" in self.group:
            vars_ = self.group["vars"]
            out.extend(_read(vars_[k]) for k in sorted(vars_, key=int))
        children = [k for k in _CHILD_ORDER if k in self.group]
        children += sorted(
            k for k in self.group if k not in ("vars", "layers") and k not in children
        )
        for key in children:
            out.extend(_Keras3(self.group[key]).arrays())
        return out

    def close(self) -> None:
        if self.owner is not None:
            self.owner.close()


class _LegacyGroup:
    """The legacy layout: one group per layer with a `weight_names` attribute."""

    def __init__(self, group: Any, owner: Any = None) -> None:
        self.group = group
        self.owner = owner

    def for_layer(self, name: str) -> _LegacyList:
        if name not in self.group:
            return _LegacyList([])
        g = self.group[name]
        names = [
            n.decode() if isinstance(n, bytes) else str(n) for n in g.attrs.get("weight_names", [])
        ]
        try:
            return _LegacyList([(n, _read(g[n])) for n in names])
        except KeyError as exc:
            raise ModelFormatError(
                f"weights of layer {name!r} are missing from the file ({exc})"
            ) from None

    def arrays(self) -> list[np.ndarray]:
        return []

    def close(self) -> None:
        if self.owner is not None:
            self.owner.close()


class _LegacyList:
    """The weights of one legacy layer (or nested model), as (name, array) pairs in order."""

    def __init__(self, items: list[tuple[str, np.ndarray]]) -> None:
        self.items = items

    def for_layer(self, name: str) -> _LegacyList:
        return _LegacyList([(n, a) for n, a in self.items if name in n.split("/")[:-1]])

    def arrays(self) -> list[np.ndarray]:
        return [a for _, a in self.items]

    def close(self) -> None:
        pass


def keras3_weights(f: Any) -> WeightSource:
    return _Keras3(f, owner=f)


def legacy_weights(group: Any, owner: Any) -> WeightSource:
    return _LegacyGroup(group, owner=owner)
