// SPDX-License-Identifier: GPL-2.0
/*
 * ML_OP_CONV1D: 1-D convolution over [channel][position] tensors
 * (docs/arithmetic.md, CONV1D). Positions outside the input read the
 * input zero point, i.e. padding is a real zero.
 *
 * Written like FC for speed: per output position the taps that fall
 * inside the input are found once (no bounds check per tap), each load of
 * x serves four output channels, and the input dtype is a compile-time
 * constant of each inlined copy. Partial sums stay in s32 (accumulator
 * bound, validated). The op keeps its dimensions in u16; each loop copies
 * the ones it needs into u32 locals first, so the arithmetic is u32 (no
 * int promotion) and nothing is reloaded after the stores to y.
 */
#include "../ops.h"

struct ml_lib_conv_pos {
	s64 start;		/* input position of tap 0 (may be negative) */
	u32 j_lo, j_hi;		/* taps [j_lo, j_hi) read x, the others read zx */
};

static void ml_lib_conv_taps(const struct ml_lib_conv1d_params *p, u32 l,
			     struct ml_lib_conv_pos *pos)
{
	s64 start = (s64)l * p->stride - p->pad;	/* dims <= 65535: no overflow */
	s64 lo = 0, hi;

	/* both dividends are positive: div_u64(), as 32-bit kernels need */
	if (start < 0)
		lo = div_u64((u64)(-start + p->dil - 1), p->dil);
	hi = start >= p->l_in ? 0 : div_u64((u64)(p->l_in - start + p->dil - 1), p->dil);
	if (hi > p->k)
		hi = p->k;
	if (lo > hi)
		lo = hi;
	pos->start = start;
	pos->j_lo = (u32)lo;
	pos->j_hi = (u32)hi;
}

/* One tap of four channels whose weight rows are @ck apart. */
static __always_inline void ml_lib_conv_tap4(s32 *a, const s8 *w, u32 ck, s32 xv)
{
	a[0] += w[0] * xv;
	a[1] += w[ck] * xv;
	a[2] += w[2 * ck] * xv;
	a[3] += w[3 * ck] * xv;
}

/*
 * Sum the taps of four channels (weight rows @w, @w + ck, ...) into @a:
 * taps before j_lo and from j_hi on read the zero point, the others walk
 * x with stride dil. @a is a local array of the caller, kept in registers.
 */
static __always_inline void ml_lib_conv_sum4(const struct ml_lib_conv1d_params *p,
					     const struct ml_lib_conv_pos *pos,
					     const s8 *w, const void *x, s32 zx,
					     s32 *a, const bool x16)
{
	const u32 c_in = p->c_in, l_in = p->l_in, k = p->k, ck = c_in * k, dil = p->dil;
	u32 ci, j;

	for (ci = 0; ci < c_in; ci++) {
		const s8 *wc = w + ci * k;
		/* index of tap j_lo; in range because j_lo < j_hi there */
		u32 idx = (u32)((s64)ci * l_in + pos->start + (s64)pos->j_lo * dil);

		for (j = 0; j < pos->j_lo; j++)
			ml_lib_conv_tap4(a, wc + j, ck, zx);
		for (; j < pos->j_hi; j++, idx += dil)
			ml_lib_conv_tap4(a, wc + j, ck, ml_lib_load_act(x, idx, x16));
		for (; j < k; j++)
			ml_lib_conv_tap4(a, wc + j, ck, zx);
	}
}

static __always_inline s32 ml_lib_conv_sum1(const struct ml_lib_conv1d_params *p,
					    const struct ml_lib_conv_pos *pos,
					    const s8 *w, const void *x, s32 zx,
					    s32 acc, const bool x16)
{
	const u32 c_in = p->c_in, l_in = p->l_in, k = p->k, dil = p->dil;
	u32 ci, j;

	for (ci = 0; ci < c_in; ci++) {
		const s8 *wc = w + ci * k;
		u32 idx = (u32)((s64)ci * l_in + pos->start + (s64)pos->j_lo * dil);

		for (j = 0; j < pos->j_lo; j++)
			acc += wc[j] * zx;
		for (; j < pos->j_hi; j++, idx += dil)
			acc += wc[j] * ml_lib_load_act(x, idx, x16);
		for (; j < k; j++)
			acc += wc[j] * zx;
	}
	return acc;
}

/* Output channel @c, element @i of y. */
static __always_inline void ml_lib_conv_emit(const struct ml_lib_conv1d_params *p,
					     const struct ml_lib_tensor *ty, void *y,
					     u32 c, u32 i, s32 acc)
{
	s64 v = ty->zero_point + ml_lib_rq(acc, p->mult[c], p->shift[c]);

	ml_lib_store(y, ty->dtype, i, (s32)ml_lib_clamp(v, p->lo, p->hi));
}

/*
 * Two neighbouring output positions l, l + 1 whose windows lie fully
 * inside the input, four channels: the same weight multiplies the inputs
 * of both positions, packed in one u64 (ml_lib_pack2), so each multiply
 * does two taps. Lane a is position l, lane b position l + 1.
 */
