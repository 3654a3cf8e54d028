/* Test model "copy": two inputs, two outputs, swapped and incremented:
 * out0[i] = in1[i] + 1, out1[i] = in0[i] + 1, staged through two nested
 * workspace allocations (checked 16-byte aligned and freed LIFO). */
#include <stdint.h>
#define TVMP_MODEL_NAME "copy"
#define TVMP_NUM_INPUTS 2
#define TVMP_NUM_OUTPUTS 2
static const uint32_t tvmp_input_bytes[TVMP_NUM_INPUTS] = {40, 24};
static const uint32_t tvmp_output_bytes[TVMP_NUM_OUTPUTS] = {24, 40};
int32_t tvmp_model_run(const void* const* inputs, void* const* outputs);
void* tvmp_model_input(int32_t i);
void* tvmp_model_output(int32_t i);
