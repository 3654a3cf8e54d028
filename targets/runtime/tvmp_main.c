/*
 * Harness: one program, the same source on the host and on Cortex-M.
 *   1. read input.bin (all inputs back to back, sizes from tvmp_input_bytes)
 *      from the current directory straight into the model's input slots; a
 *      model that streams its input (TVMP_INPUT_STREAMED) instead reads each
 *      window from the open file when the patch stage asks for it (lseek +
 *      read per row: the input is never whole in memory);
 *   2. paint the stack, start the counter, run the model, stop the counter;
 *   3. write output.bin (all outputs back to back);
 *   4. print, one line each, then exit with the model's return code:
 *        TVMP_RESULT rc=<int> count=<uint> unit=<instructions|ns> stack=<bytes|none>
 *        TVMP_ERROR <message>          (only when rc != 0)
 *        TVMP_DONE
 * A problem with the files prints TVMP_ERROR and TVMP_DONE (no TVMP_RESULT)
 * and exits with status 2. A fault prints TVMP_FAULT (see the platform file).
 */
#include <fcntl.h>
#include <stdint.h>
#include <unistd.h>

#include "tvmp_model.h"
#include "tvmp_platform.h"
#include "tvmp_runtime.h"
#include "tvmp_text.h"

#ifndef O_BINARY
#define O_BINARY 0
#endif

#define TVMP_EXIT_HARNESS_ERROR 2
#define TVMP_EXIT_FAULT 3

static char line[TVMP_ERROR_BYTES + 64];

static void emit(const char* text) {
  uint32_t n = 0;
  while (text[n] != '\0') ++n;
  while (n > 0) {
    long w = (long)write(1, text, n);
    if (w <= 0) return;
    text += w;
    n -= (uint32_t)w;
  }
}

static void emit_error_and_exit(const char* what, const char* file, uint32_t index, int64_t want,
                                int64_t got) {
  tvmp_text t;
  tvmp_text_init(&t, line, sizeof(line));
  tvmp_text_str(&t, "TVMP_ERROR ");
  tvmp_text_str(&t, file);
  tvmp_text_str(&t, ": ");
  tvmp_text_str(&t, what);
  if (want >= 0) {
    tvmp_text_str(&t, " (slot ");
    tvmp_text_u64(&t, index);
    tvmp_text_str(&t, ": wanted ");
    tvmp_text_i64(&t, want);
    tvmp_text_str(&t, " B, got ");
    tvmp_text_i64(&t, got);
    tvmp_text_str(&t, " B)");
  }
  tvmp_text_str(&t, "\nTVMP_DONE\n");
  emit(line);
  tvmp_platform_exit(TVMP_EXIT_HARNESS_ERROR);
}

/* Read up to n bytes; returns how many were read (short only at end of file). */
static int64_t read_full(int fd, void* dst, uint32_t n) {
  uint8_t* p = (uint8_t*)dst;
  uint32_t done = 0;
  while (done < n) {
    long r = (long)read(fd, p + done, n - done);
    if (r <= 0) break;
    done += (uint32_t)r;
  }
  return done;
}

#ifndef TVMP_INPUT_STREAMED
static void read_inputs(const void** inputs) {
  int fd = open("input.bin", O_RDONLY | O_BINARY);
  if (fd < 0) emit_error_and_exit("cannot open", "input.bin", 0, -1, -1);
  for (uint32_t i = 0; i < TVMP_NUM_INPUTS; ++i) {
    void* slot = tvmp_model_input((int32_t)i);
    int64_t got = read_full(fd, slot, tvmp_input_bytes[i]);
    if (got != (int64_t)tvmp_input_bytes[i]) {
      emit_error_and_exit("too short", "input.bin", i, tvmp_input_bytes[i], got);
    }
    inputs[i] = slot;
  }
  uint8_t extra;
  if (read_full(fd, &extra, 1) != 0) {
    emit_error_and_exit("longer than the model's inputs", "input.bin", 0, -1, -1);
  }
  close(fd);
}
#endif

#ifdef TVMP_INPUT_STREAMED
/* The input provider: rows of the window read from input.bin where they are. */
static int32_t read_window(void* ctx, void* dst, int32_t y0, int32_t x0, int32_t h, int32_t w) {
  int fd = *(const int*)ctx;
  uint8_t* out = (uint8_t*)dst;
  const uint32_t e = TVMP_STREAM_ELEMENT_BYTES;
#if TVMP_STREAM_NCHW
  const uint32_t planes = TVMP_STREAM_CHANNELS, pixel = e;
#else
  const uint32_t planes = 1, pixel = TVMP_STREAM_CHANNELS * e;
#endif
  const uint32_t row = (uint32_t)w * pixel;
  for (uint32_t c = 0; c < planes; ++c) {
    for (int32_t y = 0; y < h; ++y, out += row) {
      uint32_t at = ((c * TVMP_STREAM_HEIGHT + (uint32_t)(y0 + y)) * TVMP_STREAM_WIDTH + (uint32_t)x0) * pixel;
      if (lseek(fd, (off_t)at, SEEK_SET) != (off_t)at || read_full(fd, out, row) != (int64_t)row) {
        tvmp_set_error("input.bin: seek or read failed");
        return -1;
      }
    }
  }
  return 0;
}

