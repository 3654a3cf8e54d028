/* tvm-patch int8 micro-kernels, private to their two C files: the requantization of an
 * accumulator (TFLM's MultiplyByQuantizedMultiplier, + zero point, clamped) and, on a core with
 * the DSP extension, the int8 lane loads and sign extensions (SXTB16, SXTAB16). Convolutions are
 * in tvmp_kernels_s8.c, depthwise convolutions in tvmp_kernels_s8_dw.c. */
#ifndef TVMP_KERNELS_S8_INTERNAL_H_
#define TVMP_KERNELS_S8_INTERNAL_H_

#include <stdint.h>
#include <string.h>

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#include <arm_acle.h>
#define TVMP_S8_SIMD 1
#else
#define TVMP_S8_SIMD 0
#endif

/* One output channel's requantization: a row of the [C, 6] table. */
typedef struct {
  int32_t bias;
  int32_t mult;
  int32_t left;     /* shift > 0: x * 2^left first (shift clamped to 30, as the TIR kernel does) */
  int32_t right;    /* shift < 0: RoundingDivideByPOT by 2^right (-shift clamped to 31) */
  uint32_t nudge_lo; /* 2^30 + 2^(30 + right) as a 64-bit word pair (right >= 1) */
  uint32_t nudge_hi;
} channel_q;

static inline channel_q channel(const int32_t* table, int32_t out_c, int32_t n) {
  (void)out_c;
  const int32_t* t = table + 6 * n;
  channel_q q = {t[0], t[1], t[2], t[3], (uint32_t)t[4], (uint32_t)t[5]};
  return q;
}

/* MultiplyByQuantizedMultiplier with TFLM's double rounding (SaturatingRoundingDoublingHighMul,
 * then RoundingDivideByPOT; the doubling high multiply cannot saturate: m >= 0), + zero point,
 * clamped: equal for every input to passes/int8_kernels.py's `mbqm` and `clamp_int8`. */
static inline int32_t mbqm(int32_t x, channel_q q) {
  int32_t xs = (int32_t)((uint32_t)x << q.left); /* x * 2^left, wrapping as int32 */
  if (q.right == 0) {                               /* plain SRDHM */
    return (int32_t)(((int64_t)xs * q.mult + ((int64_t)1 << 30)) >> 31);
  }
  /* mbqm's one rounding: (x m + 2^30 + 2^(30+e) - [x < 0] 2^31) >> (31 + e), as the high
   * word >> (e - 1) (|x m + nudge| < 2^63, so the high word is the exact floor / 2^32) */
  uint64_t nudge = (((uint64_t)q.nudge_hi << 32) | q.nudge_lo) - ((uint32_t)xs & 0x80000000u);
  int64_t p = (int64_t)xs * q.mult + (int64_t)nudge;
  return (int32_t)(p >> 32) >> (q.right - 1);
}

static inline int8_t clamp8(int32_t v, int32_t lo, int32_t hi) { return (int8_t)(v < lo ? lo : (v > hi ? hi : v)); }

static inline int8_t requantize(int32_t acc, channel_q q, int32_t zp, int32_t lo, int32_t hi) {
  return clamp8(mbqm(acc + q.bias, q) + zp, lo, hi);
}

#if TVMP_S8_SIMD
static inline uint32_t read4(const int8_t* p) {
  uint32_t v;
  memcpy(&v, p, 4); /* one LDR: Cortex-M4/M7/M33 load unaligned words */
  return v;
}

/* lanes 0 and 2 / 1 and 3 of four int8, sign-extended to two int16 (SXTB16, ROR #8 in the
 * same instruction: gcc does not fold a separate rotate into it) */
static inline int32_t lanes02(uint32_t v) { return __sxtb16(v); }

static inline int32_t lanes13(uint32_t v) {
  int32_t r;
  __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(v));
  return r;
}

/* lanes 1 and 3 sign-extended, plus the two halfwords of a (SXTAB16, ROR #8) */
static inline int32_t add_lanes13(uint32_t a, uint32_t v) {
  int32_t r;
  __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(a), "r"(v));
  return r;
}
#endif


#endif /* TVMP_KERNELS_S8_INTERNAL_H_ */
