"""`scimlkit models inspect | run | convert`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ModelInputError, UnsupportedOperatorError


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the `models` subcommands to `parser`."""
    sub = parser.add_subparsers(dest="models_command", metavar="{inspect,run,convert}")

    p = sub.add_parser("inspect", help="inputs, outputs, ops, parameter count and unsupported ops of a model")
    p.add_argument("file", help="model file (or SavedModel folder)")
    p.add_argument("--format", default=None, help="file format (default: from extension/content)")
    p.add_argument("--weights", default=None, help="separate weights file (Caffe, MXNet)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=_inspect)

    p = sub.add_parser("run", help="run a model on inputs from .npy/.npz files")
    p.add_argument("file")
    p.add_argument("--input", "-i", action="append", default=[], metavar="NAME=FILE.npy",
                   help="an input (repeatable); a single .npz supplies inputs by name")
    p.add_argument("--output", "-o", required=True, help="where to write the outputs (.npz)")
    p.add_argument("--format", default=None)
    p.add_argument("--weights", default=None)
    p.set_defaults(func=_run)

    p = sub.add_parser("convert", help="convert any loadable model to ONNX")
    p.add_argument("src")
    p.add_argument("dst", help="the .onnx file to write")
    p.add_argument("--format", default=None)
    p.add_argument("--weights", default=None)
    p.add_argument("--external-data", action="store_true", help="store weights in DST.data")
    p.set_defaults(func=_convert)


def _describe_info(v: Any) -> dict[str, Any]:
    return {
        "name": v.name,
        "dtype": None if v.dtype is None else v.dtype.name,
        "shape": None if v.shape is None else list(v.shape),
        "kind": v.kind,
    }


def _inspect(args: argparse.Namespace) -> int:
    from .formats import detect_format, get_format
    from .model import Model
    from .passes import optimize
    from .runtime import find_unsupported

    spec = get_format(args.format) if args.format else detect_format(args.file)
    kwargs = {"weights": args.weights} if args.weights else {}
    try:
        graph = optimize(spec.load_reader()(args.file, **kwargs))
        unsupported = find_unsupported(graph)
    except UnsupportedOperatorError as exc:  # readers report layers they cannot lower
        graph, unsupported = None, exc.unsupported
    info: dict[str, Any] = {"file": str(args.file), "format": spec.name}
    if graph is not None:
        model = Model(graph)
        info.update(
            inputs=[_describe_info(v) for v in model.inputs],
            outputs=[_describe_info(v) for v in model.outputs],
            opsets={k or "ai.onnx": v for k, v in graph.opsets.items()},
            ops={f"{d + '::' if d else ''}{op}": n for (d, op), n in graph.op_histogram().items()},
            parameters=model.num_params,
        )
    info["unsupported"] = [
        {"op": u.op_type, "domain": u.domain or "ai.onnx", "opset": u.opset, "nodes": list(u.nodes)} for u in unsupported
    ]
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        if graph is not None:
            Model(graph).summary()
        if unsupported:
            print(f"unsupported ops ({len(unsupported)}):")
            for u in unsupported:
                print(f"  - {u.describe()}")
        else:
            print("all ops supported")
    return 1 if unsupported else 0


def _read_inputs(specs: list[str], names: list[str]) -> dict[str, np.ndarray]:
    values: dict[str, np.ndarray] = {}
    for spec in specs:
        if "=" in spec:
            name, path = spec.split("=", 1)
            values[name] = np.load(path, allow_pickle=False)
        elif spec.endswith(".npz"):
            with np.load(spec, allow_pickle=False) as data:
                values.update({k: data[k] for k in data.files})
        elif len(names) == 1:
            values[names[0]] = np.load(spec, allow_pickle=False)
        else:
            raise ModelInputError(f"--input {spec}: write NAME=FILE.npy; the model's inputs are {names}")
    return values


def _run(args: argparse.Namespace) -> int:
    from .load import load

    model = load(args.file, args.format, args.weights)
    names = [v.name for v in model.inputs]
    try:
        values = _read_inputs(args.input, names)
    except (OSError, ValueError) as exc:
        raise ModelInputError(f"cannot read an input file: {exc}") from None
    outputs = model(**values)
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    arrays = {v.name: np.asarray(o) for v, o in zip(model.outputs, outputs)}
    out = Path(args.output)
    tmp = out.with_name(out.name + ".part")
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
    tmp.replace(out)
    for name, arr in arrays.items():
        print(f"{name}: {arr.dtype}{list(arr.shape)}")
    print(f"wrote {out}")
    return 0


def _convert(args: argparse.Namespace) -> int:
    from .export import save_onnx
    from .load import load_graph

    graph = load_graph(args.src, args.format, args.weights)
    path = save_onnx(graph, args.dst, external_data=True if args.external_data else None)
    print(f"wrote {path} ({len(graph.nodes)} nodes, opset {graph.opset_for('')})")
    return 0


if __name__ == "__main__":  # pragma: no cover
    parser = argparse.ArgumentParser(prog="scimlkit models")
    configure(parser)
    a = parser.parse_args()
    sys.exit(a.func(a))
