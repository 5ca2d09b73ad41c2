"""Properties of ODE solutions: named, tested functions of a trajectory, and your own.

A property maps one solution to one value. Built-ins (each returns a `Property`):

| property | value |
|---|---|
| `oscillates(state)` | True if a sustained (not decaying) oscillation is present at the end |
| `period(state)`, `amplitude(state)` | of that oscillation (NaN when there is none) |
| `steady_state(state)` | True if the state has settled by the end |
| `final_value(state)` | the state's value at the last time point |
| `peak_time(state)`, `peak_value(state)` | time and value of the maximum |
| `crosses(state, threshold)` | True if the state crosses the threshold (either way, or `direction=`) |
| `crossing_time(state, threshold)` | first crossing time (NaN if never) |
| `blows_up(limit)` | True if the solve failed or any state exceeded `limit` in magnitude |

Your own: any `fn(t, y)` with `t` `(T,)` and `y` `(T, S)` returning a number, wrapped
with `Property(fn, name=..., kind="categorical"|"continuous")` (or passed directly).
Properties of failed integrations are NaN (continuous) or the value `failed_value`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ..errors import ProblemDefinitionError

if TYPE_CHECKING:
    from .ensemble import Ensemble

Kind = Literal["categorical", "continuous"]


@dataclass(frozen=True)
class Property:
    """A named function of one solution.

    **Arguments:**

    - `fn`: `fn(t, y) -> value` with `t` `(T,)` and `y` `(T, S)` (states in model order);
      or, with `batched=True`, `fn(t, Y, state_names) -> (n,)` over a whole ensemble `Y` `(n, T, S)`.
    - `name`: a label (plots, tables).
    - `kind`: `"categorical"` (classified) or `"continuous"` (regressed, sensitivity).
    - `failed_value`: the value for failed integrations (default NaN, or False if categorical).

    **Example:**

    ```python
    >>> import numpy as np
    >>> from scimlkit.fit.explore import Property
    >>> final_sum = Property(lambda t, y: float(y[-1].sum()), name="final sum")
    >>> final_sum(np.array([0.0, 1.0]), np.array([[1.0, 2.0], [3.0, 4.0]]))
    7.0

    ```
    """

    fn: Callable[..., Any]
    name: str = "property"
    kind: Kind = "continuous"
    batched: bool = False
    failed_value: Any = None

    def __call__(self, t: np.ndarray, y: np.ndarray, state_names: tuple[str, ...] | None = None) -> Any:
        """The property of one solution `y` `(T, S)` at times `t` (`state_names` lets
        built-ins find states by name; without it, give them a state index)."""
        if not self.batched:
            return self.fn(t, y)
        y = np.asarray(y, dtype=float)
        y = y[:, None] if y.ndim == 1 else y
        names = tuple(state_names) if state_names is not None else tuple(str(i) for i in range(y.shape[-1]))
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.asarray(self.fn(np.asarray(t, dtype=float), y[None], names))[0]

    @property
    def fill(self) -> Any:
        if self.failed_value is not None:
            return self.failed_value
        return False if self.kind == "categorical" else np.nan


def evaluate_property(prop: Property | Callable[..., Any], ensemble: Ensemble) -> np.ndarray:
    """Values of `prop` for every member of `ensemble` (`(n,)`).

    **Example:**

    ```python
    >>> import numpy as np
    >>> from scimlkit.fit.explore import Ensemble, evaluate_property, final_value
    >>> t = np.array([0.0, 1.0])
    >>> ens = Ensemble(t, np.array([[[1.0], [2.0]], [[1.0], [np.nan]]]), np.array([True, False]), {}, ("x",))
    >>> evaluate_property(final_value("x"), ens).tolist()  # a failed run is NaN
    [2.0, nan]

    ```
    """
    if not isinstance(prop, Property):
        prop = Property(prop, name=getattr(prop, "__name__", "property"))
    if not prop.batched:
        return np.array(
            [prop.fn(ensemble.t, y) if ok else prop.fill for y, ok in zip(ensemble.states, ensemble.ok, strict=True)]
        )
    with np.errstate(invalid="ignore", divide="ignore"):
        values = np.array(prop.fn(ensemble.t, ensemble.states, ensemble.state_names))
    fill = prop.fill
    if isinstance(fill, float) and np.isnan(fill):
        values = values.astype(float)
    values[~ensemble.ok] = fill
    return values


def _column(state: str | int) -> Callable[[np.ndarray, tuple[str, ...]], np.ndarray]:
    def pick(y: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
        if isinstance(state, int):
            return y[..., state]
        if state not in names:
            raise ProblemDefinitionError(f"no state {state!r}; states are {names}")
        return y[..., names.index(state)]

    return pick


def _late(t: np.ndarray, fraction: float) -> np.ndarray:
    return t >= t[0] + (1.0 - fraction) * (t[-1] - t[0])


def _extrema_stats(t: np.ndarray, x: np.ndarray, window: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per trajectory (rows of `x`): amplitude in the last and the previous window, period, mask."""
    last = _late(t, window)
    prev = _late(t, 2 * window) & ~last
    amp_last = np.nanmax(x[:, last], axis=1) - np.nanmin(x[:, last], axis=1)
    amp_prev = np.nanmax(x[:, prev], axis=1) - np.nanmin(x[:, prev], axis=1) if prev.any() else amp_last
    periods = np.full(len(x), np.nan)
    tail = x[:, _late(t, 2 * window)]
    tt = t[_late(t, 2 * window)]
    for i, row in enumerate(tail):
        centre = row - np.nanmean(row)
        ups = np.flatnonzero((centre[:-1] < 0) & (centre[1:] >= 0))
        if len(ups) >= 2:
            # linear interpolation of the upward zero crossings
            frac = -centre[ups] / (centre[ups + 1] - centre[ups])
            crossings = tt[ups] + frac * (tt[ups + 1] - tt[ups])
            periods[i] = float(np.mean(np.diff(crossings)))
    return amp_last, amp_prev, periods, last


