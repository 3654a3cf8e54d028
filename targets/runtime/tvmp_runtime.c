/* tvm-patch minimal C runtime: workspace bump allocator and error storage.
 * See tvmp_runtime.h for the contract. */
#include "tvmp_runtime.h"

#include <tvm/ffi/c_api.h>
#include <tvm/runtime/c_backend_api.h>

#include "tvmp_text.h"

typedef void* (*tvmp_alloc_fn)(int, int, uint64_t, int, int);
typedef int (*tvmp_free_fn)(int, int, void*);

/* Kernels built by TVM's LLVM backend do not call the workspace functions
 * directly: they load a function pointer from these two symbols, which every
 * LLVM object defines weak and zero. Strong, initialised definitions here win
 * at link time, so the pointers are valid even before tvmp_runtime_init();
 * C-backend kernels never read them. */
tvmp_alloc_fn __TVMBackendAllocWorkspace = TVMBackendAllocWorkspace;
tvmp_free_fn __TVMBackendFreeWorkspace = TVMBackendFreeWorkspace;

static struct {
  uint8_t* base;
  uint32_t size;
  uint32_t used;
  uint32_t high_water;
  uint32_t live;                                 /* allocations not yet freed */
  uint32_t offsets[TVMP_WORKSPACE_MAX_LIVE];     /* their offsets, oldest first */
} ws;

static char last_error[TVMP_ERROR_BYTES];

static struct {
  tvmp_input_provider provider;
  void* ctx;
  char cause[TVMP_ERROR_BYTES / 2]; /* why the last read failed, until the kernel reports it */
} stream;

void tvmp_runtime_init(void) {
  __TVMBackendAllocWorkspace = TVMBackendAllocWorkspace;
  __TVMBackendFreeWorkspace = TVMBackendFreeWorkspace;
  tvmp_workspace_set(0, 0);
  tvmp_clear_error();
  tvmp_stream_set(0, 0);
}

void tvmp_stream_set(tvmp_input_provider provider, void* ctx) {
  stream.provider = provider;
  stream.ctx = ctx;
  stream.cause[0] = '\0';
}

int32_t tvmp_stream_read(void* dst, int32_t y0, int32_t x0, int32_t h, int32_t w) {
  tvmp_text t;
  if (stream.provider == 0) {
    tvmp_text_init(&t, stream.cause, sizeof(stream.cause));
    tvmp_text_str(&t, "the model streams its input and no provider is set (run it with _run_streamed)");
    return -1;
  }
  last_error[0] = '\0';
  int32_t rc = stream.provider(stream.ctx, dst, y0, x0, h, w);
  if (rc != 0) {
    tvmp_text_init(&t, stream.cause, sizeof(stream.cause));
    tvmp_text_str(&t, "provider returned ");
    tvmp_text_i64(&t, rc);
    tvmp_text_str(&t, " for rows ");
    tvmp_text_i64(&t, y0);
    tvmp_text_str(&t, "..");
    tvmp_text_i64(&t, (int64_t)y0 + h);
    tvmp_text_str(&t, ", columns ");
    tvmp_text_i64(&t, x0);
    tvmp_text_str(&t, "..");
    tvmp_text_i64(&t, (int64_t)x0 + w);
    if (last_error[0] != '\0') {
      tvmp_text_str(&t, ": ");
      tvmp_text_str(&t, last_error);
    }
  }
  return rc;
}

void tvmp_workspace_set(void* base, uint32_t bytes) {
  uintptr_t addr = (uintptr_t)base;
  uintptr_t aligned = (addr + (TVMP_WORKSPACE_ALIGN - 1u)) & ~(uintptr_t)(TVMP_WORKSPACE_ALIGN - 1u);
  uint32_t lost = (uint32_t)(aligned - addr);
  ws.base = (uint8_t*)aligned;
  ws.size = (base != 0 && bytes > lost) ? bytes - lost : 0u;
  ws.used = 0;
  ws.high_water = 0;
  ws.live = 0;
}

