"""Expected failures of the ONNX node conformance suite: case name -> reason.

Every entry says why the case fails, so lost coverage stays visible; the tests are marked
`xfail(strict=False)`, so a fixed case simply starts passing (then delete its entry).
Regenerate the list of failing cases with `scripts/conformance_report.py --failures`.
"""

XFAIL: dict[str, str] = {}
