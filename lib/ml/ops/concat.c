// SPDX-License-Identifier: GPL-2.0
/*
 * ML_OP_CONCAT: y[o] = x[o] followed by b[o] for every outer index o
 * (docs/arithmetic.md, CONCAT). x, b and y share dtype and zero point and
 * never overlap (validated).
 */
#ifdef __KERNEL__
#include <linux/string.h>
#endif
#include "../ops.h"

void ml_lib_op_concat(const struct ml_lib_op *op, const struct ml_lib_tensor *tensors,
		      u8 *arena)
{
	const struct ml_lib_concat_params *p = &op->u.concat;
	const struct ml_lib_tensor *ty = &tensors[op->out];
	const u8 *x = ml_lib_tensor_ptr(arena, &tensors[op->in[0]]);
	const u8 *b = ml_lib_tensor_ptr(arena, &tensors[op->in[1]]);
	u8 *y = ml_lib_tensor_ptr(arena, ty);
	size_t es = ml_lib_dtype_size(ty->dtype);
	size_t a_bytes = p->a_inner * es, b_bytes = p->b_inner * es;
	u32 o;

	for (o = 0; o < p->outer; o++) {
		memcpy(y, x, a_bytes);
		memcpy(y + a_bytes, b, b_bytes);
		x += a_bytes;
		b += b_bytes;
		y += a_bytes + b_bytes;
	}
}
