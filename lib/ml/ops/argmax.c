// SPDX-License-Identifier: GPL-2.0
/*
 * ML_OP_ARGMAX: y[o] = the smallest index of the row maximum
 * (docs/arithmetic.md, ARGMAX). y is s32. Parameters live in
 * &struct ml_lib_softmax_params (outer, n), the struct with that layout.
 */
#include "../ops.h"

void ml_lib_op_argmax(const struct ml_lib_op *op, const struct ml_lib_tensor *tensors,
		      u8 *arena)
{
	const struct ml_lib_tensor *tx = &tensors[op->in[0]];
	const void *x = ml_lib_tensor_ptr(arena, tx);
	s32 *y = ml_lib_tensor_ptr(arena, &tensors[op->out]);
	u32 outer = op->u.softmax.outer, n = op->u.softmax.n;
	u32 o, i;

	for (o = 0; o < outer; o++) {
		u32 base = o * n, best = 0;
		s32 m = ml_lib_load(x, tx->dtype, base);

		for (i = 1; i < n; i++) {
			s32 v = ml_lib_load(x, tx->dtype, base + i);

			/* Strictly greater: ties keep the smallest index. */
			if (v > m) {
				m = v;
				best = i;
			}
		}
		y[o] = (s32)best;
	}
}
