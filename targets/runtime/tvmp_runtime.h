/*
 * tvm-patch minimal C runtime: what TVM-generated kernels need on bare metal.
 *
 * Kernels (C backend or LLVM objects) call three functions:
 *   TVMBackendAllocWorkspace / TVMBackendFreeWorkspace  - scratch memory
 *   TVMFFIErrorSetRaisedFromCStrParts                   - error reporting
 * The generated model owns one static arena. Before each kernel it hands the
 * runtime that kernel's planned workspace region with tvmp_workspace_set();
 * TVMBackendAllocWorkspace is then a bump allocator over the region:
 *   1. every request is rounded up to 16 bytes and returned 16-byte aligned;
 *   2. frees must come in reverse order of allocation (TVM frees LIFO);
 *   3. a request that does not fit returns NULL and records an error that
 *      names the requested bytes, the region size and the bytes in use.
 * There is no malloc, no global constructor and no thread: one model runs at
 * a time. Errors are kept in a fixed buffer read back by tvmp_last_error().
 */
#ifndef TVMP_RUNTIME_H_
#define TVMP_RUNTIME_H_

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Alignment of every workspace allocation, and the rounding of its size. */
#define TVMP_WORKSPACE_ALIGN 16u
/* Most workspace allocations live at the same time inside one kernel. */
#define TVMP_WORKSPACE_MAX_LIVE 64
/* Capacity of the last-error buffer, including the terminating NUL. */
#define TVMP_ERROR_BYTES 512

/* Reset the runtime (no region, no error) and point the LLVM kernels' weak
 * workspace hooks (__TVMBackendAllocWorkspace / __TVMBackendFreeWorkspace) at
 * this runtime. Call once before the first kernel. */
void tvmp_runtime_init(void);

/* Make [base, base + bytes) the workspace region of the next kernel. An
 * unaligned base is moved up to the next 16-byte boundary (the usable size
 * shrinks by the same amount). Live allocations of the previous region are
 * forgotten. */
void tvmp_workspace_set(void* base, uint32_t bytes);

/* Most bytes in use at once in the current region since tvmp_workspace_set. */
uint32_t tvmp_workspace_high_water(void);

/* The last error recorded by the runtime or raised by a kernel, "" if none. */
const char* tvmp_last_error(void);

/* Forget the last error. */
void tvmp_clear_error(void);

/* Record an error message (truncated to TVMP_ERROR_BYTES - 1 characters). */
void tvmp_set_error(const char* message);

/* Streamed input (a model compiled with --stream-input): the patch stage asks for each
 * patch's input window with tvmp_stream_read(), which calls the provider set here. A
 * provider fills dst with rows [y0, y0 + h) x columns [x0, x0 + w) of the model input, all
 * channels, h * w * C elements back to back in the input's layout (NHWC: h rows of w pixels
 * of C channels; NCHW: C planes of h rows of w), and returns 0; any other value stops the
 * run with that window in the error (tvmp_set_error() before returning adds the reason).
 * The window is always inside the input: padding is the kernel's. */
typedef int32_t (*tvmp_input_provider)(void* ctx, void* dst, int32_t y0, int32_t x0, int32_t h,
                                       int32_t w);

/* Make `provider` (called with `ctx`) the source of the next run's input windows. */
void tvmp_stream_set(tvmp_input_provider provider, void* ctx);

/* What the patch stage kernel calls: the provider's result (-1 if none is set). */
int32_t tvmp_stream_read(void* dst, int32_t y0, int32_t x0, int32_t h, int32_t w);

#ifdef __cplusplus
}
#endif

#endif /* TVMP_RUNTIME_H_ */
