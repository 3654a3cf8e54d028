#include <stddef.h>
#include <stdint.h>

#include "tvm/runtime/c_backend_api.h"
#include "tvmp_model.h"
#include "tvmp_runtime.h"

/* Arena: in0 @0 (40 B), in1 @48 (24 B), out0 @80, out1 @112, workspace @160. */
#define WORKSPACE_OFFSET 160u
#define WORKSPACE_BYTES 96u
__attribute__((aligned(16))) uint8_t tvmp_arena[WORKSPACE_OFFSET + WORKSPACE_BYTES];
static const uint32_t input_offsets[TVMP_NUM_INPUTS] = {0, 48};
static const uint32_t output_offsets[TVMP_NUM_OUTPUTS] = {80, 112};

void* tvmp_model_input(int32_t i) { return tvmp_arena + input_offsets[i]; }
void* tvmp_model_output(int32_t i) { return tvmp_arena + output_offsets[i]; }

static int32_t stage(const uint8_t* src, uint8_t* dst, uint32_t n) {
  /* 40 B rounds to 48, 24 B to 32: 80 B of the 96 B region. */
  uint8_t* a = (uint8_t*)TVMBackendAllocWorkspace(1, 0, n, 0, 8);
  if (a == NULL) return -1;
  uint8_t* b = (uint8_t*)TVMBackendAllocWorkspace(1, 0, 24, 0, 8);
  if (b == NULL) return -1;
  if (((uintptr_t)a & 15u) != 0 || ((uintptr_t)b & 15u) != 0) {
    tvmp_set_error("copy: workspace pointer not 16-byte aligned");
    return -2;
  }
  for (uint32_t i = 0; i < n; ++i) a[i] = (uint8_t)(src[i] + 1u);
  for (uint32_t i = 0; i < n; ++i) dst[i] = a[i];
  if (TVMBackendFreeWorkspace(1, 0, b) != 0) return -1;
  if (TVMBackendFreeWorkspace(1, 0, a) != 0) return -1;
  return 0;
}

int32_t tvmp_model_run(const void* const* inputs, void* const* outputs) {
  tvmp_workspace_set(tvmp_arena + WORKSPACE_OFFSET, WORKSPACE_BYTES);
  int32_t rc = stage((const uint8_t*)inputs[1], (uint8_t*)outputs[0], tvmp_input_bytes[1]);
  if (rc != 0) return rc;
  tvmp_workspace_set(tvmp_arena + WORKSPACE_OFFSET, WORKSPACE_BYTES);
  return stage((const uint8_t*)inputs[0], (uint8_t*)outputs[1], tvmp_input_bytes[0]);
}
