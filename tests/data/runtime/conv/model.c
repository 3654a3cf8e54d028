#include <stddef.h>
#include <stdint.h>

#include "tvm/ffi/c_api.h"
#include "tvmp_model.h"
#include "tvmp_runtime.h"

/* Arena: A @0 (768 B), W @768 (432 B), B @1200 (1024 B), workspace @2224. */
#define WORKSPACE_OFFSET 2224u
#define WORKSPACE_BYTES 1200u
__attribute__((aligned(16))) uint8_t tvmp_arena[WORKSPACE_OFFSET + WORKSPACE_BYTES];

void* tvmp_model_input(int32_t i) { return tvmp_arena + (i == 0 ? 0u : 768u); }
void* tvmp_model_output(int32_t i) {
  (void)i;
  return tvmp_arena + 1200u;
}

int32_t __tvm_ffi_conv(void* self, void* args, int32_t num_args, void* result);

static int64_t a_shape[4] = {1, 3, 8, 8};
static int64_t w_shape[4] = {4, 3, 3, 3};
static int64_t b_shape[4] = {1, 4, 8, 8};

static DLTensor tensor(void* data, int64_t* shape) {
  DLTensor t = {0};
  t.data = data;
  t.device.device_type = kDLCPU;
  t.ndim = 4;
  t.dtype.code = kDLFloat;
  t.dtype.bits = 32;
  t.dtype.lanes = 1;
  t.shape = shape;
  return t;
}

int32_t tvmp_model_run(const void* const* inputs, void* const* outputs) {
  DLTensor a = tensor((void*)inputs[0], a_shape);
  DLTensor w = tensor((void*)inputs[1], w_shape);
  DLTensor b = tensor(outputs[0], b_shape);
  TVMFFIAny args[3] = {{0}};
  args[0].type_index = kTVMFFIDLTensorPtr;
  args[0].v_ptr = &a;
  args[1].type_index = kTVMFFIDLTensorPtr;
  args[1].v_ptr = &w;
  args[2].type_index = kTVMFFIDLTensorPtr;
  args[2].v_ptr = &b;
  TVMFFIAny ret = {0};
  tvmp_workspace_set(tvmp_arena + WORKSPACE_OFFSET, WORKSPACE_BYTES);
  return __tvm_ffi_conv(NULL, args, 3, &ret);
}
