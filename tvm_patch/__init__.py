"""tvm-patch: patch-based inference for microcontrollers on Apache TVM."""
