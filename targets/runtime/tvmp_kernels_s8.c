/* tvm-patch int8 micro-kernels (see tvmp_kernels_s8.h for what they compute). */
#include "tvmp_kernels_s8.h"

#include <stddef.h>
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

static inline channel_q shift_q(int32_t mult, int32_t s) {
  int32_t right = s < 0 ? (-s < 31 ? -s : 31) : 0;
  uint64_t nudge = ((uint64_t)1 << 30) + ((uint64_t)1 << (30 + right));
  channel_q q = {0, mult, s > 0 ? (s < 30 ? s : 30) : 0, right, (uint32_t)nudge, (uint32_t)(nudge >> 32)};
  return q;
}

/* TFLM's int8 ADD / SUB of the conv's output and a skip tensor (passes/int8_elementwise.py,
 * `add_kernel`): each input (q - zp) << left, rescaled; summed; rescaled; + zp, clamped. */
typedef struct {
  int32_t conv_first; /* the conv's output is the op's first operand */
  int32_t zp1, zp2, left;
  channel_q in1, in2, out;
  int32_t zp, lo, hi, sign;
} add_q;

static inline int8_t add_skip(int8_t v, int8_t s, const add_q* a) {
  int32_t first = a->conv_first ? v : s, second = a->conv_first ? s : v;
  int32_t sa = mbqm((first - a->zp1) * (1 << a->left), a->in1);
  int32_t sb = mbqm((second - a->zp2) * (1 << a->left), a->in2);
  return clamp8(mbqm(a->sign > 0 ? sa + sb : sa - sb, a->out) + a->zp, a->lo, a->hi);
}

/* y[n] = the requantized accumulator, or that added to skip[n] */
#define TVMP_S8_STORE(y, n, acc, q, skip)                         \
  do {                                                            \
    int8_t v_ = requantize((acc), (q), y_zp, lo, hi);             \
    (y)[n] = add == NULL ? v_ : add_skip(v_, (skip)[n], add);     \
  } while (0)

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

/* The im2col column of output pixel (oy, ox): k_h * k_w * in_c bytes, padding as x_zp (the
 * folded bias subtracts x_zp times every weight, padding included). */
static void column(const int8_t* x, int8_t* col, int32_t oy, int32_t ox, int32_t in_h, int32_t in_w,
                   int32_t in_c, int32_t k_h, int32_t k_w, int32_t stride_h, int32_t stride_w, int32_t pad_t,
                   int32_t pad_l, int32_t dil_h, int32_t dil_w, int32_t x_zp) {
  for (int32_t ky = 0; ky < k_h; ++ky) {
    int32_t iy = oy * stride_h - pad_t + ky * dil_h;
    for (int32_t kx = 0; kx < k_w; ++kx) {
      int32_t ix = ox * stride_w - pad_l + kx * dil_w;
      if (iy >= 0 && iy < in_h && ix >= 0 && ix < in_w) {
        const int8_t* src = x + (iy * in_w + ix) * in_c;
        if (in_c < 16) {
          for (int32_t i = 0; i < in_c; ++i) col[i] = src[i];
        } else {
          memcpy(col, src, (size_t)in_c);
        }
      } else {
        for (int32_t i = 0; i < in_c; ++i) col[i] = (int8_t)x_zp;
      }
      col += in_c;
    }
  }
}

/* Two pixels (columns c0, c1) times the filter pair at w (tvmp_kernels_s8.h: groups of four
 * terms of each filter in turn, then the k % 4 tail terms of each) over k terms; out gets
 * pixel 0 x (filter 0, 1), pixel 1 x (filter 0, 1). */
