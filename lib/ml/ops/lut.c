// SPDX-License-Identifier: GPL-2.0
/*
 * ML_OP_LUT: table lookup for sigmoid, tanh and other element-wise
 * functions (docs/arithmetic.md, LUT). s8 inputs index a 256-entry table
 * directly; s16 inputs interpolate linearly in a 513-entry table sampled at
 * every 128th input. May run in place.
 */
#include "../ops.h"

void ml_lib_op_lut(const struct ml_lib_op *op, const struct ml_lib_tensor *tensors,
		   u8 *arena)
{
	const struct ml_lib_eltwise_params *p = &op->u.elt;
	const struct ml_lib_tensor *tx = &tensors[op->in[0]];
	const struct ml_lib_tensor *ty = &tensors[op->out];
	const void *x = ml_lib_tensor_ptr(arena, tx);
	void *y = ml_lib_tensor_ptr(arena, ty);
	const s16 *t = p->table;
	u32 i;

	if (tx->dtype == ML_LIB_S8) {
		for (i = 0; i < p->n; i++)
			ml_lib_store(y, ty->dtype, i, t[((const s8 *)x)[i] + 128]);
		return;
	}
	for (i = 0; i < p->n; i++) {
		u32 u = (u32)(((const s16 *)x)[i] + 32768);
		u32 j = u >> 7, f = u & 127;
		/* Between t[j] and t[j + 1], so always inside the table's (validated) range. */
		s32 v = t[j] + (((t[j + 1] - t[j]) * (s32)f + 64) >> 7);

		ml_lib_store(y, ty->dtype, i, v);
	}
}
