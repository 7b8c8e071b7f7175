// SPDX-License-Identifier: GPL-2.0
/*
 * ML_OP_FC: fully connected (docs/arithmetic.md, FC).
 *
 * This op dominates inference time, so it is the one place written for
 * speed: four output rows share each load of x[i], the accumulators live
 * in registers, and the inner loops have no calls or branches. Partial sums
 * stay in s32 because the validator enforced the accumulator bound
 * |bias| + sum |w| * 2^(bits - 1) <= 2^31 - 1.
 */
#include "../ops.h"

/* One output: requantize, add the zero point, clamp, store. */
static __always_inline void ml_lib_fc_emit(const struct ml_lib_fc_params *p,
					   const struct ml_lib_tensor *ty,
					   void *y, u32 c, s32 acc)
{
	s64 v = ty->zero_point + ml_lib_rq(acc, p->mult[c], p->shift[c]);

	ml_lib_store(y, ty->dtype, c, (s32)ml_lib_clamp(v, p->lo, p->hi));
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
	const u32 n = p->n_in;
	u32 c, i;

	for (c = 0; c + 4 <= p->n_out; c += 4) {
		const s8 *__restrict w0 = p->w + (size_t)c * n;
		const s8 *__restrict w1 = w0 + n;
		const s8 *__restrict w2 = w1 + n;
		const s8 *__restrict w3 = w2 + n;
		s32 a0 = p->bias[c], a1 = p->bias[c + 1];
		s32 a2 = p->bias[c + 2], a3 = p->bias[c + 3];

		for (i = 0; i < n; i++) {
			s32 xi = ml_lib_fc_x(x, i, x16);

			a0 += w0[i] * xi;
			a1 += w1[i] * xi;
			a2 += w2[i] * xi;
			a3 += w3[i] * xi;
		}
		ml_lib_fc_emit(p, ty, y, c, a0);
		ml_lib_fc_emit(p, ty, y, c + 1, a1);
		ml_lib_fc_emit(p, ty, y, c + 2, a2);
		ml_lib_fc_emit(p, ty, y, c + 3, a3);
	}
	for (; c < p->n_out; c++) {
		const s8 *__restrict w0 = p->w + (size_t)c * n;
		s32 a0 = p->bias[c];

		for (i = 0; i < n; i++)
			a0 += w0[i] * ml_lib_fc_x(x, i, x16);
		ml_lib_fc_emit(p, ty, y, c, a0);
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
