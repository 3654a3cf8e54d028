/*
 * Cortex-M start-up for the QEMU mps2 boards (M4F, M7, M33 secure).
 *   1. The vector table (.vectors, first in flash) holds the initial SP (top
 *      of the stack, which sits at the bottom of RAM so an overflow can never
 *      run into .data/.bss/the arena) and Reset_Handler.
 *   2. Reset_Handler enables the FPU (where there is one) through CPACR before any code that may
 *      touch a float register, makes a stack overflow fault (MSPLIM on
 *      Armv8-M; on Armv7-M an MPU no-access region over the 64 KiB below the
 *      stack, which QEMU would otherwise let writes vanish into), enables the MemManage/BusFault/UsageFault handlers so a fault
 *      is reported under its own name, copies .data, zeroes .bss, calls main()
 *      and exits through semihosting with main's return value.
 *   3. Every exception except SysTick goes to one handler that prints
 *        TVMP_FAULT <exception> pc=0x... lr=0x... cfsr=0x... hfsr=0x... [addr=0x...] [reason=...]
 *      through semihosting and exits with status 3.
 * We do not run newlib's _start: its SYS_HEAPINFO call would move the stack
 * to wherever QEMU guesses RAM ends. librdimon still supplies open/read/write.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include "tvmp_cortexm.h"
#include "tvmp_text.h"

#define TVMP_NUM_IRQS 96 /* AN386/AN500 wire 32 IRQs, AN505 92 */
#define TVMP_EXIT_FAULT 3

extern uint32_t __tvmp_data_start[], __tvmp_data_end[], __tvmp_data_load[];
extern uint32_t __tvmp_bss_start[], __tvmp_bss_end[];
extern char __tvmp_heap_start[], __tvmp_heap_end[];

int main(void);
void Reset_Handler(void) __attribute__((noreturn));
void SysTick_Handler(void); /* tvmp_platform_cortexm.c */
static void fault_entry(void);

typedef void (*tvmp_vector)(void);

__attribute__((section(".vectors"), used)) const tvmp_vector tvmp_vectors[16 + TVMP_NUM_IRQS] = {
    [0] = (tvmp_vector)(uintptr_t)__tvmp_stack_top,
    [1] = Reset_Handler,
    [2 ... 14] = fault_entry, /* NMI, HardFault, MemManage, BusFault, UsageFault, SecureFault, SVC, ... */
    [15] = SysTick_Handler,
    [16 ... 16 + TVMP_NUM_IRQS - 1] = fault_entry,
};

#if defined(__ARM_ARCH_7EM__) || defined(__ARM_ARCH_7M__)
/* MPU region 0: no access to the 64 KiB right below the stack (the stack
 * starts RAM, so this is unmapped address space). Needs a 64 KiB aligned
 * stack limit and an MPU; without either there is no guard. */
static void stack_guard(void) {
  uint32_t limit = (uint32_t)(uintptr_t)__tvmp_stack_limit;
  if ((MPU_TYPE >> 8 & 0xFFu) == 0u || (limit & 0xFFFFu) != 0u || limit < 0x10000u) return;
  MPU_RNR = 0u;
  MPU_RBAR = limit - 0x10000u;
  MPU_RASR = (1u << 28) | (15u << 1) | 1u; /* XN, AP=no access, 2^(15+1) bytes, enable */
  MPU_CTRL = (1u << 2) | 1u;               /* PRIVDEFENA: default map elsewhere; enable */
  __asm__ volatile("dsb\n\tisb" ::: "memory");
}
#endif

void Reset_Handler(void) {
#if defined(__ARM_FP)
  SCB_CPACR |= 0xFu << 20; /* CP10 and CP11 (the FPU): full access */
  __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif
#if defined(__ARM_ARCH_8M_MAIN__) || defined(__ARM_ARCH_8_1M_MAIN__)
  __asm__ volatile("msr msplim, %0" ::"r"(__tvmp_stack_limit));
  SCB_SHCSR |= 1u << 19; /* SecureFault */
#endif
#if defined(__ARM_ARCH_7EM__) || defined(__ARM_ARCH_7M__)
  stack_guard();
#endif
  SCB_SHCSR |= (1u << 16) | (1u << 17) | (1u << 18); /* MemManage, BusFault, UsageFault */
  for (uint32_t *src = __tvmp_data_load, *dst = __tvmp_data_start; dst < __tvmp_data_end;) {
    *dst++ = *src++;
  }
  for (uint32_t* dst = __tvmp_bss_start; dst < __tvmp_bss_end;) *dst++ = 0u;
  tvmp_semihost_exit(main());
}

void tvmp_semihost_exit(int status) {
  /* SYS_EXIT_EXTENDED carries the status; plain SYS_EXIT only says ok/not ok. */
  const uint32_t block[2] = {TVMP_ADP_STOPPED_APPLICATION_EXIT, (uint32_t)status};
  tvmp_semihost(TVMP_SYS_EXIT_EXTENDED, block);
  tvmp_semihost(TVMP_SYS_EXIT,
                (const void*)(uintptr_t)(status == 0 ? TVMP_ADP_STOPPED_APPLICATION_EXIT
                                                     : TVMP_ADP_STOPPED_RUNTIME_ERROR));
  for (;;) {
  }
}

/* The fault report runs on its own stack: the faulting one may be exhausted. */
static uint64_t fault_stack[128];

void tvmp_fault_report(const uint32_t* frame, uint32_t exc_return) __attribute__((noreturn, used));

