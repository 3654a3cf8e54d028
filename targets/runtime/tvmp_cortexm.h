/* Cortex-M internals shared by tvmp_startup_cortexm.c and
 * tvmp_platform_cortexm.c: system registers, linker symbols, semihosting. */
#ifndef TVMP_CORTEXM_H_
#define TVMP_CORTEXM_H_

#include <stdint.h>

#define TVMP_REG(addr) (*(volatile uint32_t*)(addr))
#define SYST_CSR TVMP_REG(0xE000E010u) /* SysTick control and status */
#define SYST_RVR TVMP_REG(0xE000E014u) /* SysTick reload value */
#define SYST_CVR TVMP_REG(0xE000E018u) /* SysTick current value */
#define SCB_ICSR TVMP_REG(0xE000ED04u) /* interrupt control and state */
#define SCB_SHCSR TVMP_REG(0xE000ED24u) /* system handler control and state */
#define SCB_CFSR TVMP_REG(0xE000ED28u) /* configurable fault status */
#define SCB_HFSR TVMP_REG(0xE000ED2Cu) /* HardFault status */
#define SCB_MMFAR TVMP_REG(0xE000ED34u) /* MemManage fault address */
#define SCB_BFAR TVMP_REG(0xE000ED38u) /* BusFault address */
#define SCB_CPACR TVMP_REG(0xE000ED88u) /* coprocessor access control */
#define MPU_TYPE TVMP_REG(0xE000ED90u) /* Armv7-M PMSAv7 MPU */
#define MPU_CTRL TVMP_REG(0xE000ED94u)
#define MPU_RNR TVMP_REG(0xE000ED98u)
#define MPU_RBAR TVMP_REG(0xE000ED9Cu)
#define MPU_RASR TVMP_REG(0xE000EDA0u)
#define SCB_SFSR TVMP_REG(0xE000EDE4u) /* SecureFault status (Armv8-M) */
#define SCB_SFAR TVMP_REG(0xE000EDE8u) /* SecureFault address (Armv8-M) */

/* Laid out by tvmp_cortexm.ld. */
extern uint32_t __tvmp_stack_limit[];
extern uint32_t __tvmp_stack_top[];

/* ARM semihosting call (BKPT 0xAB in Thumb state). */
static inline int32_t tvmp_semihost(int32_t op, const void* arg) {
  register int32_t r0 __asm__("r0") = op;
  register const void* r1 __asm__("r1") = arg;
  __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
  return r0;
}

#define TVMP_SYS_WRITE0 0x04
#define TVMP_SYS_EXIT 0x18
#define TVMP_SYS_EXIT_EXTENDED 0x20
#define TVMP_ADP_STOPPED_APPLICATION_EXIT 0x20026
#define TVMP_ADP_STOPPED_RUNTIME_ERROR 0x20023

/* Exit the emulator (or stop at the debugger) with this status. */
void tvmp_semihost_exit(int status) __attribute__((noreturn));

#endif /* TVMP_CORTEXM_H_ */
