// SPDX-License-Identifier: GPL-2.0
/*
 * ML_OP_INPUT: raw s64 features -> quantized tensor (docs/arithmetic.md, INPUT).
 */
#include "../ops.h"

#define ML_LIB_RAW_LIMIT	((s64)1 << 62)
#define ML_LIB_D_LIMIT		((s64)0x7fffffff)

/*
 * Parameters are copied to locals first: stores to an s8 output may alias
 * anything, so the compiler would otherwise reload them for every element.
 */
static __always_inline void ml_lib_input_rows(const struct ml_lib_input_params *p,
					      const s64 *__restrict raw, s32 zy,
					      void *__restrict y, const bool y16)
{
	const s64 *__restrict off = p->off;
	const u8 *__restrict pre = p->pre;
	const s32 *__restrict mult = p->mult;
	const u8 *__restrict shift = p->shift;
	const s64 lo = y16 ? -32768 : -128, hi = y16 ? 32767 : 127;
	const u32 n = p->n;
	u32 i;

	for (i = 0; i < n; i++) {
		s64 r = raw[i], d, v;

		/*
		 * The clamps as unsigned range checks with a branch around the
		 * rare saturating case: half the instructions of two cmovs each,
		 * and this op costs as much as a small FC layer.
		 */
		if (unlikely((u64)r + ML_LIB_RAW_LIMIT > 2 * (u64)ML_LIB_RAW_LIMIT))
			r = ml_lib_clamp(r, -ML_LIB_RAW_LIMIT, ML_LIB_RAW_LIMIT);
		/* |r - off| < 2^63 because |off| <= 2^62 - 1 (validated). */
		d = (r - off[i]) >> pre[i];
		if (unlikely((u64)d + ML_LIB_D_LIMIT > 2 * (u64)ML_LIB_D_LIMIT))
			d = ml_lib_clamp(d, -ML_LIB_D_LIMIT, ML_LIB_D_LIMIT);
		v = zy + ml_lib_rq(d, mult[i], shift[i]);
		if (unlikely((u64)(v - lo) > (u64)(hi - lo)))
			v = ml_lib_clamp(v, lo, hi);
		if (y16)
			((s16 *)y)[i] = (s16)v;
		else
			((s8 *)y)[i] = (s8)v;
	}
}

void ml_lib_op_input(const struct ml_lib_op *op, const struct ml_lib_tensor *tensors,
		     u8 *arena, const s64 *in)
{
	const struct ml_lib_input_params *p = &op->u.input;
	const struct ml_lib_tensor *ty = &tensors[op->out];
	void *y = ml_lib_tensor_ptr(arena, ty);

	/* INPUT writes s8 or s16 (validated) */
	if (ty->dtype == ML_LIB_S8)
		ml_lib_input_rows(p, in + p->in_off, ty->zero_point, y, false);
	else
		ml_lib_input_rows(p, in + p->in_off, ty->zero_point, y, true);
}
