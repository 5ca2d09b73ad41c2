"""Inferring properties of ODE solutions from parameters.

- **Ensembles**: `simulate_ensemble` over designs (`sample_parameters`: Sobol, Latin
  hypercube, uniform, grid) or posterior samples (`from_samples`), batched with `jax.vmap`
  in memory-bounded chunks, on local processes or a Ray/Dask cluster via `engine=`.
- **Properties**: `oscillates`, `period`, `amplitude`, `steady_state`, `final_value`,
  `peak_time`, `peak_value`, `crosses`, `crossing_time`, `blows_up`, or your own `Property`.
- **Outcome classifiers** (`classify_outcomes`: SVM or Equinox MLP) and regression
  surrogates (`fit_surrogate`).
- **Global sensitivity**: `sobol_indices`, `morris`, and `sensitivity` for model properties.
- **Prediction uncertainty**: `prediction_bands` from posterior or profile samples.
"""

from .bands import PredictionBands, prediction_bands
from .classify import OutcomeClassifier, Surrogate, classify_outcomes, fit_surrogate
from .design import from_samples, natural_to_unit, sample_parameters, unit_to_natural
from .ensemble import Ensemble, simulate_ensemble
from .properties import (
    Property,
    amplitude,
    blows_up,
    crosses,
    crossing_time,
    evaluate_property,
    final_value,
    oscillates,
    peak_time,
    peak_value,
    period,
    steady_state,
)
from .sensitivity import MorrisResult, SobolIndices, morris, sensitivity, sobol_indices

__all__ = [
    "Ensemble", "MorrisResult", "OutcomeClassifier", "PredictionBands", "Property", "SobolIndices",
    "Surrogate", "amplitude", "blows_up", "classify_outcomes", "crosses", "crossing_time",
    "evaluate_property", "final_value", "fit_surrogate", "from_samples", "morris", "natural_to_unit",
    "oscillates", "peak_time", "peak_value", "period", "prediction_bands", "sample_parameters",
    "sensitivity", "simulate_ensemble", "sobol_indices", "steady_state", "unit_to_natural",
]
