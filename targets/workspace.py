"""Read each kernel's workspace need back from TVM's generated code.

TVM lowers every allocation a schedule could not keep on the stack into a
`TVMBackendAllocWorkspace(device_type, device_id, nbytes, dtype_code, dtype_bits)` call.
A kernel's planned workspace region is the sum of its calls' sizes, each rounded up to
the runtime's 16-byte granule (an upper bound: allocations are freed LIFO, and one inside
a loop is freed before it is made again).
"""

from __future__ import annotations

import re

WORKSPACE_GRANULE = 16  # TVMP_WORKSPACE_ALIGN in runtime/tvmp_runtime.h

_FUNC = re.compile(r"^(?:TVM_DLL )?int32_t (__tvm_ffi_)?(\w+)\(void\* \w+, void\* args,", re.MULTILINE)
_ALLOC = re.compile(r"TVMBackendAllocWorkspace\(\s*\d+,\s*[^,]+,\s*\(uint64_t\)\s*(\d+)")


def kernel_workspaces(c_source: str) -> dict[str, int]:
    """Map kernel symbol (without the __tvm_ffi_ prefix) -> workspace bytes it may request."""
    found: dict[str, int] = {}
    starts = [(m.start(), m.group(2)) for m in _FUNC.finditer(c_source)]
    for k, (pos, name) in enumerate(starts):
        end = starts[k + 1][0] if k + 1 < len(starts) else len(c_source)
        body = c_source[pos:end]
        total = sum(-(-int(n) // WORKSPACE_GRANULE) * WORKSPACE_GRANULE for n in _ALLOC.findall(body))
        found[name] = found.get(name, 0) + total
    return found
