// SPDX-License-Identifier: GPL-2.0
/*
 * ML_OP_RESHAPE: flatten / view, y[i] = x[i] (docs/arithmetic.md, RESHAPE).
 * In place it is free; otherwise the validator guarantees no overlap.
 */
#ifdef __KERNEL__
#include <linux/string.h>
#endif
#include "../ops.h"

void ml_lib_op_reshape(const struct ml_lib_op *op, const struct ml_lib_tensor *tensors,
		       u8 *arena)
{
	const struct ml_lib_tensor *tx = &tensors[op->in[0]];
	const struct ml_lib_tensor *ty = &tensors[op->out];

	if (tx->offset != ty->offset)
		memcpy(ml_lib_tensor_ptr(arena, ty), ml_lib_tensor_ptr(arena, tx),
		       (size_t)op->u.elt.n * ml_lib_dtype_size(ty->dtype));
}
