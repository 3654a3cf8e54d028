/* Test model "error": fails on purpose. Input: uint32 kind (little endian).
 * 0: asks the 64 B workspace region for 4000 B (runtime error with numbers);
 * 1: raises like TVM-generated code, through TVMFFIErrorSetRaisedFromCStrParts;
 * 2: frees workspace out of order (not LIFO);
 * 3: returns 5 without a message; other kinds succeed. */
#include <stdint.h>
#define TVMP_MODEL_NAME "error"
#define TVMP_NUM_INPUTS 1
#define TVMP_NUM_OUTPUTS 1
static const uint32_t tvmp_input_bytes[TVMP_NUM_INPUTS] = {4};
static const uint32_t tvmp_output_bytes[TVMP_NUM_OUTPUTS] = {4};
int32_t tvmp_model_run(const void* const* inputs, void* const* outputs);
void* tvmp_model_input(int32_t i);
void* tvmp_model_output(int32_t i);
