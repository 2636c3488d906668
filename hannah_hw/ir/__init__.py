"""The integer-only QGraph, its checker, serialisation, reference interpreter and ONNX I/O."""
