// SPDX-License-Identifier: GPL-2.0
/*
 * ML_OP_FC: fully connected (docs/arithmetic.md, FC).
 *
 * This op dominates inference time, so it is the one place written for
 * speed: up to twelve output rows share each load of x[i], two rows share
 * each multiply (ml_lib_pack2() in ops.h), the accumulators live in
 * registers, and the inner loops have no calls or branches. The weights
 * are stored in row blocks (ml_lib_fc_block_rows(), docs/blob-format.md):
 * the weights of a block that x[i] meets are adjacent, so one pointer
 * walks the whole block. Partial sums stay in s32 because the validator
 * enforced the accumulator bound |bias| + sum |w| * 2^(bits - 1) <= 2^31 - 1.
 */
#include "../ops.h"

/*
 * One output: requantize, add the zero point, clamp, store. Takes its
 * parameters as values: a store to an s8 output may alias anything, so
 * reading them through @p would reload them after every store.
 */
static __always_inline void ml_lib_fc_emit(const s32 *mult, const u8 *shift,
					   s32 zy, s32 lo, s32 hi, u8 dtype,
					   void *y, u32 c, s32 acc)
{
	s64 v = zy + ml_lib_rq(acc, mult[c], shift[c]);

	ml_lib_store(y, dtype, c, (s32)ml_lib_clamp(v, lo, hi));
}

/* Outputs @c and @c + 1 from the two lanes of @acc. */
static __always_inline void ml_lib_fc_emit2(const s32 *mult, const u8 *shift,
					    s32 zy, s32 lo, s32 hi, u8 dtype,
					    void *y, u32 c, u64 acc)
{
	ml_lib_fc_emit(mult, shift, zy, lo, hi, dtype, y, c, ml_lib_lane_a(acc));
	ml_lib_fc_emit(mult, shift, zy, lo, hi, dtype, y, c + 1, ml_lib_lane_b(acc));
}

/*
 * One row block of @R rows (even, at most 12, a constant once inlined)
 * starting at row @c: @wb points at its weights, w[c + r][i] at
 * wb[i * R + r]. Lane pair k holds rows c + 2k and c + 2k + 1; the
 * "if (R > ...)" tests fold away at compile time.
 */
static __always_inline void ml_lib_fc_block(const s8 *__restrict wb, const s32 *bias,
					    const s32 *mult, const u8 *shift, s32 zy,
					    s32 lo, s32 hi, u8 dt,
					    const void *__restrict x, void *__restrict y,
					    u32 n, u32 c, const u32 R, const bool x16)
{
	const s32 *b = bias + c;
	u64 a0 = ml_lib_pack2(b[0], b[1]), a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0;
	u32 i;

	if (R > 2)
		a1 = ml_lib_pack2(b[2], b[3]);
	if (R > 4)
		a2 = ml_lib_pack2(b[4], b[5]);
	if (R > 6)
		a3 = ml_lib_pack2(b[6], b[7]);
	if (R > 8)
		a4 = ml_lib_pack2(b[8], b[9]);
	if (R > 10)
		a5 = ml_lib_pack2(b[10], b[11]);
	for (i = 0; i < n; i++, wb += R) {
		u64 xi = (u64)(s64)ml_lib_load_act(x, i, x16);

		a0 += ml_lib_pack2(wb[0], wb[1]) * xi;
		if (R > 2)
			a1 += ml_lib_pack2(wb[2], wb[3]) * xi;
		if (R > 4)
			a2 += ml_lib_pack2(wb[4], wb[5]) * xi;
		if (R > 6)
			a3 += ml_lib_pack2(wb[6], wb[7]) * xi;
		if (R > 8)
			a4 += ml_lib_pack2(wb[8], wb[9]) * xi;
		if (R > 10)
			a5 += ml_lib_pack2(wb[10], wb[11]) * xi;
	}
	ml_lib_fc_emit2(mult, shift, zy, lo, hi, dt, y, c, a0);
	if (R > 2)
		ml_lib_fc_emit2(mult, shift, zy, lo, hi, dt, y, c + 2, a1);
	if (R > 4)
		ml_lib_fc_emit2(mult, shift, zy, lo, hi, dt, y, c + 4, a2);
	if (R > 6)
		ml_lib_fc_emit2(mult, shift, zy, lo, hi, dt, y, c + 6, a3);
	if (R > 8)
		ml_lib_fc_emit2(mult, shift, zy, lo, hi, dt, y, c + 8, a4);
	if (R > 10)
		ml_lib_fc_emit2(mult, shift, zy, lo, hi, dt, y, c + 10, a5);
}

/* Always inlined with a constant @x16, so each input dtype gets its own loops. */
static __always_inline void ml_lib_fc_rows(const struct ml_lib_fc_params *p,
					   const struct ml_lib_tensor *ty,
					   const void *__restrict x,
					   void *__restrict y, const bool x16)
{
	const u32 n = p->n_in, n_out = p->n_out;
	const s32 *mult = p->mult, *bias = p->bias;
	const u8 *shift = p->shift;
	const s32 zy = ty->zero_point, lo = p->lo, hi = p->hi;
	const u8 dt = ty->dtype;
	const s8 *w = p->w;
	u32 c, i;

	/*
	 * The blocks of ml_lib_fc_block_rows(), written out: 12, ..., 12, then
	 * the even rest, then 1. (Calling it once per block in one loop cost
	 * 3 % on mlp-15-10-1 in make bench's engine; the row-block tests and
	 * the differential tests check both against the toolchain's rule.)
	 */
#define ML_LIB_FC_BLOCK(R)							\
	ml_lib_fc_block(w + (size_t)c * n, bias, mult, shift, zy, lo, hi, dt,	\
			x, y, n, c, R, x16)
	for (c = 0; c + ML_LIB_FC_BLOCK_MAX <= n_out; c += ML_LIB_FC_BLOCK_MAX)
		ML_LIB_FC_BLOCK(ML_LIB_FC_BLOCK_MAX);
	switch ((n_out - c) & ~1U) {
	case 10:
		ML_LIB_FC_BLOCK(10);
		break;
	case 8:
		ML_LIB_FC_BLOCK(8);
		break;
	case 6:
		ML_LIB_FC_BLOCK(6);
		break;
	case 4:
		ML_LIB_FC_BLOCK(4);
		break;
	case 2:
		ML_LIB_FC_BLOCK(2);
		break;
	}
#undef ML_LIB_FC_BLOCK
	c += (n_out - c) & ~1U;
	if (c < n_out) {	/* an odd last row, e.g. a single regression output */
		const s8 *__restrict w0 = w + (size_t)c * n;
		s32 a0 = bias[c];

		for (i = 0; i < n; i++)
			a0 += w0[i] * ml_lib_load_act(x, i, x16);
		ml_lib_fc_emit(mult, shift, zy, lo, hi, dt, y, c, a0);
	}
}

void ml_lib_op_fc(const struct ml_lib_op *op, const struct ml_lib_tensor *tensors,
		  u8 *arena)
{
	const struct ml_lib_fc_params *p = &op->u.fc;
	const struct ml_lib_tensor *ty = &tensors[op->out];
	const struct ml_lib_tensor *tx = &tensors[op->in[0]];
	const void *x = ml_lib_tensor_ptr(arena, tx);
	void *y = ml_lib_tensor_ptr(arena, ty);

	if (tx->dtype == ML_LIB_S8)
		ml_lib_fc_rows(p, ty, x, y, false);
	else
		ml_lib_fc_rows(p, ty, x, y, true);
}
