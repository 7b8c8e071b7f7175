// SPDX-License-Identifier: GPL-2.0
/*
 * ML_OP_FC: fully connected (docs/arithmetic.md, FC).
 *
 * This op dominates inference time, so it is the one place written for
 * speed: twelve output rows share each load of x[i], two rows share each
 * multiply (ml_lib_pack2() in ops.h), the accumulators live in registers,
 * and the inner loops have no calls or branches. Partial sums stay in s32
 * because the validator enforced the accumulator bound
 * |bias| + sum |w| * 2^(bits - 1) <= 2^31 - 1.
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

/* x[i] of an s8 (@x16 false) or s16 (@x16 true) input; @x16 is a constant. */
static __always_inline s32 ml_lib_fc_x(const void *__restrict x, u32 i,
				       const bool x16)
{
	return x16 ? ((const s16 *)x)[i] : ((const s8 *)x)[i];
}

/* Always inlined with a constant @x16, so each input dtype gets its own loop. */
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
	 * Twelve rows per pass over x: one load of x[i] feeds six multiplies
	 * of two rows each. The rows are addressed from one pointer, which
	 * leaves registers for the six accumulators. (Measured: 12 rows beat
	 * 8 by 4-9 %, 8 beat 4 by 7 %; the frame stays within the stack budget.)
	 */
	for (c = 0; c + 12 <= n_out; c += 12) {
		const s8 *__restrict wr = w + (size_t)c * n;
		u64 a01 = ml_lib_pack2(bias[c], bias[c + 1]);
		u64 a23 = ml_lib_pack2(bias[c + 2], bias[c + 3]);
		u64 a45 = ml_lib_pack2(bias[c + 4], bias[c + 5]);
		u64 a67 = ml_lib_pack2(bias[c + 6], bias[c + 7]);
		u64 a89 = ml_lib_pack2(bias[c + 8], bias[c + 9]);
		u64 aab = ml_lib_pack2(bias[c + 10], bias[c + 11]);

		for (i = 0; i < n; i++) {
			u64 xi = (u64)(s64)ml_lib_fc_x(x, i, x16);
			const s8 *wi = wr + i;

			a01 += ml_lib_pack2(wi[0], wi[n]) * xi;
			a23 += ml_lib_pack2(wi[2 * n], wi[3 * n]) * xi;
			a45 += ml_lib_pack2(wi[4 * n], wi[5 * n]) * xi;
			a67 += ml_lib_pack2(wi[6 * n], wi[7 * n]) * xi;
			a89 += ml_lib_pack2(wi[8 * n], wi[9 * n]) * xi;
			aab += ml_lib_pack2(wi[10 * n], wi[11 * n]) * xi;
		}
		ml_lib_fc_emit(mult, shift, zy, lo, hi, dt, y, c, ml_lib_lane_a(a01));
		ml_lib_fc_emit(mult, shift, zy, lo, hi, dt, y, c + 1, ml_lib_lane_b(a01));
		ml_lib_fc_emit(mult, shift, zy, lo, hi, dt, y, c + 2, ml_lib_lane_a(a23));
		ml_lib_fc_emit(mult, shift, zy, lo, hi, dt, y, c + 3, ml_lib_lane_b(a23));
		ml_lib_fc_emit(mult, shift, zy, lo, hi, dt, y, c + 4, ml_lib_lane_a(a45));
		ml_lib_fc_emit(mult, shift, zy, lo, hi, dt, y, c + 5, ml_lib_lane_b(a45));
		ml_lib_fc_emit(mult, shift, zy, lo, hi, dt, y, c + 6, ml_lib_lane_a(a67));
		ml_lib_fc_emit(mult, shift, zy, lo, hi, dt, y, c + 7, ml_lib_lane_b(a67));
		ml_lib_fc_emit(mult, shift, zy, lo, hi, dt, y, c + 8, ml_lib_lane_a(a89));
		ml_lib_fc_emit(mult, shift, zy, lo, hi, dt, y, c + 9, ml_lib_lane_b(a89));
		ml_lib_fc_emit(mult, shift, zy, lo, hi, dt, y, c + 10, ml_lib_lane_a(aab));
		ml_lib_fc_emit(mult, shift, zy, lo, hi, dt, y, c + 11, ml_lib_lane_b(aab));
	}
	for (; c + 4 <= n_out; c += 4) {
		const s8 *__restrict w0 = w + (size_t)c * n;
		const s8 *__restrict w1 = w0 + n;
		const s8 *__restrict w2 = w1 + n;
		const s8 *__restrict w3 = w2 + n;
		u64 a01 = ml_lib_pack2(bias[c], bias[c + 1]);
		u64 a23 = ml_lib_pack2(bias[c + 2], bias[c + 3]);

		for (i = 0; i < n; i++) {
			u64 xi = (u64)(s64)ml_lib_fc_x(x, i, x16);

			a01 += ml_lib_pack2(w0[i], w1[i]) * xi;
			a23 += ml_lib_pack2(w2[i], w3[i]) * xi;
		}
		ml_lib_fc_emit(mult, shift, zy, lo, hi, dt, y, c, ml_lib_lane_a(a01));
		ml_lib_fc_emit(mult, shift, zy, lo, hi, dt, y, c + 1, ml_lib_lane_b(a01));
		ml_lib_fc_emit(mult, shift, zy, lo, hi, dt, y, c + 2, ml_lib_lane_a(a23));
		ml_lib_fc_emit(mult, shift, zy, lo, hi, dt, y, c + 3, ml_lib_lane_b(a23));
	}
	if (c + 2 <= n_out) {	/* e.g. the two logits of a classifier */
		const s8 *__restrict w0 = w + (size_t)c * n;
		const s8 *__restrict w1 = w0 + n;
		u64 a01 = ml_lib_pack2(bias[c], bias[c + 1]);

		for (i = 0; i < n; i++)
			a01 += ml_lib_pack2(w0[i], w1[i]) * (u64)(s64)ml_lib_fc_x(x, i, x16);
		ml_lib_fc_emit(mult, shift, zy, lo, hi, dt, y, c, ml_lib_lane_a(a01));
		ml_lib_fc_emit(mult, shift, zy, lo, hi, dt, y, c + 1, ml_lib_lane_b(a01));
		c += 2;
	}
	for (; c < n_out; c++) {
		const s8 *__restrict w0 = w + (size_t)c * n;
		s32 a0 = bias[c];

		for (i = 0; i < n; i++)
			a0 += w0[i] * ml_lib_fc_x(x, i, x16);
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
