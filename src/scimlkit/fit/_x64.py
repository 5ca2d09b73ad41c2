"""Imported first by `scimlkit.fit`: switch JAX to 64-bit floats (ODE fits need them)."""

import jax

jax.config.update("jax_enable_x64", True)
