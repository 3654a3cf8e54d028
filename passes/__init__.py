"""The compiler's passes: one `@tvm.transform.module_pass` class per file, each with its test
(tests/ir/test_<name>.py: Before/Expected modules).

Every TvmPatchError is registered with tvm_ffi here, so an error a pass raises reaches the
caller as itself (e.g. PatchTIRError), not as the RuntimeError TVM's pass runner turns
unknown Python exceptions into.
"""

import tvm_ffi

from tvm_patch_core import errors as _errors

for _name, _cls in vars(_errors).items():
    if isinstance(_cls, type) and issubclass(_cls, _errors.TvmPatchError):
        tvm_ffi.register_error(f"tvm_patch.{_name}", _cls)
