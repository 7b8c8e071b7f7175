/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Internal interface of the ml_lib engine: one function per op (lib/ml/ops/)
 * and the integer helpers of docs/arithmetic.md they share.
 *
 * Every op function trusts that ml_lib_graph_validate() accepted the graph:
 * indices, lengths, dtypes, parameter ranges and accumulator bounds are not
 * re-checked here. Op functions touch only the caller's arena, in and out.
 */
#ifndef _ML_LIB_OPS_H
#define _ML_LIB_OPS_H

#ifdef __KERNEL__
#include <linux/kernel.h>
#include <linux/math64.h>
#endif
#include <linux/ml_lib.h>

/* Tensor storage: base pointer of tensor @t in @arena. */
static inline void *ml_lib_tensor_ptr(u8 *arena, const struct ml_lib_tensor *t)
{
	return arena + t->offset;
}

/*
 * rq(v, M, t) = floor((v * M + 2^(t - 1)) / 2^t); the validator bounds
 * |v * M| < 2^62 and 1 <= t <= 62. Computed as
 * floor((floor(v * M / 2^(t - 1)) + 1) / 2), the same integer (the bits
 * below 2^(t - 1) can never carry into the final quotient), in three cheap
 * instructions instead of building the constant 2^(t - 1) for every call.
 */
static __always_inline s64 ml_lib_rq(s64 v, s32 mult, u32 shift)
{
	return ((v * mult >> (shift - 1)) + 1) >> 1;
}

static __always_inline s64 ml_lib_clamp(s64 v, s64 lo, s64 hi)
{
	return v < lo ? lo : (v > hi ? hi : v);
}

/*
 * Two s32 accumulators in one u64 ("lanes"), so one 64-bit multiply does
 * two multiply-adds: for weights wa, wb and input x,
 *   acc += ml_lib_pack2(wa, wb) * x   (mod 2^64)
 * keeps acc == A + B * 2^32 (mod 2^64) for the exact sums A, B. The
 * accumulator bound (validated) keeps |A|, |B| < 2^31 at every step, so
 * the low 32 bits are exactly A and (acc - A) >> 32 is exactly B. All the
 * arithmetic is unsigned, so wrap-around is defined; the integer multiplier
 * of a CPU is what limits FC and CONV1D, and this halves its work.
 */
static __always_inline u64 ml_lib_pack2(s32 a, s32 b)
{
	return (u64)(s64)a + ((u64)(s64)b << 32);
}

static __always_inline s32 ml_lib_lane_a(u64 acc)
{
	return (s32)(u32)acc;
}

static __always_inline s32 ml_lib_lane_b(u64 acc)
{
	return (s32)(u32)((acc - (u64)(s64)ml_lib_lane_a(acc)) >> 32);
}

/*
 * FC weight storage (docs/blob-format.md): the rows form blocks of
 * ML_LIB_FC_BLOCK_MAX, then one block of the even part of the rest, then
 * one of a single row; in a block of R rows that starts at row c0,
 * w[c][i] is stored at c0 * n_in + i * R + (c - c0). Rows in the block
 * that starts at row @c0 of an FC with @n_out rows:
 */
#define ML_LIB_FC_BLOCK_MAX	12

static inline u32 ml_lib_fc_block_rows(u32 n_out, u32 c0)
{
	u32 rest = n_out - c0;

	if (rest >= ML_LIB_FC_BLOCK_MAX)
		return ML_LIB_FC_BLOCK_MAX;
	return rest >= 2 ? rest & ~1U : 1;
}

static inline s32 ml_lib_qmin(u8 dtype)
{
	return dtype == ML_LIB_S8 ? -128 : dtype == ML_LIB_S16 ? -32768 : (s32)(-2147483647 - 1);
}

static inline s32 ml_lib_qmax(u8 dtype)
{
	return dtype == ML_LIB_S8 ? 127 : dtype == ML_LIB_S16 ? 32767 : 2147483647;
}

static inline u32 ml_lib_dtype_size(u8 dtype)
{
	return dtype == ML_LIB_S8 ? 1 : dtype == ML_LIB_S16 ? 2 : 4;
}

/* Element @i of a tensor of any dtype, widened to s32. */
static __always_inline s32 ml_lib_load(const void *base, u8 dtype, u32 i)
{
	if (dtype == ML_LIB_S8)
		return ((const s8 *)base)[i];
	if (dtype == ML_LIB_S16)
		return ((const s16 *)base)[i];
	return ((const s32 *)base)[i];
}

/*
 * Element @i of an s8 (@x16 false) or s16 (@x16 true) activation, and its
 * address. Unlike ml_lib_load(), @x16 is a compile-time constant of each
 * inlined copy of an op's loops (FC, CONV1D, MAXPOOL1D), so the dtype test
 * folds away.
 */
static __always_inline s32 ml_lib_load_act(const void *x, u32 i, const bool x16)
{
	return x16 ? ((const s16 *)x)[i] : ((const s8 *)x)[i];
}

static __always_inline const void *ml_lib_act_ptr(const void *x, u32 i, const bool x16)
{
	return x16 ? (const void *)((const s16 *)x + i) : (const void *)((const s8 *)x + i);
}

/* Store @v, already clamped to the dtype's range, as element @i. */
static __always_inline void ml_lib_store(void *base, u8 dtype, u32 i, s32 v)
{
	if (dtype == ML_LIB_S8)
		((s8 *)base)[i] = (s8)v;
	else if (dtype == ML_LIB_S16)
		((s16 *)base)[i] = (s16)v;
	else
		((s32 *)base)[i] = v;
}

void ml_lib_op_input(const struct ml_lib_op *op, const struct ml_lib_tensor *tensors,
		     u8 *arena, const s64 *in);
void ml_lib_op_fc(const struct ml_lib_op *op, const struct ml_lib_tensor *tensors,
		  u8 *arena);
void ml_lib_op_conv1d(const struct ml_lib_op *op, const struct ml_lib_tensor *tensors,
		      u8 *arena);
void ml_lib_op_maxpool1d(const struct ml_lib_op *op, const struct ml_lib_tensor *tensors,
			 u8 *arena);
void ml_lib_op_avgpool1d(const struct ml_lib_op *op, const struct ml_lib_tensor *tensors,
			 u8 *arena);
void ml_lib_op_clamp(const struct ml_lib_op *op, const struct ml_lib_tensor *tensors,
		     u8 *arena);
void ml_lib_op_leaky_relu(const struct ml_lib_op *op, const struct ml_lib_tensor *tensors,
			  u8 *arena);
void ml_lib_op_lut(const struct ml_lib_op *op, const struct ml_lib_tensor *tensors,
		   u8 *arena);
void ml_lib_op_add(const struct ml_lib_op *op, const struct ml_lib_tensor *tensors,
		   u8 *arena);
void ml_lib_op_rescale(const struct ml_lib_op *op, const struct ml_lib_tensor *tensors,
		       u8 *arena);
void ml_lib_op_concat(const struct ml_lib_op *op, const struct ml_lib_tensor *tensors,
		      u8 *arena);
void ml_lib_op_reshape(const struct ml_lib_op *op, const struct ml_lib_tensor *tensors,
		       u8 *arena);
void ml_lib_op_softmax(const struct ml_lib_op *op, const struct ml_lib_tensor *tensors,
		       u8 *arena);
void ml_lib_op_argmax(const struct ml_lib_op *op, const struct ml_lib_tensor *tensors,
		      u8 *arena);
void ml_lib_op_output(const struct ml_lib_op *op, const struct ml_lib_tensor *tensors,
		      u8 *arena, s32 *out);

#endif /* _ML_LIB_OPS_H */
