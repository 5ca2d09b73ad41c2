"""scimlkit.fit: parameter estimation for nonlinear dynamical (ODE) models on JAX."""