static inline __attribute__((always_inline)) void dot_2x2(const int8_t* c0, const int8_t* c1, const int8_t* w, int32_t k,
                                              int32_t* out) {
  int32_t a00 = 0, a01 = 0, a10 = 0, a11 = 0;
  int32_t quads = k >> 2;
#if TVMP_S8_SIMD
  for (int32_t q = quads; q > 0; --q) {
    uint32_t xa = read4(c0), xb = read4(c1);
    c0 += 4;
    c1 += 4;
    int32_t xa02 = lanes02(xa), xa13 = lanes13(xa);
    int32_t xb02 = lanes02(xb), xb13 = lanes13(xb);
    uint32_t wa = read4(w);
    int32_t w02 = lanes02(wa), w13 = lanes13(wa);
    a00 = __smlad(xa02, w02, a00);
    a00 = __smlad(xa13, w13, a00);
    a10 = __smlad(xb02, w02, a10);
    a10 = __smlad(xb13, w13, a10);
    uint32_t wb = read4(w + 4);
    w += 8;
    w02 = lanes02(wb);
    w13 = lanes13(wb);
    a01 = __smlad(xa02, w02, a01);
    a01 = __smlad(xa13, w13, a01);
    a11 = __smlad(xb02, w02, a11);
    a11 = __smlad(xb13, w13, a11);
  }
#else
  for (int32_t q = quads; q > 0; --q) {
    for (int32_t t = 0; t < 4; ++t) {
      a00 += c0[t] * w[t];
      a10 += c1[t] * w[t];
      a01 += c0[t] * w[4 + t];
      a11 += c1[t] * w[4 + t];
    }
    c0 += 4;
    c1 += 4;
    w += 8;
  }
#endif
  int32_t tail = k & 3;
  for (int32_t t = 0; t < tail; ++t) {
    a00 += c0[t] * w[t];
    a10 += c1[t] * w[t];
    a01 += c0[t] * w[tail + t];
    a11 += c1[t] * w[tail + t];
  }
  out[0] = a00;
  out[1] = a01;
  out[2] = a10;
  out[3] = a11;
}

/* Two pixels times one filter (its k terms in order). */
static inline __attribute__((always_inline)) void dot_2x1(const int8_t* c0, const int8_t* c1, const int8_t* w, int32_t k,
                                              int32_t* out) {
  int32_t a0 = 0, a1 = 0;
  int32_t i = 0;
#if TVMP_S8_SIMD
  for (; i + 4 <= k; i += 4) {
    uint32_t xa = read4(c0 + i), xb = read4(c1 + i), wa = read4(w + i);
    int32_t w02 = lanes02(wa), w13 = lanes13(wa);
    a0 = __smlad(lanes02(xa), w02, a0);
    a0 = __smlad(lanes13(xa), w13, a0);
    a1 = __smlad(lanes02(xb), w02, a1);
    a1 = __smlad(lanes13(xb), w13, a1);
  }
#endif
  for (; i < k; ++i) {
    a0 += c0[i] * w[i];
    a1 += c1[i] * w[i];
  }
  out[0] = a0;
  out[1] = a1;
}

/* Every filter for the pixels of columns c0 and c1 (c1 == c0: one pixel, y1 unused). */
static inline __attribute__((always_inline)) void pixel_pair(const int8_t* c0, const int8_t* c1,
                                                             const int8_t* w, const int32_t* table, int8_t* y0,
                                                             int8_t* y1, int32_t k, int32_t out_c, int32_t y_zp,
                                                             int32_t lo, int32_t hi, const add_q* add,
                                                             const int8_t* s0, const int8_t* s1) {
  const int32_t two = c1 != c0;
  int32_t n = 0;
  for (; n + 2 <= out_c; n += 2) {
    int32_t acc[4];
    dot_2x2(c0, c1, w + n * k, k, acc);
    channel_q q0 = channel(table, out_c, n), q1 = channel(table, out_c, n + 1);
    TVMP_S8_STORE(y0, n, acc[0], q0, s0);
    TVMP_S8_STORE(y0, n + 1, acc[1], q1, s0);
    if (two) {
      TVMP_S8_STORE(y1, n, acc[2], q0, s1);
      TVMP_S8_STORE(y1, n + 1, acc[3], q1, s1);
    }
  }
  if (n < out_c) {
    int32_t acc[2];
    dot_2x1(c0, c1, w + n * k, k, acc);
    channel_q q = channel(table, out_c, n);
    TVMP_S8_STORE(y0, n, acc[0], q, s0);
    if (two) TVMP_S8_STORE(y1, n, acc[1], q, s1);
  }
}

/* pixel_pair compiled twice: without the residual (add NULL, folded away) and with it */
static __attribute__((noinline)) void pixel_pair_plain(const int8_t* c0, const int8_t* c1, const int8_t* w,
                                                       const int32_t* table, int8_t* y0, int8_t* y1, int32_t k,
                                                       int32_t out_c, int32_t y_zp, int32_t lo, int32_t hi) {
  pixel_pair(c0, c1, w, table, y0, y1, k, out_c, y_zp, lo, hi, NULL, y0, y1);
}

static __attribute__((noinline)) void pixel_pair_add(const int8_t* c0, const int8_t* c1, const int8_t* w,
                                                     const int32_t* table, int8_t* y0, int8_t* y1, int32_t k,
                                                     int32_t out_c, int32_t y_zp, int32_t lo, int32_t hi,
                                                     const add_q* add, const int8_t* s0, const int8_t* s1) {
  pixel_pair(c0, c1, w, table, y0, y1, k, out_c, y_zp, lo, hi, add, s0, s1);
}

