"""scimlkit.datasets: real data packages built on `scimlkit.data`."""
