// SPDX-License-Identifier: GPL-2.0
/*
 * ML_OP_SOFTMAX: integer softmax over rows of n (docs/arithmetic.md,
 * SOFTMAX). exp() is a table indexed by the distance to the row maximum;
 * the table values (<= 2^15) and n (<= 65535) keep the row sum S below
 * 2^31, and the largest element contributes table[0] >= 1, so S >= 1.
 */
#include "../ops.h"

void ml_lib_op_softmax(const struct ml_lib_op *op, const struct ml_lib_tensor *tensors,
		       u8 *arena)
{
	const struct ml_lib_softmax_params *p = &op->u.softmax;
	const struct ml_lib_tensor *tx = &tensors[op->in[0]];
	const struct ml_lib_tensor *ty = &tensors[op->out];
	const void *x = ml_lib_tensor_ptr(arena, tx);
	void *y = ml_lib_tensor_ptr(arena, ty);
	s64 lo = ml_lib_qmin(ty->dtype), hi = ml_lib_qmax(ty->dtype);
	u32 o, i;

	for (o = 0; o < p->outer; o++) {
		u32 base = o * p->n, sum = 0;
		s32 m = ml_lib_load(x, tx->dtype, base);

		for (i = 1; i < p->n; i++) {
			s32 v = ml_lib_load(x, tx->dtype, base + i);

			if (v > m)
				m = v;
		}
		/* Two passes over the row instead of a scratch copy of e[]. */
		for (i = 0; i < p->n; i++) {
			u32 d = (u32)(m - ml_lib_load(x, tx->dtype, base + i)) >> p->shift;

			sum += p->table[d < p->table_len ? d : p->table_len - 1];
		}
		for (i = 0; i < p->n; i++) {
			u32 d = (u32)(m - ml_lib_load(x, tx->dtype, base + i)) >> p->shift;
			u32 e = p->table[d < p->table_len ? d : p->table_len - 1];
			/* e * 2^bits + S / 2 < 2^30 + 2^30: fits u32. */
			s64 v = (s64)ty->zero_point + ((e << p->bits) + sum / 2) / sum;

			ml_lib_store(y, ty->dtype, base + i, (s32)ml_lib_clamp(v, lo, hi));
		}
	}
}
