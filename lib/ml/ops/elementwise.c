// SPDX-License-Identifier: GPL-2.0
/*
 * Element-wise ops (docs/arithmetic.md): CLAMP, LEAKY_RELU, ADD, RESCALE.
 *
 * CLAMP, LEAKY_RELU and RESCALE may run in place (same offset and element
 * size, validated): each element is read before the same element is written.
 */
#include "../ops.h"

void ml_lib_op_clamp(const struct ml_lib_op *op, const struct ml_lib_tensor *tensors,
		     u8 *arena)
{
	const struct ml_lib_eltwise_params *p = &op->u.elt;
	const struct ml_lib_tensor *tx = &tensors[op->in[0]];
	const struct ml_lib_tensor *ty = &tensors[op->out];
	const void *x = ml_lib_tensor_ptr(arena, tx);
	void *y = ml_lib_tensor_ptr(arena, ty);
	u32 i;

	for (i = 0; i < p->n; i++)
		ml_lib_store(y, ty->dtype, i,
			     (s32)ml_lib_clamp(ml_lib_load(x, tx->dtype, i), p->lo, p->hi));
}

void ml_lib_op_leaky_relu(const struct ml_lib_op *op, const struct ml_lib_tensor *tensors,
			  u8 *arena)
{
	const struct ml_lib_eltwise_params *p = &op->u.elt;
	const struct ml_lib_tensor *tx = &tensors[op->in[0]];
	const struct ml_lib_tensor *ty = &tensors[op->out];
	const void *x = ml_lib_tensor_ptr(arena, tx);
	void *y = ml_lib_tensor_ptr(arena, ty);
	s64 lo = ml_lib_qmin(ty->dtype), hi = ml_lib_qmax(ty->dtype);
	u32 i;

	for (i = 0; i < p->n; i++) {
		s64 v = (s64)ml_lib_load(x, tx->dtype, i) - tx->zero_point;

		v = v >= 0 ? ml_lib_rq(v, p->mult, p->shift) :
			     ml_lib_rq(v, p->mult_b, p->shift_b);
		ml_lib_store(y, ty->dtype, i,
			     (s32)ml_lib_clamp(ty->zero_point + v, lo, hi));
	}
}

void ml_lib_op_add(const struct ml_lib_op *op, const struct ml_lib_tensor *tensors,
		   u8 *arena)
{
	const struct ml_lib_eltwise_params *p = &op->u.elt;
	const struct ml_lib_tensor *tx = &tensors[op->in[0]];
	const struct ml_lib_tensor *tb = &tensors[op->in[1]];
	const struct ml_lib_tensor *ty = &tensors[op->out];
	const void *x = ml_lib_tensor_ptr(arena, tx);
	const void *b = ml_lib_tensor_ptr(arena, tb);
	void *y = ml_lib_tensor_ptr(arena, ty);
	const s64 half = (s64)1 << (p->shift - 1);
	u32 i;

	for (i = 0; i < p->n; i++) {
		s64 vx = (s64)ml_lib_load(x, tx->dtype, i) - tx->zero_point;
		s64 vb = (s64)ml_lib_load(b, tb->dtype, i) - tb->zero_point;
		/* One rounding for the sum of both scaled terms. */
		s64 v = (vx * p->mult + vb * p->mult_b + half) >> p->shift;

		ml_lib_store(y, ty->dtype, i,
			     (s32)ml_lib_clamp(ty->zero_point + v, p->lo, p->hi));
	}
}

void ml_lib_op_rescale(const struct ml_lib_op *op, const struct ml_lib_tensor *tensors,
		       u8 *arena)
{
	const struct ml_lib_eltwise_params *p = &op->u.elt;
	const struct ml_lib_tensor *tx = &tensors[op->in[0]];
	const struct ml_lib_tensor *ty = &tensors[op->out];
	const void *x = ml_lib_tensor_ptr(arena, tx);
	void *y = ml_lib_tensor_ptr(arena, ty);
	u32 i;

	for (i = 0; i < p->n; i++) {
		s64 v = (s64)ml_lib_load(x, tx->dtype, i) - tx->zero_point;

		v = ty->zero_point + ml_lib_rq(v, p->mult, p->shift);
		ml_lib_store(y, ty->dtype, i, (s32)ml_lib_clamp(v, p->lo, p->hi));
	}
}