def oscillates(
    state: str | int, *, window: float = 0.25, min_amplitude: float = 1e-6, decay_tolerance: float = 0.02
) -> Property:
    """True if `state` oscillates at the end of the simulation without decaying.

    Compares the peak-to-peak amplitude over the last `window` fraction of the time span with
    the window before it: sustained means `amp_last >= (1 - decay_tolerance) * amp_prev`,
    `amp_last > min_amplitude` and at least two upward crossings of the mean (a period).
    Simulate long enough for transients to settle.

    **Example:**

    ```python
    >>> import numpy as np
    >>> from scimlkit.fit.explore import oscillates
    >>> t = np.linspace(0, 40, 801)
    >>> bool(oscillates(0)(t, np.sin(t))), bool(oscillates(0)(t, np.exp(-0.3 * t) * np.sin(t)))
    (True, False)

    ```
    """
    pick = _column(state)

    def batched(t: np.ndarray, Y: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
        amp_last, amp_prev, periods, _ = _extrema_stats(t, pick(Y, names), window)
        return (amp_last > min_amplitude) & (amp_last >= (1 - decay_tolerance) * amp_prev) & np.isfinite(periods)

    return Property(batched, name=f"oscillates({state})", kind="categorical", batched=True)


def period(state: str | int, *, window: float = 0.25, min_amplitude: float = 1e-6) -> Property:
    """Mean period of the oscillation of `state` over the last `2 * window` of the span: NaN if
    there is none (fewer than two upward crossings of the mean, or a peak-to-peak range of
    at most `min_amplitude` in the last `window`, as after a decay to rest).

    **Example:**

    ```python
    >>> import numpy as np
    >>> from scimlkit.fit.explore import period
    >>> t = np.linspace(0, 40, 4001)
    >>> round(float(period(0)(t, np.sin(2 * np.pi * t / 5))), 3)
    5.0

    ```
    """
    pick = _column(state)

    def batched(t, Y, names):
        amp_last, _, periods, _ = _extrema_stats(t, pick(Y, names), window)
        return np.where(amp_last > min_amplitude, periods, np.nan)

    return Property(batched, name=f"period({state})", batched=True)


def amplitude(state: str | int, *, window: float = 0.25, min_amplitude: float = 1e-6) -> Property:
    """Half the peak-to-peak range of `state` over the last `window` of the span; NaN where
    `period` finds no oscillation.

    **Example:**

    ```python
    >>> import numpy as np
    >>> from scimlkit.fit.explore import amplitude
    >>> t = np.linspace(0, 40, 4001)
    >>> round(float(amplitude("x")(t, 3 + 2 * np.sin(t)[:, None], ("x",))), 3)
    2.0

    ```
    """
    pick = _column(state)

    def batched(t, Y, names):
        amp_last, _, periods, _ = _extrema_stats(t, pick(Y, names), window)
        return np.where((amp_last > min_amplitude) & np.isfinite(periods), 0.5 * amp_last, np.nan)

    return Property(batched, name=f"amplitude({state})", batched=True)


def steady_state(state: str | int | None = None, *, window: float = 0.1, rtol: float = 1e-3, atol: float = 1e-8) -> Property:
    """True if the state (all states if None) varies by less than `atol + rtol * |value|`
    over the last `window` of the span.

    **Example:**

    ```python
    >>> import numpy as np
    >>> from scimlkit.fit.explore import steady_state
    >>> t = np.linspace(0, 40, 401)
    >>> bool(steady_state()(t, 5 - np.exp(-t))), bool(steady_state()(t, np.sin(t)))
    (True, False)

    ```
    """
    pick = _column(state) if state is not None else None

    def batched(t, Y, names):
        x = pick(Y, names)[..., None] if pick else Y
        late = x[:, _late(t, window)]
        spread = np.nanmax(late, axis=1) - np.nanmin(late, axis=1)
        return np.all(spread <= atol + rtol * np.abs(late[:, -1]), axis=-1)

    return Property(batched, name=f"steady_state({state if state is not None else 'all'})", kind="categorical", batched=True)


def final_value(state: str | int) -> Property:
    """The value of `state` at the last save time.

    **Example:**

    ```python
    >>> import numpy as np
    >>> from scimlkit.fit.explore import final_value
    >>> float(final_value(1)(np.array([0.0, 1.0]), np.array([[1.0, 2.0], [3.0, 4.0]])))
    4.0

    ```
    """
    pick = _column(state)
    return Property(lambda t, Y, names: pick(Y, names)[:, -1], name=f"final({state})", batched=True)


def peak_time(state: str | int) -> Property:
    """The save time at which `state` is largest (refine with finer `t`).

    **Example:**

    ```python
    >>> import numpy as np
    >>> from scimlkit.fit.explore import peak_time
    >>> t = np.linspace(0, 10, 1001)
    >>> float(peak_time(0)(t, t * np.exp(-t)))  # maximum of t e^-t at t = 1
    1.0

    ```
    """
    pick = _column(state)
    return Property(lambda t, Y, names: t[np.nanargmax(np.nan_to_num(pick(Y, names), nan=-np.inf), axis=1)], name=f"peak_time({state})", batched=True)


def peak_value(state: str | int) -> Property:
    """The largest value of `state` over the save times.

    **Example:**

    ```python
    >>> import numpy as np
    >>> from scimlkit.fit.explore import peak_value
    >>> t = np.linspace(0, 10, 1001)
    >>> round(float(peak_value(0)(t, t * np.exp(-t))), 6)  # 1/e
    0.367879

    ```
    """
    pick = _column(state)
    return Property(lambda t, Y, names: np.nanmax(pick(Y, names), axis=1), name=f"peak({state})", batched=True)


def _crossings(x: np.ndarray, threshold: float, direction: str) -> np.ndarray:
    above = x >= threshold
    if direction == "up":
        return ~above[:, :-1] & above[:, 1:]
    if direction == "down":
        return above[:, :-1] & ~above[:, 1:]
    if direction == "either":
        return above[:, :-1] != above[:, 1:]
    raise ProblemDefinitionError(f"direction must be 'up', 'down' or 'either', not {direction!r}")


def crosses(state: str | int, threshold: float, *, direction: str = "either") -> Property:
    """True if `state` crosses `threshold` between two save times (`direction`: up/down/either).

    **Example:**

    ```python
    >>> import numpy as np
    >>> from scimlkit.fit.explore import crosses
    >>> t = np.linspace(0, 5, 51)
    >>> bool(crosses(0, 0.5)(t, np.exp(-t))), bool(crosses(0, 0.5, direction="up")(t, np.exp(-t)))
    (True, False)

    ```
    """
    pick = _column(state)
    return Property(
        lambda t, Y, names: _crossings(pick(Y, names), threshold, direction).any(axis=1),
        name=f"crosses({state}, {threshold})", kind="categorical", batched=True,
    )


def crossing_time(state: str | int, threshold: float, *, direction: str = "either") -> Property:
    """First time `state` crosses `threshold`, linearly interpolated between save times (NaN if never).

    **Example:**

    ```python
    >>> import numpy as np
    >>> from scimlkit.fit.explore import crossing_time
    >>> t = np.linspace(0, 5, 51)
    >>> float(crossing_time(0, 1.5)(t, 2 * t))
    0.75

    ```
    """
    pick = _column(state)

    def batched(t, Y, names):
        x = pick(Y, names)
        hits = _crossings(x, threshold, direction)
        out = np.full(len(x), np.nan)
        rows = np.flatnonzero(hits.any(axis=1))
        first = hits[rows].argmax(axis=1)
        x0, x1 = x[rows, first], x[rows, first + 1]
        frac = np.where(x1 != x0, (threshold - x0) / (x1 - x0), 0.0)
        out[rows] = t[first] + frac * (t[first + 1] - t[first])
        return out

    return Property(batched, name=f"crossing_time({state}, {threshold})", batched=True)


def blows_up(limit: float = 1e6) -> Property:
    """True if the integration failed or any state's magnitude exceeded `limit`.

    **Example:**

    ```python
    >>> import numpy as np
    >>> from scimlkit.fit.explore import blows_up
    >>> t = np.linspace(0, 0.9, 10)
    >>> bool(blows_up(1e6)(t, 1 / (1 - t))), bool(blows_up(5.0)(t, 1 / (1 - t)))
    (False, True)

    ```
    """

    def batched(t, Y, names):
        with np.errstate(invalid="ignore"):
            return ~np.isfinite(Y).all(axis=(1, 2)) | (np.nan_to_num(np.abs(Y), nan=np.inf) > limit).any(axis=(1, 2))

    return Property(batched, name=f"blows_up({limit:g})", kind="categorical", batched=True, failed_value=True)