__attribute__((naked)) static void fault_entry(void) {
  __asm__ volatile(
      "tst lr, #4\n\t"
      "ite eq\n\t"
      "mrseq r0, msp\n\t"
      "mrsne r0, psp\n\t"
      "mov r1, lr\n\t"
#if defined(__ARM_ARCH_8M_MAIN__) || defined(__ARM_ARCH_8_1M_MAIN__)
      "movs r2, #0\n\t"
      "msr msplim, r2\n\t"
#endif
      "ldr r2, =%c0\n\t"
      "mov sp, r2\n\t"
      "b tvmp_fault_report\n\t"
      ".ltorg" ::"i"(&fault_stack[sizeof(fault_stack) / sizeof(fault_stack[0])]));
}

static const char* exception_name(uint32_t number) {
  static const char* const names[16] = {
      "Thread",     "Reset",  "NMI",      "HardFault", "MemManage", "BusFault", "UsageFault", "SecureFault",
      "Reserved8",  "Reserved9", "Reserved10", "SVCall", "DebugMonitor", "Reserved13", "PendSV", "SysTick"};
  return number < 16 ? names[number] : "IRQ";
}

static const struct {
  uint32_t bit;
  const char* name;
} cfsr_bits[] = {
    {0, "IACCVIOL"},  {1, "DACCVIOL"},    {3, "MUNSTKERR"}, {4, "MSTKERR"},    {5, "MLSPERR"},
    {8, "IBUSERR"},   {9, "PRECISERR"},   {10, "IMPRECISERR"}, {11, "UNSTKERR"}, {12, "STKERR"},
    {13, "LSPERR"},   {16, "UNDEFINSTR"}, {17, "INVSTATE"}, {18, "INVPC"},     {19, "NOCP"},
    {20, "STKOF"},    {24, "UNALIGNED"},  {25, "DIVBYZERO"},
};

void tvmp_fault_report(const uint32_t* frame, uint32_t exc_return) {
  static char text[256];
  uint32_t ipsr;
  __asm__ volatile("mrs %0, ipsr" : "=r"(ipsr));
  uint32_t number = ipsr & 0x1FFu;
  uint32_t cfsr = SCB_CFSR, hfsr = SCB_HFSR;
  tvmp_text t;
  tvmp_text_init(&t, text, sizeof(text));
  tvmp_text_str(&t, "TVMP_FAULT ");
  tvmp_text_str(&t, exception_name(number));
  if (number >= 16) tvmp_text_u64(&t, number - 16u);
  /* After a stack overflow the exception frame was not (fully) written. */
  if (frame >= __tvmp_stack_limit && frame + 8 <= __tvmp_stack_top) {
    tvmp_text_str(&t, " pc=");
    tvmp_text_hex32(&t, frame[6]);
    tvmp_text_str(&t, " lr=");
    tvmp_text_hex32(&t, frame[5]);
  } else {
    tvmp_text_str(&t, " pc=unknown sp=");
    tvmp_text_hex32(&t, (uint32_t)(uintptr_t)frame);
    tvmp_text_str(&t, " (stack overflow: below the stack limit ");
    tvmp_text_hex32(&t, (uint32_t)(uintptr_t)__tvmp_stack_limit);
    tvmp_text_str(&t, ")");
  }
  tvmp_text_str(&t, " cfsr=");
  tvmp_text_hex32(&t, cfsr);
  tvmp_text_str(&t, " hfsr=");
  tvmp_text_hex32(&t, hfsr);
  if (cfsr & (1u << 15)) { /* BFARVALID */
    tvmp_text_str(&t, " addr=");
    tvmp_text_hex32(&t, SCB_BFAR);
  } else if (cfsr & (1u << 7)) { /* MMARVALID */
    tvmp_text_str(&t, " addr=");
    tvmp_text_hex32(&t, SCB_MMFAR);
  }
#if defined(__ARM_ARCH_8M_MAIN__) || defined(__ARM_ARCH_8_1M_MAIN__)
  if (number == 7) {
    tvmp_text_str(&t, " sfsr=");
    tvmp_text_hex32(&t, SCB_SFSR);
    tvmp_text_str(&t, " addr=");
    tvmp_text_hex32(&t, SCB_SFAR);
  }
#endif
  const char* sep = " reason=";
  for (uint32_t i = 0; i < sizeof(cfsr_bits) / sizeof(cfsr_bits[0]); ++i) {
    if (cfsr & (1u << cfsr_bits[i].bit)) {
      tvmp_text_str(&t, sep);
      tvmp_text_str(&t, cfsr_bits[i].name);
      sep = ",";
    }
  }
  if (hfsr & (1u << 1)) {
    tvmp_text_str(&t, sep);
    tvmp_text_str(&t, "VECTTBL");
  }
  (void)exc_return;
  tvmp_text_str(&t, "\n");
  tvmp_semihost(TVMP_SYS_WRITE0, text);
  tvmp_semihost_exit(TVMP_EXIT_FAULT);
}

/* newlib's malloc (should anything call it) gets the RAM above .bss; the
 * runtime itself never allocates. */
void* _sbrk(ptrdiff_t increment) {
  static char* brk = __tvmp_heap_start;
  if (increment > __tvmp_heap_end - brk || increment < __tvmp_heap_start - brk) {
    errno = ENOMEM;
    return (void*)-1;
  }
  char* previous = brk;
  brk += increment;
  return previous;
}

/* TVM's LLVM objects carry ARM EHABI unwind tables that name these
 * personality routines. Nothing here unwinds, so weak stubs keep libgcc's
 * unwinder (several KiB) out of the image; _URC_FAILURE if ever called. */
__attribute__((weak)) int __aeabi_unwind_cpp_pr0(void) { return 9; }
__attribute__((weak)) int __aeabi_unwind_cpp_pr1(void) { return 9; }
__attribute__((weak)) int __aeabi_unwind_cpp_pr2(void) { return 9; }
