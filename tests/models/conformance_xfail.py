"""Expected failures of the ONNX node conformance suite: case name -> reason.

Every entry says why the case fails, so lost coverage stays visible; the tests are marked
`xfail(strict=False)`, so a fixed case simply starts passing (then delete its entry).
Regenerate the list of failing cases with `scripts/conformance_report.py --failures`.

Last full run (onnx 1.23.2, 1885 node cases): scimlkit passes 1862, ONNX Runtime 1.32 passes 1525
(ml_dtypes 0.7; see _SUB_BYTE_CAST for the 12 sub-byte casts that ml_dtypes' version decides).
"""

_SUB_BYTE_CAST = (
    'float -> int4/uint4/int2/uint2 out of range is undefined in the spec; onnx builds the expected values with the installed ml_dtypes (0.7 maps them to 0, earlier versions wrapped); scimlkit saturates, as ONNX Runtime and XLA do'
)

XFAIL: dict[str, str] = {
    'test_cast_FLOAT16_to_INT2': _SUB_BYTE_CAST,
    'test_cast_FLOAT16_to_INT4': _SUB_BYTE_CAST,
    'test_cast_FLOAT_to_INT2': _SUB_BYTE_CAST,
    'test_cast_FLOAT_to_INT4': _SUB_BYTE_CAST,
    'test_castlike_FLOAT16_to_INT2': _SUB_BYTE_CAST,
    'test_castlike_FLOAT16_to_INT2_expanded': _SUB_BYTE_CAST,
    'test_castlike_FLOAT16_to_INT4': _SUB_BYTE_CAST,
    'test_castlike_FLOAT16_to_INT4_expanded': _SUB_BYTE_CAST,
    'test_castlike_FLOAT_to_INT2': _SUB_BYTE_CAST,
    'test_castlike_FLOAT_to_INT2_expanded': _SUB_BYTE_CAST,
    'test_castlike_FLOAT_to_INT4': _SUB_BYTE_CAST,
    'test_castlike_FLOAT_to_INT4_expanded': _SUB_BYTE_CAST,
    'test_bernoulli': "random output: ONNX's expected values come from NumPy's generator, JAX's PRNG draws differently (ORT fails these too)",
    'test_bernoulli_double': "random output: ONNX's expected values come from NumPy's generator, JAX's PRNG draws differently (ORT fails these too)",
    'test_bernoulli_double_expanded': "random output: ONNX's expected values come from NumPy's generator, JAX's PRNG draws differently (ORT fails these too)",
    'test_bernoulli_expanded': "random output: ONNX's expected values come from NumPy's generator, JAX's PRNG draws differently (ORT fails these too)",
    'test_bernoulli_seed': "random output: ONNX's expected values come from NumPy's generator, JAX's PRNG draws differently (ORT fails these too)",
    'test_bernoulli_seed_expanded': "random output: ONNX's expected values come from NumPy's generator, JAX's PRNG draws differently (ORT fails these too)",
    'test_loop16_seq_none': "ONNX's Runner.assert_similar_outputs raises TypeError on a sequence whose first element is 0-d (len() of a 0-d array); our values match element by element (ORT fails it too)",
    'test_training_dropout': "random mask in training mode: JAX's PRNG cannot reproduce NumPy's draws (ORT fails these too)",
    'test_training_dropout_default': "random mask in training mode: JAX's PRNG cannot reproduce NumPy's draws (ORT fails these too)",
    'test_training_dropout_default_mask': "random mask in training mode: JAX's PRNG cannot reproduce NumPy's draws (ORT fails these too)",
    'test_training_dropout_mask': "random mask in training mode: JAX's PRNG cannot reproduce NumPy's draws (ORT fails these too)",
}
