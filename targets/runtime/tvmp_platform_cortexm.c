/*
 * Cortex-M platform for the QEMU mps2 boards.
 *
 * Counting. QEMU runs with -icount shift=0: virtual time advances exactly
 * 1 ns per guest instruction. SysTick counts the core clock (TVMP_CLOCK_HZ,
 * 25 MHz on AN386/AN500, 20 MHz on AN505), so one tick is 1e9/TVMP_CLOCK_HZ
 * instructions (40 or 50): the count is exact to that resolution and repeats
 * bit for bit from run to run. The 24-bit counter wraps every 2^24 ticks; the
 * SysTick interrupt counts the wraps.
 *
 * Stack. tvmp_stack_paint() fills the stack below the caller with a pattern;
 * tvmp_stack_used() finds the lowest word that changed and returns the bytes
 * from the top of the stack down to it.
 */
#include <stdint.h>

#include "tvmp_cortexm.h"
#include "tvmp_platform.h"

#ifndef TVMP_CLOCK_HZ
#error "define TVMP_CLOCK_HZ, the frequency of the clock SysTick counts (the core clock)"
#endif
#if 1000000000 % TVMP_CLOCK_HZ != 0
#error "TVMP_CLOCK_HZ must divide 1 GHz for ticks to convert to whole instructions"
#endif
#define TVMP_INSTRUCTIONS_PER_TICK (1000000000u / (uint32_t)(TVMP_CLOCK_HZ))

#define SYST_CSR_ENABLE (1u << 0)
#define SYST_CSR_TICKINT (1u << 1)
#define SYST_CSR_CLKSOURCE_CORE (1u << 2)
#define SCB_ICSR_PENDSTSET (1u << 26)
#define SCB_ICSR_PENDSTCLR (1u << 25)
#define TVMP_STACK_PAINT 0xC5A3C5A3u

extern void initialise_monitor_handles(void); /* librdimon */

static volatile uint32_t systick_wraps;

void SysTick_Handler(void) { systick_wraps = systick_wraps + 1u; }

void tvmp_platform_init(void) { initialise_monitor_handles(); }

void tvmp_counter_start(void) {
  SYST_CSR = 0u;
  SYST_RVR = 0xFFFFFFu;
  SYST_CVR = 0u; /* any write clears it; the reload happens on the first tick */
  systick_wraps = 0u;
  SYST_CSR = SYST_CSR_ENABLE | SYST_CSR_TICKINT | SYST_CSR_CLKSOURCE_CORE;
}

uint64_t tvmp_counter_stop(void) {
  __asm__ volatile("cpsid i" ::: "memory");
  uint32_t value = SYST_CVR;
  uint32_t wraps = systick_wraps;
  if (SCB_ICSR & SCB_ICSR_PENDSTSET) { /* wrapped, interrupt not taken yet */
    value = SYST_CVR;
    wraps += 1u;
  }
  SYST_CSR = 0u;
  SCB_ICSR = SCB_ICSR_PENDSTCLR;
  __asm__ volatile("cpsie i" ::: "memory");
  uint64_t ticks = (uint64_t)wraps * 0x1000000u + ((0x1000000u - value) & 0xFFFFFFu);
  return ticks * TVMP_INSTRUCTIONS_PER_TICK;
}

const char* tvmp_counter_unit(void) { return "instructions"; }

__attribute__((noinline)) void tvmp_stack_paint(void) {
  uintptr_t sp;
  __asm__ volatile("mov %0, sp" : "=r"(sp));
  /* Leave 64 bytes under our own frame for whatever the loop may push. */
  volatile uint32_t* end = (volatile uint32_t*)((sp - 64u) & ~(uintptr_t)3u);
  for (volatile uint32_t* p = __tvmp_stack_limit; p < end; ++p) *p = TVMP_STACK_PAINT;
}

int32_t tvmp_stack_used(void) {
  const volatile uint32_t* p = __tvmp_stack_limit;
  while (p < __tvmp_stack_top && *p == TVMP_STACK_PAINT) ++p;
  return (int32_t)((uintptr_t)__tvmp_stack_top - (uintptr_t)p);
}

int32_t tvmp_stack_size(void) {
  return (int32_t)((uintptr_t)__tvmp_stack_top - (uintptr_t)__tvmp_stack_limit);
}

void tvmp_platform_exit(int status) { tvmp_semihost_exit(status); }
