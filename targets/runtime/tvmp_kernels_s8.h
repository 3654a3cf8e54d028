/*
 * tvm-patch int8 micro-kernels: convolutions that TVM's loops run without SIMD multiplies.
 *
 * The compiler (passes/int8_dsp.py) replaces a fused int8 conv + requantize kernel by a
 * PrimFunc whose body is one call of these functions (`T.call_extern`), with the layer's
 * geometry and quantization as arguments. The arithmetic is the TIR kernel's, exactly:
 *
 *   acc[n] = bias[n] + sum_k (x[k] - x_zp) * w[n][k]      (padding contributes 0)
 *          = (bias[n] - x_zp * sum_k w[n][k]) + sum_k x[k] * w[n][k]   (padding reads x_zp)
 *   y      = clamp(MultiplyByQuantizedMultiplier(acc, m[n], s[n]) + y_zp, lo, hi)
 *
 * The compiler folds the zero-point term into the bias (the weights are constants) and
 * passes that folded bias; TFLM's double rounding is one int64 multiply-add-shift
 * (passes/int8_kernels.py, `mbqm`). On a core with the DSP extension (__ARM_FEATURE_DSP:
 * Cortex-M4, M7, M33) the dot products run two multiply-accumulates per SMLAD on int8
 * lanes sign-extended in pairs by SXTB16; elsewhere (host, Cortex-M3) the same sums are
 * plain C. The sums are exact int32 in both (wrapping alike), so both give identical bytes.
 *
 * Weight layout (written at compile time): out_c rows of k = k_h * k_w * in_c terms in
 * (ky, kx, c) order; each pair of rows (2j, 2j + 1) is interleaved in groups of four terms
 * (4 of row 2j, 4 of row 2j + 1, ...), then the k % 4 last terms of row 2j, then of row
 * 2j + 1. An odd last row stays as it is. One pointer then walks both filters.
 *
 * The convolutions are in tvmp_kernels_s8.c, the depthwise convolution in tvmp_kernels_s8_dw.c;
 * the requantization and SIMD lane helpers they share in tvmp_kernels_s8_internal.h.
 */
#ifndef TVMP_KERNELS_S8_H_
#define TVMP_KERNELS_S8_H_

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Largest kh * kw * c_in a convolution that is not 1x1 may have: two im2col columns of
 * this many bytes live on the stack. */
#define TVMP_S8_COLUMN_MAX 1152

/* Largest out_w * c of a depthwise conv: two output rows of this many bytes live on the stack. */
#define TVMP_S8_DW_ROW_MAX 1024

/* NHWC conv2d, batch 1, groups 1. x [in_h, in_w, in_c]; w [out_c * k] in the layout above;
 * table [out_c, 6] int32, per channel: folded bias, multiplier, left shift (max(shift, 0), at
 * most 30), right shift e (max(-shift, 0), at most 31), 2^30 + 2^(30 + e) as low, high word; y [out_h, out_w, out_c].
 * pad_t / pad_l: rows above and columns left of the input (bottom and right padding are
 * what lies past in_h / in_w). Returns 0. */
int32_t tvmp_s8_conv2d(const int8_t* x, const int8_t* w, const int32_t* table, int8_t* y, int32_t in_h,
                       int32_t in_w, int32_t in_c, int32_t out_h, int32_t out_w, int32_t out_c, int32_t k_h,
                       int32_t k_w, int32_t stride_h, int32_t stride_w, int32_t pad_t, int32_t pad_l,
                       int32_t dil_h, int32_t dil_w, int32_t x_zp, int32_t y_zp, int32_t lo, int32_t hi);

/* tvmp_s8_conv2d, then TFLM's int8 ADD (sign 1) or SUB (sign -1) of its output with skip
 * [out_h, out_w, out_c] (first operand: the conv's when conv_first), each operand
 * (q - zp) << left rescaled by (m, s), the sum by (m_out, s_out), + zp_out, clamped to
 * [lo_out, hi_out]. y may be skip (in place: each element is read before it is written). */
int32_t tvmp_s8_conv2d_add(const int8_t* x, const int8_t* w, const int32_t* table, const int8_t* skip, int8_t* y,
                           int32_t in_h, int32_t in_w, int32_t in_c, int32_t out_h, int32_t out_w, int32_t out_c,
                           int32_t k_h, int32_t k_w, int32_t stride_h, int32_t stride_w, int32_t pad_t,
                           int32_t pad_l, int32_t dil_h, int32_t dil_w, int32_t x_zp, int32_t y_zp, int32_t lo,
                           int32_t hi, int32_t conv_first, int32_t zp1, int32_t zp2, int32_t left, int32_t m1,
                           int32_t s1, int32_t m2, int32_t s2, int32_t m_out, int32_t s_out, int32_t zp_out,
                           int32_t lo_out, int32_t hi_out, int32_t sign);

/* NHWC depthwise conv2d, batch 1, channel multiplier 1: x [in_h, in_w, c]; w [k_h, k_w, c];
 * table [c, 6] as for tvmp_s8_conv2d, but the bias not folded (the kernel subtracts x_zp
 * itself, SXTAB16); y [out_h, out_w, c]. Each output row is stored one row after it is computed, so y
 * may be x when no row after the next reads what a stored row overwrites (the compiler
 * checks). Four channels at a time on SMLABB / SMLATT with the DSP extension. */
int32_t tvmp_s8_depthwise(const int8_t* x, const int8_t* w, const int32_t* table, int8_t* y, int32_t in_h,
                          int32_t in_w, int32_t c, int32_t out_h, int32_t out_w, int32_t k_h, int32_t k_w,
                          int32_t stride_h, int32_t stride_w, int32_t pad_t, int32_t pad_l, int32_t dil_h,
                          int32_t dil_w, int32_t x_zp, int32_t y_zp, int32_t lo, int32_t hi);

#ifdef __cplusplus
}
#endif

#endif /* TVMP_KERNELS_S8_H_ */
