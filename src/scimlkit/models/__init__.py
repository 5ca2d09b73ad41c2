"""scimlkit.models: load models made with other frameworks and run them on JAX.

```python
import scimlkit.models as sm
model = sm.load("resnet50.onnx")      # ONNX, Keras, TensorFlow, TFLite, Caffe, MXNet
y = model(x)                          # NumPy or JAX in, JAX out; jit/grad/vmap work
model.save_onnx("copy.onnx")
```
"""

from .errors import (
    DynamicShapeError as DynamicShapeError,
)
from .errors import (
    ModelError as ModelError,
)
from .errors import (
    ModelFormatError as ModelFormatError,
)
from .errors import (
    ModelInputError as ModelInputError,
)
from .errors import (
    OpExecutionError as OpExecutionError,
)
from .errors import (
    UnsupportedOp as UnsupportedOp,
)
from .errors import (
    UnsupportedOperatorError as UnsupportedOperatorError,
)
from .formats import register_format as register_format
from .graph import Graph as Graph
from .graph import GraphBuilder as GraphBuilder
from .graph import Node as Node
from .graph import ValueInfo as ValueInfo
from .load import load as load
from .load import load_graph as load_graph
from .model import Model as Model

__all__ = [
    "DynamicShapeError",
    "Graph",
    "GraphBuilder",
    "Model",
    "ModelError",
    "ModelFormatError",
    "ModelInputError",
    "Node",
    "OpExecutionError",
    "UnsupportedOp",
    "UnsupportedOperatorError",
    "ValueInfo",
    "load",
    "load_graph",
    "register_format",
]
