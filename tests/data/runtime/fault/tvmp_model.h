/* Test model "fault": crashes on purpose. Input: uint32 kind, uint32 address
 * (little endian). kind 0: trap instruction (UDF on Arm, SIGILL on the host);
 * 1: call through a NULL function pointer, as an LLVM kernel does when the
 * runtime leaves __TVMBackendAllocWorkspace unset; 2: load a word from
 * `address`; 3: recurse without bound (stack overflow); other kinds return 0. */
#include <stdint.h>
#define TVMP_MODEL_NAME "fault"
#define TVMP_NUM_INPUTS 1
#define TVMP_NUM_OUTPUTS 1
static const uint32_t tvmp_input_bytes[TVMP_NUM_INPUTS] = {8};
static const uint32_t tvmp_output_bytes[TVMP_NUM_OUTPUTS] = {4};
int32_t tvmp_model_run(const void* const* inputs, void* const* outputs);
void* tvmp_model_input(int32_t i);
void* tvmp_model_output(int32_t i);
