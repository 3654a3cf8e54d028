#include <stdint.h>

#include "tvmp_model.h"

__attribute__((aligned(16))) uint8_t tvmp_arena[32];

void* tvmp_model_input(int32_t i) { return tvmp_arena + 16 * i; }
void* tvmp_model_output(int32_t i) { return tvmp_arena + 16 + 16 * i; }

#pragma GCC diagnostic ignored "-Winfinite-recursion"

typedef void (*fn)(void);
static volatile fn null_function = 0;

__attribute__((noinline)) static uint32_t recurse(volatile uint32_t* depth) {
  volatile uint32_t frame[64];
  frame[0] = *depth;
  *depth = *depth + 1;
  return recurse(depth) + frame[0];
}

int32_t tvmp_model_run(const void* const* inputs, void* const* outputs) {
  const uint32_t* in = (const uint32_t*)inputs[0];
  uint32_t* out = (uint32_t*)outputs[0];
  volatile uint32_t depth = 0;
  switch (in[0]) {
    case 0:
      __builtin_trap();
    case 1:
      null_function();
      break;
    case 2:
      out[0] = *(volatile const uint32_t*)(uintptr_t)in[1];
      break;
    case 3:
      out[0] = recurse(&depth);
      break;
    default:
      out[0] = 0;
  }
  return 0;
}
