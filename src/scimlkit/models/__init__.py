"""scimlkit.models: load models made with other frameworks and run them on JAX."""
