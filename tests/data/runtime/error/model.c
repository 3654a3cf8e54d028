#include <stddef.h>
#include <stdint.h>

#include "tvm/ffi/c_api.h"
#include "tvm/runtime/c_backend_api.h"
#include "tvmp_model.h"
#include "tvmp_runtime.h"

#define WORKSPACE_BYTES 64u
__attribute__((aligned(16))) uint8_t tvmp_arena[32 + WORKSPACE_BYTES];

void* tvmp_model_input(int32_t i) { return tvmp_arena + 16 * i; }
void* tvmp_model_output(int32_t i) { return tvmp_arena + 16 + 16 * i; }

int32_t tvmp_model_run(const void* const* inputs, void* const* outputs) {
  uint32_t kind = *(const uint32_t*)inputs[0];
  *(uint32_t*)outputs[0] = kind;
  tvmp_workspace_set(tvmp_arena + 32, WORKSPACE_BYTES);
  switch (kind) {
    case 0: {
      void* first = TVMBackendAllocWorkspace(1, 0, 20, 2, 32); /* 32 B of 64 */
      if (first == NULL) return -2;
      return TVMBackendAllocWorkspace(1, 0, 4000, 2, 32) == NULL ? -1 : 0;
    }
    case 1: {
      const char* parts[4] = {"Mismatched ", "A", ".ndim on argument #", "0"};
      TVMFFIErrorSetRaisedFromCStrParts("ValueError", parts, 4);
      return -1;
    }
    case 2: {
      void* a = TVMBackendAllocWorkspace(1, 0, 16, 2, 32);
      void* b = TVMBackendAllocWorkspace(1, 0, 16, 2, 32);
      if (a == NULL || b == NULL) return -2;
      return TVMBackendFreeWorkspace(1, 0, a);
    }
    case 3:
      return 5;
    default:
      return 0;
  }
}
