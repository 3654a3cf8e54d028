/* Host platform: wall-clock nanoseconds from CLOCK_MONOTONIC, no stack
 * measurement, the C library's exit(). Timing on the host is for orientation
 * only; the deterministic figure is the instruction count from QEMU. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <time.h>

#include "tvmp_platform.h"

static uint64_t start_ns;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void tvmp_platform_init(void) {}

void tvmp_counter_start(void) { start_ns = now_ns(); }

uint64_t tvmp_counter_stop(void) { return now_ns() - start_ns; }

const char* tvmp_counter_unit(void) { return "ns"; }

void tvmp_stack_paint(void) {}

int32_t tvmp_stack_used(void) { return -1; }

int32_t tvmp_stack_size(void) { return -1; }

void tvmp_platform_exit(int status) { exit(status); }