/* cols: two im2col columns, or NULL when the window is 1x1 without padding (read from x). */
static void conv(const int8_t* x, const int8_t* w, const int32_t* table, int8_t* y, int32_t in_h, int32_t in_w,
                 int32_t in_c, int32_t out_h, int32_t out_w, int32_t out_c, int32_t k_h, int32_t k_w,
                 int32_t stride_h, int32_t stride_w, int32_t pad_t, int32_t pad_l, int32_t dil_h, int32_t dil_w,
                 int32_t x_zp, int32_t y_zp, int32_t lo, int32_t hi, int8_t (*cols)[TVMP_S8_COLUMN_MAX],
                 const add_q* add, const int8_t* skip) {
  const int32_t k = k_h * k_w * in_c;
  const int32_t pixels = out_h * out_w;
  for (int32_t p = 0; p < pixels; p += 2) {
    const int32_t two = p + 1 < pixels;
    const int8_t* c[2];
    for (int32_t j = 0; j < 1 + two; ++j) {
      int32_t q = p + j;
      int32_t oy = q / out_w, ox = q - oy * out_w;
      if (cols == NULL) {
        c[j] = x + (oy * stride_h * in_w + ox * stride_w) * in_c;
      } else {
        column(x, cols[j], oy, ox, in_h, in_w, in_c, k_h, k_w, stride_h, stride_w, pad_t, pad_l, dil_h, dil_w,
               x_zp);
        c[j] = cols[j];
      }
    }
    if (!two) c[1] = c[0];
    if (add == NULL) {
      pixel_pair_plain(c[0], c[1], w, table, y + p * out_c, y + (p + 1) * out_c, k, out_c, y_zp, lo, hi);
    } else {
      pixel_pair_add(c[0], c[1], w, table, y + p * out_c, y + (p + 1) * out_c, k, out_c, y_zp, lo, hi, add,
                     skip + p * out_c, skip + (p + 1) * out_c);
    }
  }
}

static void conv_any(const int8_t* x, const int8_t* w, const int32_t* table, int8_t* y, int32_t in_h,
                     int32_t in_w, int32_t in_c, int32_t out_h, int32_t out_w, int32_t out_c, int32_t k_h, int32_t k_w,
                     int32_t stride_h, int32_t stride_w, int32_t pad_t, int32_t pad_l, int32_t dil_h, int32_t dil_w,
                     int32_t x_zp, int32_t y_zp, int32_t lo, int32_t hi, const add_q* add, const int8_t* skip) {
  if (k_h == 1 && k_w == 1 && pad_t == 0 && pad_l == 0) {
    conv(x, w, table, y, in_h, in_w, in_c, out_h, out_w, out_c, k_h, k_w, stride_h, stride_w, pad_t, pad_l, dil_h,
         dil_w, x_zp, y_zp, lo, hi, NULL, add, skip);
  } else {
    int8_t cols[2][TVMP_S8_COLUMN_MAX];
    conv(x, w, table, y, in_h, in_w, in_c, out_h, out_w, out_c, k_h, k_w, stride_h, stride_w, pad_t, pad_l, dil_h,
         dil_w, x_zp, y_zp, lo, hi, cols, add, skip);
  }
}

int32_t tvmp_s8_conv2d(const int8_t* x, const int8_t* w, const int32_t* table, int8_t* y, int32_t in_h,
                       int32_t in_w, int32_t in_c, int32_t out_h, int32_t out_w, int32_t out_c, int32_t k_h,
                       int32_t k_w, int32_t stride_h, int32_t stride_w, int32_t pad_t, int32_t pad_l,
                       int32_t dil_h, int32_t dil_w, int32_t x_zp, int32_t y_zp, int32_t lo, int32_t hi) {
  conv_any(x, w, table, y, in_h, in_w, in_c, out_h, out_w, out_c, k_h, k_w, stride_h, stride_w, pad_t, pad_l, dil_h,
           dil_w, x_zp, y_zp, lo, hi, NULL, y);
  return 0;
}

