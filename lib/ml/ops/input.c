// SPDX-License-Identifier: GPL-2.0
/*
 * ML_OP_INPUT: raw s64 features -> quantized tensor (docs/arithmetic.md, INPUT).
 */
#include "../ops.h"

#define ML_LIB_RAW_LIMIT	((s64)1 << 62)
#define ML_LIB_D_LIMIT		((s64)0x7fffffff)

void ml_lib_op_input(const struct ml_lib_op *op, const struct ml_lib_tensor *tensors,
		     u8 *arena, const s64 *in)
{
	const struct ml_lib_input_params *p = &op->u.input;
	const struct ml_lib_tensor *ty = &tensors[op->out];
	void *y = ml_lib_tensor_ptr(arena, ty);
	s64 lo = ml_lib_qmin(ty->dtype), hi = ml_lib_qmax(ty->dtype);
	const s64 *raw = in + p->in_off;
	u32 i;

	for (i = 0; i < p->n; i++) {
		s64 r = ml_lib_clamp(raw[i], -ML_LIB_RAW_LIMIT, ML_LIB_RAW_LIMIT);
		/* |r - off| < 2^63 because |off| <= 2^62 - 1 (validated). */
		s64 d = ml_lib_clamp((r - p->off[i]) >> p->pre[i],
				     -ML_LIB_D_LIMIT, ML_LIB_D_LIMIT);
		s64 v = ty->zero_point + ml_lib_rq(d, p->mult[i], p->shift[i]);

		ml_lib_store(y, ty->dtype, i, (s32)ml_lib_clamp(v, lo, hi));
	}
}
