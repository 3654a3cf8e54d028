/* tvm-patch int8 micro-kernels, convolutions (groups 1) with an optional fused ADD / SUB of a
 * skip tensor (see tvmp_kernels_s8.h for what they compute; depthwise: tvmp_kernels_s8_dw.c). */
#include "tvmp_kernels_s8.h"

#include <stddef.h>
#include <string.h>

#include "tvmp_kernels_s8_internal.h"

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
