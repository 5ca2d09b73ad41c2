"""Errors raised by `scimlkit.fit`.

Every deliberate error derives from `FitError` (itself a `scimlkit.ScimlkitError`); the
messages say what was wrong and what to do. Numerical failures during estimation (an ODE
solve that diverges, an optimizer that stops early) are *not* exceptions: they are recorded
in each start's outcome (`FitResult.starts`), as diffrax records `RESULTS`.
"""

from __future__ import annotations

from ..errors import ScimlkitError


class FitError(ScimlkitError):
    """Base class of every error `scimlkit.fit` raises on purpose."""


class ProblemDefinitionError(FitError, ValueError):
    """The model, parameters, experiments or observables do not fit together."""


class MethodError(FitError, ValueError):
    """An unknown estimation method or setting, or a method that cannot handle this problem."""


class EstimationFailedError(FitError):
    """No start of an estimation produced a finite objective."""


class EngineError(FitError):
    """The parallel engine (processes, Ray, Dask) could not run the work."""