int32_t tvmp_s8_conv2d_add(const int8_t* x, const int8_t* w, const int32_t* table, const int8_t* skip, int8_t* y,
                           int32_t in_h, int32_t in_w, int32_t in_c, int32_t out_h, int32_t out_w, int32_t out_c,
                           int32_t k_h, int32_t k_w, int32_t stride_h, int32_t stride_w, int32_t pad_t,
                           int32_t pad_l, int32_t dil_h, int32_t dil_w, int32_t x_zp, int32_t y_zp, int32_t lo,
                           int32_t hi, int32_t conv_first, int32_t zp1, int32_t zp2, int32_t left, int32_t m1,
                           int32_t s1, int32_t m2, int32_t s2, int32_t m_out, int32_t s_out, int32_t zp_out,
                           int32_t lo_out, int32_t hi_out, int32_t sign) {
  add_q add = {conv_first, zp1,    zp2,    left,   shift_q(m1, s1), shift_q(m2, s2), shift_q(m_out, s_out),
               zp_out,     lo_out, hi_out, sign};
  conv_any(x, w, table, y, in_h, in_w, in_c, out_h, out_w, out_c, k_h, k_w, stride_h, stride_w, pad_t, pad_l, dil_h,
           dil_w, x_zp, y_zp, lo, hi, &add, skip);
  return 0;
}

/* ---- depthwise ---------------------------------------------------------------------- */

#if TVMP_S8_SIMD
/* Four channels of one depthwise output over taps [ky0, ky1) x [kx0, kx1); acc gets channels
 * 0, 1, 2, 3. x points at tap (0, 0) of channel 0 (it may lie outside the input: only the
 * taps inside are read). */
static inline __attribute__((always_inline)) void taps4(const int8_t* x, const int8_t* w, int32_t in_w, int32_t c,
                                                        int32_t k_w, int32_t ky0, int32_t ky1, int32_t kx0,
                                                        int32_t kx1, int32_t dil_h, int32_t dil_w, uint32_t nzp,
                                                        int32_t* acc) {
  int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
#pragma GCC unroll 3
  for (int32_t ky = ky0; ky < ky1; ++ky) {
    const int8_t* xr = x + ky * dil_h * in_w * c;
    const int8_t* wr = w + ky * k_w * c;
#pragma GCC unroll 3
    for (int32_t kx = kx0; kx < kx1; ++kx) {
      uint32_t xv = read4(xr + kx * dil_w * c), wv = read4(wr + kx * c);
      int32_t x02 = __sxtab16(nzp, xv), x13 = add_lanes13(nzp, xv);
      int32_t w02 = lanes02(wv), w13 = lanes13(wv);
      a0 = __smlabb(x02, w02, a0);
      a2 = __smlatt(x02, w02, a2);
      a1 = __smlabb(x13, w13, a1);
      a3 = __smlatt(x13, w13, a3);
    }
  }
  acc[0] = a0;
  acc[1] = a1;
  acc[2] = a2;
  acc[3] = a3;
}
#endif

/* One output row of a depthwise conv (channel multiplier 1) into row: out_w * c bytes. */
static inline __attribute__((always_inline)) void depthwise_row(
    const int8_t* x, const int8_t* w, const int32_t* table, int8_t* row, int32_t oy, int32_t in_h, int32_t in_w,
    int32_t c, int32_t out_w, int32_t k_h, int32_t k_w, int32_t stride_h, int32_t stride_w, int32_t pad_t,
    int32_t pad_l, int32_t dil_h, int32_t dil_w, int32_t x_zp, int32_t y_zp, int32_t lo, int32_t hi) {
  int32_t iy0 = oy * stride_h - pad_t;
  int32_t ky0 = 0, ky1 = k_h;
  while (ky0 < k_h && iy0 + ky0 * dil_h < 0) ++ky0;
  while (ky1 > ky0 && iy0 + (ky1 - 1) * dil_h >= in_h) --ky1;
#if TVMP_S8_SIMD
  uint32_t nzp = (uint32_t)(uint16_t)(int16_t)(-x_zp) * 0x00010001u;
#endif
  for (int32_t ox = 0; ox < out_w; ++ox) {
    int32_t ix0 = ox * stride_w - pad_l;
    int32_t kx0 = 0, kx1 = k_w;
    while (kx0 < k_w && ix0 + kx0 * dil_w < 0) ++kx0;
    while (kx1 > kx0 && ix0 + (kx1 - 1) * dil_w >= in_w) --kx1;
    int8_t* out = row + ox * c;
    int32_t ch = 0;
#if TVMP_S8_SIMD
    /* inside the input every tap is read: constant bounds (a 3x3 window unrolls) */
    const int32_t inside = ky0 == 0 && ky1 == k_h && kx0 == 0 && kx1 == k_w;
    for (; ch + 4 <= c; ch += 4) {
      int32_t acc[4] = {0, 0, 0, 0};
      if (inside) {
        taps4(x + (iy0 * in_w + ix0) * c + ch, w + ch, in_w, c, k_w, 0, k_h, 0, k_w, dil_h, dil_w, nzp, acc);
      } else {
        taps4(x + (iy0 * in_w + ix0) * c + ch, w + ch, in_w, c, k_w, ky0, ky1, kx0, kx1, dil_h, dil_w, nzp, acc);
      }
      int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
      out[ch] = requantize(a0, channel(table, c, ch), y_zp, lo, hi);
      out[ch + 1] = requantize(a1, channel(table, c, ch + 1), y_zp, lo, hi);
      out[ch + 2] = requantize(a2, channel(table, c, ch + 2), y_zp, lo, hi);
      out[ch + 3] = requantize(a3, channel(table, c, ch + 3), y_zp, lo, hi);
    }
#endif
    for (; ch < c; ++ch) {
      int32_t a = 0;
      for (int32_t ky = ky0; ky < ky1; ++ky) {
        const int8_t* xr = x + ((iy0 + ky * dil_h) * in_w + ix0) * c + ch;
        const int8_t* wr = w + ky * k_w * c + ch;
        for (int32_t kx = kx0; kx < kx1; ++kx) a += (xr[kx * dil_w * c] - x_zp) * wr[kx * c];
      }
      out[ch] = requantize(a, channel(table, c, ch), y_zp, lo, hi);
    }
  }
}