static __always_inline void ml_lib_conv_pair4(const struct ml_lib_conv1d_params *p,
					      s64 start, const s8 *w, const void *x,
					      u64 *a, const bool x16)
{
	const u32 c_in = p->c_in, l_in = p->l_in, k = p->k, ck = c_in * k;
	const u32 dil = p->dil, stride = p->stride;
	u64 a0 = a[0], a1 = a[1], a2 = a[2], a3 = a[3];
	u32 ci, j;

	for (ci = 0; ci < c_in; ci++) {
		const s8 *w0 = w + ci * k, *w1 = w0 + ck, *w2 = w1 + ck, *w3 = w2 + ck;
		/* x at tap j of position l; position l + 1 reads @stride further */
		const void *xj = ml_lib_act_ptr(x, (u32)((s64)ci * l_in + start), x16);

		for (j = 0; j < k; j++, xj = ml_lib_act_ptr(xj, dil, x16)) {
			u64 xv = ml_lib_pack2(ml_lib_load_act(xj, 0, x16),
					      ml_lib_load_act(xj, stride, x16));

			a0 += (u64)(s64)w0[j] * xv;
			a1 += (u64)(s64)w1[j] * xv;
			a2 += (u64)(s64)w2[j] * xv;
			a3 += (u64)(s64)w3[j] * xv;
		}
	}
	a[0] = a0;
	a[1] = a1;
	a[2] = a2;
	a[3] = a3;
}

/* Output positions l and l + 1, both windows fully inside the input. */
static __always_inline void ml_lib_conv_two(const struct ml_lib_conv1d_params *p,
					    const struct ml_lib_tensor *tx,
					    const struct ml_lib_tensor *ty, const void *x, void *y,
					    u32 l, const struct ml_lib_conv_pos *pos,
					    const struct ml_lib_conv_pos *next, const bool x16)
{
	const u32 ck = (u32)p->c_in * p->k, c_out = p->c_out, l_out = p->l_out;
	const s32 zx = tx->zero_point;
	u32 c, k;

	for (c = 0; c + 4 <= c_out; c += 4) {
		u64 acc[4];

		for (k = 0; k < 4; k++)
			acc[k] = ml_lib_pack2(p->bias[c + k], p->bias[c + k]);
		ml_lib_conv_pair4(p, pos->start, p->w + (size_t)c * ck, x, acc, x16);
		for (k = 0; k < 4; k++) {
			u32 i = (c + k) * l_out + l;

			ml_lib_conv_emit(p, ty, y, c + k, i, ml_lib_lane_a(acc[k]));
			ml_lib_conv_emit(p, ty, y, c + k, i + 1, ml_lib_lane_b(acc[k]));
		}
	}
	for (; c < c_out; c++) {
		const s8 *wc = p->w + (size_t)c * ck;
		s32 a = ml_lib_conv_sum1(p, pos, wc, x, zx, p->bias[c], x16);
		s32 b = ml_lib_conv_sum1(p, next, wc, x, zx, p->bias[c], x16);

		ml_lib_conv_emit(p, ty, y, c, c * l_out + l, a);
		ml_lib_conv_emit(p, ty, y, c, c * l_out + l + 1, b);
	}
}

/* Output position l alone (an edge with padding, or the last one). */
static __always_inline void ml_lib_conv_one(const struct ml_lib_conv1d_params *p,
					    const struct ml_lib_tensor *tx,
					    const struct ml_lib_tensor *ty, const void *x, void *y,
					    u32 l, const struct ml_lib_conv_pos *pos,
					    const bool x16)
{
	const u32 ck = (u32)p->c_in * p->k, c_out = p->c_out, l_out = p->l_out;
	const s32 zx = tx->zero_point;
	u32 c, k;

	for (c = 0; c + 4 <= c_out; c += 4) {
		s32 acc[4] = { p->bias[c], p->bias[c + 1], p->bias[c + 2], p->bias[c + 3] };

		ml_lib_conv_sum4(p, pos, p->w + (size_t)c * ck, x, zx, acc, x16);
		for (k = 0; k < 4; k++)
			ml_lib_conv_emit(p, ty, y, c + k, (c + k) * l_out + l, acc[k]);
	}
	for (; c < c_out; c++)
		ml_lib_conv_emit(p, ty, y, c, c * l_out + l,
				 ml_lib_conv_sum1(p, pos, p->w + (size_t)c * ck, x, zx,
						  p->bias[c], x16));
}

static __always_inline void ml_lib_conv_all(const struct ml_lib_conv1d_params *p,
					    const struct ml_lib_tensor *tx,
					    const struct ml_lib_tensor *ty,
					    const void *x, void *y, const bool x16)
{
	struct ml_lib_conv_pos pos, next;
	u32 l = 0;

	while (l < p->l_out) {
		ml_lib_conv_taps(p, l, &pos);
		if (l + 1 < p->l_out && pos.j_lo == 0) {
			/* windows only move right: l + 1 full at the right means both full */
			ml_lib_conv_taps(p, l + 1, &next);
			if (next.j_hi == p->k) {
				ml_lib_conv_two(p, tx, ty, x, y, l, &pos, &next, x16);
				l += 2;
				continue;
			}
		}
		ml_lib_conv_one(p, tx, ty, x, y, l, &pos, x16);
		l++;
	}
}

void ml_lib_op_conv1d(const struct ml_lib_op *op, const struct ml_lib_tensor *tensors,
		      u8 *arena)
{
	const struct ml_lib_conv1d_params *p = &op->u.conv;
	const struct ml_lib_tensor *tx = &tensors[op->in[0]];
	const struct ml_lib_tensor *ty = &tensors[op->out];
	const void *x = ml_lib_tensor_ptr(arena, tx);
	void *y = ml_lib_tensor_ptr(arena, ty);

	if (tx->dtype == ML_LIB_S8)
		ml_lib_conv_all(p, tx, ty, x, y, false);
	else
		ml_lib_conv_all(p, tx, ty, x, y, true);
}
