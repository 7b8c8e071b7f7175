// SPDX-License-Identifier: GPL-2.0
/*
 * ML_OP_OUTPUT: tensor -> the caller's s32 output vector, either
 * dequantized to fixed point (mode 0) or copied (mode 1).
 */
#include "../ops.h"

void ml_lib_op_output(const struct ml_lib_op *op, const struct ml_lib_tensor *tensors,
		      u8 *arena, s32 *out)
{
	const struct ml_lib_output_params *p = &op->u.output;
	const struct ml_lib_tensor *tx = &tensors[op->in[0]];
	const void *x = ml_lib_tensor_ptr(arena, tx);
	s32 *o = out + p->out_off;
	u32 i;

	if (p->mode == 1) {
		for (i = 0; i < p->n; i++)
			o[i] = ml_lib_load(x, tx->dtype, i);
		return;
	}
	for (i = 0; i < p->n; i++) {
		s64 v = (s64)ml_lib_load(x, tx->dtype, i) - tx->zero_point;

		o[i] = (s32)ml_lib_clamp(ml_lib_rq(v, p->mult, p->shift),
					 -2147483647LL - 1, 2147483647LL);
	}
}
