"""Run every ONNX node conformance case through scimlkit AND ONNX Runtime; print counts per op.

    .venv/bin/python scripts/conformance_report.py                 # all cases, summary per op
    .venv/bin/python scripts/conformance_report.py -k conv -v      # only cases matching 'conv', with errors
    .venv/bin/python scripts/conformance_report.py --failures      # list our failing cases (for conformance_xfail.py)
    .venv/bin/python scripts/conformance_report.py --json report.json --no-ort

Both runtimes are judged by the same rule: `onnx.backend.test.runner.Runner.assert_similar_outputs`
with each case's rtol/atol (what `tests/models/test_conformance.py` does). jax_enable_x64 is on.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
import warnings
from collections import defaultdict

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)


def _normalize(value):
    import onnx

    return onnx.numpy_helper.to_array(value) if isinstance(value, onnx.TensorProto) else value


def op_of(case, op_names: list[str]) -> str:
    """The op a case tests: the single node's op type, else the longest op name prefixing the case name."""
    nodes = case.model.graph.node
    if len(nodes) == 1:
        return nodes[0].op_type
    key = case.name.removeprefix("test_").replace("_", "").lower()
    best = ""
    for op in op_names:
        if key.startswith(op.lower()) and len(op) > len(best):
            best = op
    return best or case.name


def run_ours(case) -> str | None:
    from onnx.backend.test.runner import Runner

    from scimlkit.models.backend import ScimlkitBackend

    try:
        rep = ScimlkitBackend.prepare(case.model, "CPU")
        for inputs, expected in case.data_sets:
            outputs = rep.run([_normalize(x) for x in inputs])
            Runner.assert_similar_outputs([_normalize(y) for y in expected], list(outputs), case.rtol, case.atol)
    except Exception as exc:
        return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"[:300]
    return None


def run_ort(case) -> str | None:
    import onnxruntime as ort
    from onnx.backend.test.runner import Runner

    try:
        opts = ort.SessionOptions()
        opts.log_severity_level = 4
        sess = ort.InferenceSession(case.model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        names = [i.name for i in sess.get_inputs()]
        for inputs, expected in case.data_sets:
            feeds = dict(zip(names, [_normalize(x) for x in inputs]))
            outputs = sess.run(None, feeds)
            Runner.assert_similar_outputs([_normalize(y) for y in expected], list(outputs), case.rtol, case.atol)
    except Exception as exc:
        return f"{type(exc).__name__}: {str(exc).strip()[:200]}"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-k", default=None, help="regular expression: only cases whose name matches")
    parser.add_argument("-v", "--verbose", action="store_true", help="print each failure's error")
    parser.add_argument("--no-ort", action="store_true", help="skip ONNX Runtime")
    parser.add_argument("--failures", action="store_true", help="print our failing cases as a Python dict")
    parser.add_argument("--json", default=None, help="write per-case results to this file")
    args = parser.parse_args(argv)

    import onnx
    from onnx.backend.test.loader import load_model_tests

    warnings.simplefilter("ignore")
    with np.errstate(all="ignore"):
        cases = load_model_tests(kind="node")
    if args.k:
        cases = [c for c in cases if re.search(args.k, c.name)]
    op_names = sorted({s.name for s in onnx.defs.get_all_schemas_with_history()})

    per_op: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])  # cases, ours, ort
    results = {}
    start = time.perf_counter()
    for i, case in enumerate(cases):
        op = op_of(case, op_names)
        ours = run_ours(case)
        ort_err = None if args.no_ort else run_ort(case)
        per_op[op][0] += 1
        per_op[op][1] += ours is None
        per_op[op][2] += (ort_err is None) and not args.no_ort
        results[case.name] = {"op": op, "ours": ours, "ort": ort_err}
        if args.verbose and ours is not None:
            print(f"FAIL {case.name}: {ours}", flush=True)
        if (i + 1) % 200 == 0:
            print(f"... {i + 1}/{len(cases)} cases ({time.perf_counter() - start:.0f} s)", file=sys.stderr, flush=True)

    width = max((len(op) for op in per_op), default=10)
    print(f"{'op':<{width}}  cases  scimlkit  onnxruntime")
    for op, (n, ours, ort_ok) in sorted(per_op.items()):
        ort_col = "-" if args.no_ort else str(ort_ok)
        flag = "" if ours == n else "   <"
        print(f"{op:<{width}}  {n:5d}  {ours:8d}  {ort_col:>11}{flag}")
    total = len(cases)
    ours_total = sum(v[1] for v in per_op.values())
    ort_total = sum(v[2] for v in per_op.values())
    print(f"\nTOTAL {total} cases: scimlkit passes {ours_total}", end="")
    print("" if args.no_ort else f", onnxruntime passes {ort_total}", end="")
    print(f"  ({time.perf_counter() - start:.0f} s)")
    if args.failures:
        print("\nXFAIL = {")
        for name, r in sorted(results.items()):
            if r["ours"] is not None:
                print(f"    {name!r}: {r['ours'][:120]!r},")
        print("}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
