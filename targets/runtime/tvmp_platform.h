/*
 * What the harness (tvmp_main.c) needs from the machine it runs on. Two
 * implementations: tvmp_platform_host.c (POSIX, counts nanoseconds) and
 * tvmp_platform_cortexm.c (QEMU mps2 boards, counts instructions).
 * File I/O and console output go through open/read/write/close, which newlib
 * (librdimon: ARM semihosting) and the host C library both provide.
 */
#ifndef TVMP_PLATFORM_H_
#define TVMP_PLATFORM_H_

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Get file and console I/O ready. Called first thing in main(). */
void tvmp_platform_init(void);

/* Start the counter. */
void tvmp_counter_start(void);
/* Stop it and return what was counted since tvmp_counter_start(). */
uint64_t tvmp_counter_stop(void);
/* What the counter counts: "instructions" or "ns". */
const char* tvmp_counter_unit(void);

/* Fill the unused part of the stack with a known pattern. */
void tvmp_stack_paint(void);
/* Bytes of stack used at the deepest point since the last tvmp_stack_paint(),
 * counted from the top of the stack; -1 when the platform cannot tell. */
int32_t tvmp_stack_used(void);
/* Bytes reserved for the stack; -1 when unknown. */
int32_t tvmp_stack_size(void);

/* Leave the program with this exit status. */
void tvmp_platform_exit(int status) __attribute__((noreturn));

#ifdef __cplusplus
}
#endif

#endif /* TVMP_PLATFORM_H_ */
