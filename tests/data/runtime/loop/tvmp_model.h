/* Test model "loop": runs a loop of N iterations of exactly two instructions
 * (subs + bne) on Arm, N read from the input (uint32, little endian), and
 * echoes N to the output. Used to check that the instruction count is 2N plus
 * a constant call overhead. */
#include <stdint.h>
#define TVMP_MODEL_NAME "loop"
#define TVMP_NUM_INPUTS 1
#define TVMP_NUM_OUTPUTS 1
static const uint32_t tvmp_input_bytes[TVMP_NUM_INPUTS] = {4};
static const uint32_t tvmp_output_bytes[TVMP_NUM_OUTPUTS] = {4};
int32_t tvmp_model_run(const void* const* inputs, void* const* outputs);
void* tvmp_model_input(int32_t i);
void* tvmp_model_output(int32_t i);