uint32_t tvmp_workspace_high_water(void) { return ws.high_water; }

const char* tvmp_last_error(void) { return last_error; }

void tvmp_clear_error(void) { last_error[0] = '\0'; }

void tvmp_set_error(const char* message) {
  tvmp_text t;
  tvmp_text_init(&t, last_error, sizeof(last_error));
  tvmp_text_str(&t, message);
}

void* TVMBackendAllocWorkspace(int device_type, int device_id, uint64_t nbytes,
                               int dtype_code_hint, int dtype_bits_hint) {
  (void)device_type;
  (void)device_id;
  (void)dtype_code_hint;
  (void)dtype_bits_hint;
  uint64_t rounded = (nbytes + (TVMP_WORKSPACE_ALIGN - 1u)) & ~(uint64_t)(TVMP_WORKSPACE_ALIGN - 1u);
  if (rounded == 0u) rounded = TVMP_WORKSPACE_ALIGN; /* distinct pointer for LIFO frees */
  if (ws.live >= TVMP_WORKSPACE_MAX_LIVE || rounded > (uint64_t)(ws.size - ws.used)) {
    tvmp_text t;
    tvmp_text_init(&t, last_error, sizeof(last_error));
    tvmp_text_str(&t, "TVMBackendAllocWorkspace: requested ");
    tvmp_text_u64(&t, nbytes);
    tvmp_text_str(&t, " B (");
    tvmp_text_u64(&t, rounded);
    tvmp_text_str(&t, " B rounded), workspace region is ");
    tvmp_text_u64(&t, ws.size);
    tvmp_text_str(&t, " B with ");
    tvmp_text_u64(&t, ws.used);
    tvmp_text_str(&t, " B used");
    if (ws.live >= TVMP_WORKSPACE_MAX_LIVE) {
      tvmp_text_str(&t, "; too many live allocations (max ");
      tvmp_text_u64(&t, TVMP_WORKSPACE_MAX_LIVE);
      tvmp_text_str(&t, ")");
    }
    return 0;
  }
  ws.offsets[ws.live++] = ws.used;
  void* ptr = ws.base + ws.used;
  ws.used += (uint32_t)rounded;
  if (ws.used > ws.high_water) ws.high_water = ws.used;
  return ptr;
}

int TVMBackendFreeWorkspace(int device_type, int device_id, void* ptr) {
  (void)device_type;
  (void)device_id;
  if (ws.live == 0 || (uint8_t*)ptr != ws.base + ws.offsets[ws.live - 1u]) {
    tvmp_text t;
    tvmp_text_init(&t, last_error, sizeof(last_error));
    tvmp_text_str(&t, "TVMBackendFreeWorkspace: pointer ");
    tvmp_text_hex32(&t, (uint32_t)(uintptr_t)ptr);
    tvmp_text_str(&t, ws.live == 0 ? " freed with no live allocation"
                                   : " is not the latest live allocation (frees must be LIFO)");
    return -1;
  }
  ws.used = ws.offsets[--ws.live];
  return 0;
}

void TVMFFIErrorSetRaisedFromCStrParts(const char* kind, const char** message_parts,
                                       int32_t num_parts) {
  tvmp_text t;
  tvmp_text_init(&t, last_error, sizeof(last_error));
  tvmp_text_str(&t, kind);
  tvmp_text_str(&t, ": ");
  for (int32_t i = 0; i < num_parts; ++i) {
    if (message_parts[i] != 0) tvmp_text_str(&t, message_parts[i]);
  }
  if (stream.cause[0] != '\0') { /* the kernel's assertion on tvmp_stream_read: say why */
    tvmp_text_str(&t, ": ");
    tvmp_text_str(&t, stream.cause);
    stream.cause[0] = '\0';
  }
}

void TVMFFIErrorSetRaisedFromCStr(const char* kind, const char* message) {
  TVMFFIErrorSetRaisedFromCStrParts(kind, &message, 1);
}
