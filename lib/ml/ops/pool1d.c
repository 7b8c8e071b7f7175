// SPDX-License-Identifier: GPL-2.0
/*
 * ML_OP_MAXPOOL1D and ML_OP_AVGPOOL1D over [channel][position] tensors
 * (docs/arithmetic.md). No padding: every window lies inside the input.
 */
#include "../ops.h"

/* @x16 is a constant of each inlined copy; y has x's dtype (validated). */
static __always_inline void ml_lib_maxpool(const struct ml_lib_pool1d_params *p,
					   const void *x, void *y, const bool x16)
{
	const u32 l_in = p->l_in, l_out = p->l_out, k = p->k, stride = p->stride;
	u32 c, l, j;

	for (c = 0; c < p->c; c++) {
		for (l = 0; l < l_out; l++) {
			u32 base = c * l_in + l * stride;
			s32 m = ml_lib_load_act(x, base, x16);

			for (j = 1; j < k; j++) {
				u32 i = base + j;
				s32 v = ml_lib_load_act(x, i, x16);

				if (v > m)
					m = v;
			}
			if (x16)
				((s16 *)y)[c * l_out + l] = (s16)m;
			else
				((s8 *)y)[c * l_out + l] = (s8)m;
		}
	}
}

void ml_lib_op_maxpool1d(const struct ml_lib_op *op, const struct ml_lib_tensor *tensors,
			 u8 *arena)
{
	const struct ml_lib_tensor *tx = &tensors[op->in[0]];
	const void *x = ml_lib_tensor_ptr(arena, tx);
	void *y = ml_lib_tensor_ptr(arena, &tensors[op->out]);

	if (tx->dtype == ML_LIB_S8)
		ml_lib_maxpool(&op->u.pool, x, y, false);
	else
		ml_lib_maxpool(&op->u.pool, x, y, true);
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