/* Open input.bin and check that it holds exactly the input. */
static int open_streamed_input(void) {
  int fd = open("input.bin", O_RDONLY | O_BINARY);
  if (fd < 0) emit_error_and_exit("cannot open", "input.bin", 0, -1, -1);
  int64_t size = (int64_t)lseek(fd, 0, SEEK_END);
  if (size != (int64_t)tvmp_input_bytes[0]) {
    emit_error_and_exit(size < (int64_t)tvmp_input_bytes[0] ? "too short" : "longer than the model's inputs",
                        "input.bin", 0, tvmp_input_bytes[0], size);
  }
  return fd;
}
#endif

static void write_outputs(void* const* outputs) {
  int fd = open("output.bin", O_WRONLY | O_CREAT | O_TRUNC | O_BINARY, 0644);
  if (fd < 0) emit_error_and_exit("cannot create", "output.bin", 0, -1, -1);
  for (uint32_t i = 0; i < TVMP_NUM_OUTPUTS; ++i) {
    const uint8_t* p = (const uint8_t*)outputs[i];
    uint32_t left = tvmp_output_bytes[i];
    while (left > 0) {
      long w = (long)write(fd, p, left);
      if (w <= 0) emit_error_and_exit("write failed", "output.bin", i, tvmp_output_bytes[i], -1);
      p += w;
      left -= (uint32_t)w;
    }
  }
  close(fd);
}

int main(void) {
  const void* inputs[TVMP_NUM_INPUTS > 0 ? TVMP_NUM_INPUTS : 1];
  void* outputs[TVMP_NUM_OUTPUTS > 0 ? TVMP_NUM_OUTPUTS : 1];

  tvmp_platform_init();
  tvmp_runtime_init();
#ifdef TVMP_INPUT_STREAMED
  (void)inputs;
  int fd = open_streamed_input();
#else
  read_inputs(inputs);
#endif
  for (uint32_t i = 0; i < TVMP_NUM_OUTPUTS; ++i) outputs[i] = tvmp_model_output((int32_t)i);

  tvmp_stack_paint();
  tvmp_counter_start();
#ifdef TVMP_INPUT_STREAMED
  int32_t rc = tvmp_model_run_streamed(read_window, &fd, outputs); /* counts the file reads too */
#else
  int32_t rc = tvmp_model_run(inputs, outputs);
#endif
  uint64_t count = tvmp_counter_stop();
  int32_t stack = tvmp_stack_used();

  tvmp_text t;
  tvmp_text_init(&t, line, sizeof(line));
  if (stack >= 0 && stack >= tvmp_stack_size()) {
    tvmp_text_str(&t, "TVMP_FAULT StackOverflow used>=");
    tvmp_text_i64(&t, stack);
    tvmp_text_str(&t, " B, the stack is ");
    tvmp_text_i64(&t, tvmp_stack_size());
    tvmp_text_str(&t, " B (build with a larger stack)\n");
    emit(line);
    tvmp_platform_exit(TVMP_EXIT_FAULT);
  }
  write_outputs(outputs);

  tvmp_text_str(&t, "TVMP_RESULT rc=");
  tvmp_text_i64(&t, rc);
  tvmp_text_str(&t, " count=");
  tvmp_text_u64(&t, count);
  tvmp_text_str(&t, " unit=");
  tvmp_text_str(&t, tvmp_counter_unit());
  tvmp_text_str(&t, " stack=");
  if (stack >= 0) {
    tvmp_text_i64(&t, stack);
  } else {
    tvmp_text_str(&t, "none");
  }
  tvmp_text_str(&t, "\n");
  emit(line);
  if (rc != 0) {
    const char* message = tvmp_last_error();
    tvmp_text_init(&t, line, sizeof(line));
    tvmp_text_str(&t, "TVMP_ERROR ");
    tvmp_text_str(&t, message[0] != '\0' ? message : "tvmp_model_run failed and recorded no message");
    for (uint32_t i = 0; i < t.len; ++i) {
      if (line[i] == '\n' || line[i] == '\r') line[i] = ' '; /* keep it one line */
    }
    tvmp_text_str(&t, "\n");
    emit(line);
  }
  emit("TVMP_DONE\n");
  tvmp_platform_exit(rc);
}
