/* Test model "conv": one TVM-built kernel, conv2d 3x3 pad 1 of A[1,3,8,8] with
 * W[4,3,3,3] into B[1,4,8,8] (float32), called through TVM's packed FFI
 * convention. Its padding stage lives in a 1200 B workspace allocation, so
 * the kernel exercises TVMBackendAllocWorkspace (directly in the C backend,
 * through the weak __TVMBackendAllocWorkspace pointer in an LLVM object). */
#include <stdint.h>
#define TVMP_MODEL_NAME "conv"
#define TVMP_NUM_INPUTS 2
#define TVMP_NUM_OUTPUTS 1
static const uint32_t tvmp_input_bytes[TVMP_NUM_INPUTS] = {768, 432};
static const uint32_t tvmp_output_bytes[TVMP_NUM_OUTPUTS] = {1024};
int32_t tvmp_model_run(const void* const* inputs, void* const* outputs);
void* tvmp_model_input(int32_t i);
void* tvmp_model_output(int32_t i);
