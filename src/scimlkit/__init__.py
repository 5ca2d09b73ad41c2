"""scimlkit: scientific machine learning in Python.

Three capabilities, one package:

- `scimlkit.data` / `scimlkit.datasets`: declare, fetch, verify, unpack and cache datasets.
- `scimlkit.models`: load ONNX, Keras, TensorFlow, TFLite, Caffe and MXNet models onto JAX.
- `scimlkit.fit`: parameter estimation for ODE models.

Subpackages are imported on demand (`from scimlkit import fit`), so `import scimlkit`
stays cheap and never pulls in JAX.
"""

from importlib.metadata import PackageNotFoundError, version

from .errors import ScimlkitError as ScimlkitError

try:
    __version__ = version("scimlkit")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0"

__all__ = ["ScimlkitError", "__version__"]
