// SPDX-License-Identifier: GPL-2.0
/*
 * ML_OP_MAXPOOL1D and ML_OP_AVGPOOL1D over [channel][position] tensors
 * (docs/arithmetic.md). No padding: every window lies inside the input.
 */
#include "../ops.h"

void ml_lib_op_maxpool1d(const struct ml_lib_op *op, const struct ml_lib_tensor *tensors,
			 u8 *arena)
{
	const struct ml_lib_pool1d_params *p = &op->u.pool;
	const struct ml_lib_tensor *tx = &tensors[op->in[0]];
	const struct ml_lib_tensor *ty = &tensors[op->out];
	const void *x = ml_lib_tensor_ptr(arena, tx);
	void *y = ml_lib_tensor_ptr(arena, ty);
	u32 c, l, j;

	for (c = 0; c < p->c; c++) {
		for (l = 0; l < p->l_out; l++) {
			u32 base = c * p->l_in + l * p->stride;
			s32 m = ml_lib_load(x, tx->dtype, base);

			for (j = 1; j < p->k; j++) {
				s32 v = ml_lib_load(x, tx->dtype, base + j);

				if (v > m)
					m = v;
			}
			ml_lib_store(y, ty->dtype, c * p->l_out + l, m);
		}
	}
}

void ml_lib_op_avgpool1d(const struct ml_lib_op *op, const struct ml_lib_tensor *tensors,
			 u8 *arena)
{
	const struct ml_lib_pool1d_params *p = &op->u.pool;
	const struct ml_lib_tensor *tx = &tensors[op->in[0]];
	const struct ml_lib_tensor *ty = &tensors[op->out];
	const void *x = ml_lib_tensor_ptr(arena, tx);
	void *y = ml_lib_tensor_ptr(arena, ty);
	u32 c, l, j;

	for (c = 0; c < p->c; c++) {
		for (l = 0; l < p->l_out; l++) {
			u32 base = c * p->l_in + l * p->stride;
			s64 sum = 0, v;

			for (j = 0; j < p->k; j++)
				sum += ml_lib_load(x, tx->dtype, base + j) - tx->zero_point;
			v = ty->zero_point + ml_lib_rq(sum, p->mult, p->shift);
			ml_lib_store(y, ty->dtype, c * p->l_out + l,
				     (s32)ml_lib_clamp(v, p->lo, p->hi));
		}
	}
}
