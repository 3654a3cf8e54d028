/* tvm-patch int8 micro-kernels, depthwise convolutions with channel multiplier 1 (see
 * tvmp_kernels_s8.h for what they compute; the other convolutions: tvmp_kernels_s8.c). */
#include "tvmp_kernels_s8.h"

#include <stddef.h>
#include <string.h>

#include "tvmp_kernels_s8_internal.h"

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
