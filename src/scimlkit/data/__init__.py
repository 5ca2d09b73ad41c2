"""scimlkit.data: declare, fetch, verify, unpack and cache datasets (no JAX needed)."""
