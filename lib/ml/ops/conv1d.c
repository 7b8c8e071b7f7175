// SPDX-License-Identifier: GPL-2.0
/*
 * ML_OP_CONV1D: 1-D convolution over [channel][position] tensors
 * (docs/arithmetic.md, CONV1D). Positions outside the input read the
 * input zero point, i.e. padding is a real zero.
 */
#include "../ops.h"

void ml_lib_op_conv1d(const struct ml_lib_op *op, const struct ml_lib_tensor *tensors,
		      u8 *arena)
{
	const struct ml_lib_conv1d_params *p = &op->u.conv;
	const struct ml_lib_tensor *tx = &tensors[op->in[0]];
	const struct ml_lib_tensor *ty = &tensors[op->out];
	const void *x = ml_lib_tensor_ptr(arena, tx);
	void *y = ml_lib_tensor_ptr(arena, ty);
	const s32 zx = tx->zero_point;
	u32 c, l, ci, j;

	for (c = 0; c < p->c_out; c++) {
		const s8 *wc = p->w + (size_t)c * p->c_in * p->k;

		for (l = 0; l < p->l_out; l++) {
			/* Dims are <= 65535 (validated), so s64 never overflows. */
			s64 start = (s64)l * p->stride - p->pad;
			s32 acc = p->bias[c];
			s64 v;

			for (ci = 0; ci < p->c_in; ci++) {
				const s8 *w = wc + (size_t)ci * p->k;
				u32 row = ci * p->l_in;

				for (j = 0; j < p->k; j++) {
					s64 pos = start + (s64)j * p->dil;
					s32 xv = zx;

					if (pos >= 0 && pos < p->l_in)
						xv = ml_lib_load(x, tx->dtype, row + (u32)pos);
					acc += w[j] * xv;
				}
			}
			v = ty->zero_point + ml_lib_rq(acc, p->mult[c], p->shift[c]);
			ml_lib_store(y, ty->dtype, c * p->l_out + l,
				     (s32)ml_lib_clamp(v, p->lo, p->hi));
		}
	}
}
