#include <stdint.h>

#include "tvmp_model.h"

__attribute__((aligned(16))) uint8_t tvmp_arena[32];

void* tvmp_model_input(int32_t i) { return tvmp_arena + 16 * i; }
void* tvmp_model_output(int32_t i) { return tvmp_arena + 16 + 16 * i; }

int32_t tvmp_model_run(const void* const* inputs, void* const* outputs) {
  (void)inputs;
  (void)outputs;
  for (;;) {
    __asm__ volatile("" ::: "memory");
  }
}