/* depthwise_row compiled for a 3x3 window without dilation (taps unrolled) and for any */
static __attribute__((noinline)) void depthwise_row_3x3(const int8_t* x, const int8_t* w, const int32_t* table,
                                                        int8_t* row, int32_t oy, int32_t in_h, int32_t in_w,
                                                        int32_t c, int32_t out_w, int32_t stride_h,
                                                        int32_t stride_w, int32_t pad_t, int32_t pad_l,
                                                        int32_t x_zp, int32_t y_zp, int32_t lo, int32_t hi) {
  depthwise_row(x, w, table, row, oy, in_h, in_w, c, out_w, 3, 3, stride_h, stride_w, pad_t, pad_l, 1, 1, x_zp,
                y_zp, lo, hi);
}

static __attribute__((noinline)) void depthwise_row_any(const int8_t* x, const int8_t* w, const int32_t* table,
                                                        int8_t* row, int32_t oy, int32_t in_h, int32_t in_w,
                                                        int32_t c, int32_t out_w, int32_t k_h, int32_t k_w,
                                                        int32_t stride_h, int32_t stride_w, int32_t pad_t,
                                                        int32_t pad_l, int32_t dil_h, int32_t dil_w, int32_t x_zp,
                                                        int32_t y_zp, int32_t lo, int32_t hi) {
  depthwise_row(x, w, table, row, oy, in_h, in_w, c, out_w, k_h, k_w, stride_h, stride_w, pad_t, pad_l, dil_h,
                dil_w, x_zp, y_zp, lo, hi);
}

int32_t tvmp_s8_depthwise(const int8_t* x, const int8_t* w, const int32_t* table, int8_t* y, int32_t in_h,
                          int32_t in_w, int32_t c, int32_t out_h, int32_t out_w, int32_t k_h, int32_t k_w,
                          int32_t stride_h, int32_t stride_w, int32_t pad_t, int32_t pad_l, int32_t dil_h,
                          int32_t dil_w, int32_t x_zp, int32_t y_zp, int32_t lo, int32_t hi) {
  /* each output row goes through rows[oy % 2] and is stored one row later, when the next
   * row has read the input it overwrites (y may be x: the compiler checks that one row of
   * delay is enough, passes/int8_dsp.py) */
  int8_t rows[2][TVMP_S8_DW_ROW_MAX];
  const int32_t bytes = out_w * c;
  for (int32_t oy = 0; oy < out_h; ++oy) {
    if (k_h == 3 && k_w == 3 && dil_h == 1 && dil_w == 1) {
      depthwise_row_3x3(x, w, table, rows[oy & 1], oy, in_h, in_w, c, out_w, stride_h, stride_w, pad_t, pad_l, x_zp,
                        y_zp, lo, hi);
    } else {
      depthwise_row_any(x, w, table, rows[oy & 1], oy, in_h, in_w, c, out_w, k_h, k_w, stride_h, stride_w, pad_t,
                        pad_l, dil_h, dil_w, x_zp, y_zp, lo, hi);
    }
    if (oy > 0) memcpy(y + (oy - 1) * bytes, rows[(oy - 1) & 1], (size_t)bytes);
  }
  if (out_h > 0) memcpy(y + (out_h - 1) * bytes, rows[(out_h - 1) & 1], (size_t)bytes);
  return 0;
}
