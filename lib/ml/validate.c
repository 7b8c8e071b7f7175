// SPDX-License-Identifier: GPL-2.0
/*
 * ml_lib graph validator: everything docs/arithmetic.md §5 requires before
 * ml_lib_run() may see a graph, with the errno classes of
 * docs/blob-format.md:
 *
 *   -EINVAL      shapes (a dimension outside 1..65535 included), dtypes,
 *                tensor indices, ordering, in-place rules, the name
 *   -ERANGE      a tensor outside the arena or misaligned; an INPUT or
 *                OUTPUT op outside the caller's vectors
 *   -EDOM        a parameter, weight, zero point or table value out of range
 *   -EOVERFLOW   an FC/CONV1D accumulator that could leave s32
 *   -EOPNOTSUPP  an unknown op code
 *   -E2BIG       counts or arena outside 1..limit; more work than
 *                ML_LIB_WORK_BUDGET
 *
 * The graph may come from anywhere (a fuzzer included), so every size is
 * computed in u64 from values that are first bounded, and nothing is
 * dereferenced before its index has been checked.
 */
#ifdef __KERNEL__
#include <linux/errno.h>
#include <linux/export.h>
#endif
#include "ops.h"

#define ML_LIB_M_MAX	0x7fffffffLL
#define ML_LIB_T_MIN	1
#define ML_LIB_T_MAX	62
#define ML_LIB_ACC_MAX	0x7fffffffULL
#define ML_LIB_OFF_MAX	(((s64)1 << 62) - 1)
#define ML_LIB_SOFTMAX_ONE	32768	/* 2^15 */
#define ML_LIB_SOFTMAX_TABLE_MAX	1024

/*
 * The work one inference may do (docs/arithmetic.md §5, "Limits"), in
 * units of about one FC multiply-accumulate: 2^24 units are at most about
 * 12 ms of one core (0.13 to 0.71 ns a unit, measured), and ml_lib_run()
 * is not preemptible. Per op (ml_lib_op_work()): FC n_out (n_in + 8);
 * CONV1D l_out (c_out (c_in k + 8) + 16); MAXPOOL1D/AVGPOOL1D c l_out (k + 8);
 * INPUT and SOFTMAX 16 per element; ARGMAX outer (n + 8); CONCAT
 * 8 outer (a_inner + b_inner); OUTPUT and the element-wise ops 8 n.
 * toolchain/ml_lib/validate.py (op_work(), WORK_BUDGET) is the twin.
 */
#define ML_LIB_WORK_BUDGET	0x1000000ULL	/* 2^24 */
#define ML_LIB_WORK_OUT		8	/* per element written */
#define ML_LIB_WORK_HEAVY	16	/* per INPUT or SOFTMAX element */
/*
 * Per CONV1D output position: its tap range (ml_lib_conv_taps(), up to two
 * s64 divisions, computed up to twice a position) whatever c_out is.
 */
#define ML_LIB_WORK_CONV_POS	16

/* The tensors one op touches, resolved after the index checks. */
struct ml_lib_vctx {
	const struct ml_lib_graph *g;
	const struct ml_lib_tensor *x, *b, *y;
	u64 *work;	/* the work of the ops so far, <= ML_LIB_WORK_BUDGET */
};

static bool ml_lib_bad_dtype(u8 dtype)
{
	return dtype != ML_LIB_S8 && dtype != ML_LIB_S16 && dtype != ML_LIB_S32;
}

/* Ops that compute on activations read s8 or s16 only. */
static bool ml_lib_is_act(const struct ml_lib_tensor *t)
{
	return t->dtype == ML_LIB_S8 || t->dtype == ML_LIB_S16;
}

static bool ml_lib_bad_rq(s64 mult, s64 shift)
{
	return mult < 0 || mult > ML_LIB_M_MAX ||
	       shift < ML_LIB_T_MIN || shift > ML_LIB_T_MAX;
}

static int ml_lib_check_rq_arrays(const s32 *mult, const u8 *shift, u32 n)
{
	u32 i;

	if (!mult || !shift)
		return -EINVAL;
	for (i = 0; i < n; i++)
		if (ml_lib_bad_rq(mult[i], shift[i]))
			return -EDOM;
	return 0;
}

/* qmin(y) <= lo <= hi <= qmax(y) */
static int ml_lib_check_lo_hi(const struct ml_lib_tensor *y, s32 lo, s32 hi)
{
	if (lo > hi || lo < ml_lib_qmin(y->dtype) || hi > ml_lib_qmax(y->dtype))
		return -EDOM;
	return 0;
}

/* A dimension in [lo, ML_LIB_MAX_DIM]; -EINVAL otherwise, like the toolchain's check. */
static int ml_lib_check_dim(u32 v, u32 lo)
{
	return v < lo || v > ML_LIB_MAX_DIM ? -EINVAL : 0;
}

/*
 * The work units of @op (see ML_LIB_WORK_BUDGET). Called only once the
 * op's dimensions are known to be at most ML_LIB_MAX_DIM = 2^16 - 1, so
 * the largest product, CONV1D's (2^16 - 1) ((2^16 - 1) ((2^16 - 1)^2 + 8)
 * + 16), is below 2^64.
 */
static u64 ml_lib_op_work(const struct ml_lib_op *op)
{
	const u64 e = ML_LIB_WORK_OUT;

	switch (op->code) {
	case ML_OP_INPUT:
		return ML_LIB_WORK_HEAVY * (u64)op->u.input.n;
	case ML_OP_FC:
		return (u64)op->u.fc.n_out * (op->u.fc.n_in + e);
	case ML_OP_CONV1D:
		return (u64)op->u.conv.l_out *
		       ((u64)op->u.conv.c_out * ((u64)op->u.conv.c_in * op->u.conv.k + e) +
			ML_LIB_WORK_CONV_POS);
	case ML_OP_MAXPOOL1D:
	case ML_OP_AVGPOOL1D:
		return (u64)op->u.pool.c * op->u.pool.l_out * (op->u.pool.k + e);
	case ML_OP_SOFTMAX:
		return ML_LIB_WORK_HEAVY * (u64)op->u.softmax.outer * op->u.softmax.n;
	case ML_OP_ARGMAX:
		return (u64)op->u.softmax.outer * (op->u.softmax.n + e);
	case ML_OP_CONCAT:
		return e * op->u.concat.outer * ((u64)op->u.concat.a_inner + op->u.concat.b_inner);
	case ML_OP_OUTPUT:
		return e * op->u.output.n;
	default:	/* CLAMP, LEAKY_RELU, LUT, ADD, RESCALE, RESHAPE */
		return e * op->u.elt.n;
	}
}

/*
 * Add @op's work to the graph's, right after the op's dimensions are
 * checked and before any of its arrays is scanned, so validation time is
 * bounded by the budget too: -E2BIG once the sum would pass it.
 */
static int ml_lib_charge(const struct ml_lib_vctx *v, const struct ml_lib_op *op)
{
	u64 cost = ml_lib_op_work(op);

	if (cost > ML_LIB_WORK_BUDGET - *v->work)
		return -E2BIG;
	*v->work += cost;
	return 0;
}

static u64 ml_lib_tensor_end(const struct ml_lib_tensor *t)
{
	return t->offset + (u64)t->len * ml_lib_dtype_size(t->dtype);
}

static bool ml_lib_overlap(const struct ml_lib_tensor *a, const struct ml_lib_tensor *b)
{
	return a->offset < ml_lib_tensor_end(b) && b->offset < ml_lib_tensor_end(a);
}

static bool ml_lib_same_q(const struct ml_lib_tensor *a, const struct ml_lib_tensor *b)
{
	return a->dtype == b->dtype && a->zero_point == b->zero_point;
}

static int ml_lib_check_name(const char *name)
{
	u32 i;

	if (!name || !name[0] || (name[0] >= '0' && name[0] <= '9'))
		return -EINVAL;
	for (i = 0; i < ML_LIB_NAME_LEN; i++) {
		char ch = name[i];

		if (!ch)
			return 0;
		if (!(ch == '_' || (ch >= '0' && ch <= '9') ||
		      (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')))
			return -EINVAL;
	}
	return -EINVAL;	/* no NUL within ML_LIB_NAME_LEN */
}

static int ml_lib_check_counts(const struct ml_lib_graph *g)
{
	int ret;

	if (!g->tensors || !g->ops)
		return -EINVAL;
	ret = ml_lib_check_name(g->name);
	if (ret)
		return ret;
	/* Zero counts are "outside 1..limit" too, as in the blob header. */
	if (!g->n_tensors || !g->n_ops || !g->n_in || !g->n_out || !g->arena_bytes ||
	    g->n_tensors > ML_LIB_MAX_TENSORS || g->n_ops > ML_LIB_MAX_OPS ||
	    g->n_in > ML_LIB_MAX_IO || g->n_out > ML_LIB_MAX_IO ||
	    g->arena_bytes > ML_LIB_MAX_ARENA)
		return -E2BIG;
	return 0;
}

static int ml_lib_check_tensor(const struct ml_lib_graph *g, const struct ml_lib_tensor *t)
{
	u32 size;

	if (ml_lib_bad_dtype(t->dtype) || !t->len)
		return -EINVAL;
	size = ml_lib_dtype_size(t->dtype);
	if (t->offset % size || ml_lib_tensor_end(t) > g->arena_bytes)
		return -ERANGE;
	if (t->dtype != ML_LIB_S8)
		return t->zero_point ? -EINVAL : 0;
	return t->zero_point < -128 || t->zero_point > 127 ? -EDOM : 0;
}

/*
 * FC and CONV1D weights: symmetric s8 in [-127, 127], and for every row c
 * |bias[c]| + sum_i |w[c][i]| * 2^(bits(x) - 1) <= 2^31 - 1. FC weights
 * are stored in row blocks (@fc_blocks, ml_lib_fc_block_rows()), CONV1D
 * weights row after row (blocks of one row).
 */
static int ml_lib_check_weights(const s8 *w, const s32 *bias, u32 rows, u32 row_len,
				bool fc_blocks, const struct ml_lib_tensor *x)
{
	u64 xmax = x->dtype == ML_LIB_S8 ? 128 : 32768;
	u64 i, n = (u64)rows * row_len;
	u32 c0, r, n_rows;

	for (i = 0; i < n; i++)
		if (w[i] == -128)
			return -EDOM;
	for (c0 = 0; c0 < rows; c0 += n_rows) {
		n_rows = fc_blocks ? ml_lib_fc_block_rows(rows, c0) : 1;
		for (r = 0; r < n_rows; r++) {
			/* row c0 + r: every n_rows-th weight from here */
			const s8 *wr = w + (u64)c0 * row_len + r;
			s32 b = bias[c0 + r];
			u64 sum = 0;

			/* row_len < 2^32, so sum < 2^39: no u64 overflow. */
			for (i = 0; i < row_len; i++) {
				s32 wv = wr[i * n_rows];

				sum += wv < 0 ? -wv : wv;
			}
			if (sum * xmax + (b < 0 ? -(s64)b : b) > ML_LIB_ACC_MAX)
				return -EOVERFLOW;
		}
	}
	return 0;
}

/* Checks in the same order, with the same errnos, as toolchain/ml_lib/validate.py. */
static int ml_lib_check_input(const struct ml_lib_vctx *v, const struct ml_lib_op *op)
{
	const struct ml_lib_input_params *p = &op->u.input;
	u32 i;

	if (ml_lib_check_dim(p->n, 1))
		return -EINVAL;
	if (ml_lib_charge(v, op))
		return -E2BIG;
	if ((u64)p->in_off + p->n > v->g->n_in)
		return -ERANGE;
	if (!ml_lib_is_act(v->y) || v->y->len != p->n)
		return -EINVAL;
	if (!p->off || !p->pre)
		return -EINVAL;
	for (i = 0; i < p->n; i++)
		if (p->off[i] > ML_LIB_OFF_MAX || p->off[i] < -ML_LIB_OFF_MAX || p->pre[i] > 63)
			return -EDOM;
	return ml_lib_check_rq_arrays(p->mult, p->shift, p->n);
}

/* The shared tail of FC and CONV1D once the dimensions are known. */
static int ml_lib_check_mac(const struct ml_lib_vctx *v, u64 n_x, u64 n_y, s32 lo, s32 hi,
			    const s8 *w, const s32 *bias, const s32 *mult, const u8 *shift,
			    u32 rows, u32 row_len, bool fc_blocks)
{
	int ret;

	if (!ml_lib_is_act(v->x) || !ml_lib_is_act(v->y) || v->x->len != n_x || v->y->len != n_y)
		return -EINVAL;
	if (!w || !bias)
		return -EINVAL;
	ret = ml_lib_check_lo_hi(v->y, lo, hi);
	if (ret)
		return ret;
	ret = ml_lib_check_weights(w, bias, rows, row_len, fc_blocks, v->x);
	if (ret == -EDOM)
		return ret;
	/* the toolchain reports multipliers before the accumulator bound */
	return ml_lib_check_rq_arrays(mult, shift, rows) ?: ret;
}

static int ml_lib_check_fc(const struct ml_lib_vctx *v, const struct ml_lib_op *op)
{
	const struct ml_lib_fc_params *p = &op->u.fc;

	if (ml_lib_check_dim(p->n_in, 1) || ml_lib_check_dim(p->n_out, 1))
		return -EINVAL;
	if (ml_lib_charge(v, op))
		return -E2BIG;
	return ml_lib_check_mac(v, p->n_in, p->n_out, p->lo, p->hi, p->w, p->bias,
				p->mult, p->shift, p->n_out, p->n_in, true);
}

static int ml_lib_check_conv1d(const struct ml_lib_vctx *v, const struct ml_lib_op *op)
{
	const struct ml_lib_conv1d_params *p = &op->u.conv;
	const u32 dims[] = { p->c_in, p->l_in, p->c_out, p->l_out, p->k, p->stride, p->dil };
	s64 span;
	u32 i;

	/* pad is a u16, so any value is a valid pad (blob.c narrows with care) */
	for (i = 0; i < ARRAY_SIZE(dims); i++)
		if (ml_lib_check_dim(dims[i], 1))
			return -EINVAL;
	/* l_out = floor((l_in + 2 pad - dil (k - 1) - 1) / stride) + 1 >= 1 */
	span = (s64)p->l_in + 2 * (s64)p->pad - (s64)p->dil * (p->k - 1) - 1;
	if (span < 0 || div_u64((u64)span, p->stride) + 1 != p->l_out)
		return -EINVAL;
	if (ml_lib_charge(v, op))
		return -E2BIG;
	return ml_lib_check_mac(v, (u64)p->c_in * p->l_in, (u64)p->c_out * p->l_out,
				p->lo, p->hi, p->w, p->bias, p->mult, p->shift,
				p->c_out, (u32)p->c_in * p->k, false);
}

static int ml_lib_check_pool1d(const struct ml_lib_vctx *v, const struct ml_lib_op *op)
{
	const struct ml_lib_pool1d_params *p = &op->u.pool;
	const u32 dims[] = { p->c, p->l_in, p->l_out, p->k, p->stride };
	u32 i;

	for (i = 0; i < ARRAY_SIZE(dims); i++)
		if (ml_lib_check_dim(dims[i], 1))
			return -EINVAL;
	if (p->k > p->l_in || (p->l_in - p->k) / p->stride + 1 != p->l_out)
		return -EINVAL;
	if (ml_lib_charge(v, op))
		return -E2BIG;
	if (!ml_lib_is_act(v->x) || v->x->len != (u64)p->c * p->l_in ||
	    v->y->len != (u64)p->c * p->l_out)
		return -EINVAL;
	if (op->code == ML_OP_MAXPOOL1D)
		return ml_lib_same_q(v->x, v->y) ? 0 : -EINVAL;
	if (!ml_lib_is_act(v->y))
		return -EINVAL;
	if (ml_lib_bad_rq(p->mult, p->shift))
		return -EDOM;
	return ml_lib_check_lo_hi(v->y, p->lo, p->hi);
}

/* CLAMP, LEAKY_RELU, LUT, ADD, RESCALE, RESHAPE: n elements in and out. */
static int ml_lib_check_eltwise(const struct ml_lib_vctx *v, const struct ml_lib_op *op)
{
	const struct ml_lib_eltwise_params *p = &op->u.elt;
	u32 i, n_table;

	if (ml_lib_check_dim(p->n, 1))
		return -EINVAL;
	if (ml_lib_charge(v, op))
		return -E2BIG;
	if (op->code == ML_OP_RESHAPE || op->code == ML_OP_CLAMP) {
		if (!ml_lib_same_q(v->x, v->y) || v->x->len != p->n || v->y->len != p->n)
			return -EINVAL;
		if (op->code == ML_OP_RESHAPE)
			return 0;
	}
	if (!ml_lib_is_act(v->x) || !ml_lib_is_act(v->y) || (v->b && !ml_lib_is_act(v->b)))
		return -EINVAL;
	if (v->x->len != p->n || v->y->len != p->n || (v->b && v->b->len != p->n))
		return -EINVAL;
	switch (op->code) {
	case ML_OP_CLAMP:
		return ml_lib_check_lo_hi(v->y, p->lo, p->hi);
	case ML_OP_LEAKY_RELU:
		return ml_lib_bad_rq(p->mult, p->shift) ||
		       ml_lib_bad_rq(p->mult_b, p->shift_b) ? -EDOM : 0;
	case ML_OP_LUT:
		if (!p->table)
			return -EINVAL;
		n_table = v->x->dtype == ML_LIB_S8 ? 256 : 513;
		for (i = 0; i < n_table; i++)
			if (p->table[i] < ml_lib_qmin(v->y->dtype) ||
			    p->table[i] > ml_lib_qmax(v->y->dtype))
				return -EDOM;
		return 0;
	case ML_OP_ADD:
		/* shift is shared by both sides; mult_b is only a multiplier */
		if (ml_lib_bad_rq(p->mult, p->shift) || ml_lib_bad_rq(p->mult_b, p->shift))
			return -EDOM;
		return ml_lib_check_lo_hi(v->y, p->lo, p->hi);
	default: /* ML_OP_RESCALE */
		if (ml_lib_bad_rq(p->mult, p->shift))
			return -EDOM;
		return ml_lib_check_lo_hi(v->y, p->lo, p->hi);
	}
}

static int ml_lib_check_concat(const struct ml_lib_vctx *v, const struct ml_lib_op *op)
{
	const struct ml_lib_concat_params *p = &op->u.concat;

	if (ml_lib_check_dim(p->outer, 1) || ml_lib_check_dim(p->a_inner, 1) ||
	    ml_lib_check_dim(p->b_inner, 1))
		return -EINVAL;
	if (ml_lib_charge(v, op))
		return -E2BIG;
	if (!ml_lib_same_q(v->x, v->y) || !ml_lib_same_q(v->b, v->y))
		return -EINVAL;
	if (v->x->len != (u64)p->outer * p->a_inner || v->b->len != (u64)p->outer * p->b_inner ||
	    v->y->len != (u64)p->outer * (p->a_inner + p->b_inner))
		return -EINVAL;
	return 0;
}

/* SOFTMAX and ARGMAX: rows of n. */
static int ml_lib_check_softmax(const struct ml_lib_vctx *v, const struct ml_lib_op *op)
{
	const struct ml_lib_softmax_params *p = &op->u.softmax;
	u32 i;

	if (ml_lib_check_dim(p->outer, 1) || ml_lib_check_dim(p->n, 1))
		return -EINVAL;
	if (ml_lib_charge(v, op))
		return -E2BIG;
	if (!ml_lib_is_act(v->x) || v->x->len != (u64)p->outer * p->n)
		return -EINVAL;
	if (op->code == ML_OP_ARGMAX)
		return v->y->dtype == ML_LIB_S32 && v->y->len == p->outer ? 0 : -EINVAL;
	if (!ml_lib_is_act(v->y) || v->y->len != v->x->len)
		return -EINVAL;
	/* shift > 31 would make the index shift undefined in C. */
	if (p->shift > 31 || p->bits < 1 || p->bits > 15 ||
	    p->table_len < 1 || p->table_len > ML_LIB_SOFTMAX_TABLE_MAX)
		return -EDOM;
	if (!p->table)
		return -EINVAL;
	if (p->table[0] < 1)
		return -EDOM;
	for (i = 0; i < p->table_len; i++)
		if (p->table[i] < 0 || p->table[i] > ML_LIB_SOFTMAX_ONE)
			return -EDOM;
	return 0;
}

static int ml_lib_check_output(const struct ml_lib_vctx *v, const struct ml_lib_op *op)
{
	const struct ml_lib_output_params *p = &op->u.output;

	if (ml_lib_check_dim(p->n, 1))
		return -EINVAL;
	if (ml_lib_charge(v, op))
		return -E2BIG;
	if ((u64)p->out_off + p->n > v->g->n_out)
		return -ERANGE;
	if (v->x->len != p->n)
		return -EINVAL;
	if (p->mode > 1)
		return -EDOM;
	if (p->mode == 0 && ml_lib_bad_rq(p->mult, p->shift))
		return -EDOM;
	return 0;
}

static int ml_lib_check_params(const struct ml_lib_vctx *v, const struct ml_lib_op *op)
{
	switch (op->code) {
	case ML_OP_INPUT:
		return ml_lib_check_input(v, op);
	case ML_OP_FC:
		return ml_lib_check_fc(v, op);
	case ML_OP_CONV1D:
		return ml_lib_check_conv1d(v, op);
	case ML_OP_MAXPOOL1D:
	case ML_OP_AVGPOOL1D:
		return ml_lib_check_pool1d(v, op);
	case ML_OP_CONCAT:
		return ml_lib_check_concat(v, op);
	case ML_OP_SOFTMAX:
	case ML_OP_ARGMAX:
		return ml_lib_check_softmax(v, op);
	case ML_OP_OUTPUT:
		return ml_lib_check_output(v, op);
	default:
		return ml_lib_check_eltwise(v, op);
	}
}

static u32 ml_lib_n_inputs(u16 code)
{
	if (code == ML_OP_INPUT)
		return 0;
	return code == ML_OP_ADD || code == ML_OP_CONCAT ? 2 : 1;
}

static bool ml_lib_may_run_in_place(u16 code)
{
	return code == ML_OP_CLAMP || code == ML_OP_LUT || code == ML_OP_LEAKY_RELU ||
	       code == ML_OP_RESCALE || code == ML_OP_RESHAPE;
}

static bool ml_lib_test_bit(const u64 *map, u32 i)
{
	return map[i / 64] >> (i % 64) & 1;
}

/*
 * Resolve and check an op's tensor indices. @written marks the tensors
 * whose current arena bytes were produced by an earlier op.
 */
static int ml_lib_check_indices(struct ml_lib_vctx *v, const struct ml_lib_op *op,
				const u64 *written)
{
	const struct ml_lib_tensor *in[2] = { NULL, NULL };
	u32 k, n_in = ml_lib_n_inputs(op->code);

	for (k = 0; k < 2; k++) {
		if (k >= n_in) {
			if (op->in[k] != ML_LIB_NO_TENSOR)
				return -EINVAL;
			continue;
		}
		if (op->in[k] >= v->g->n_tensors || !ml_lib_test_bit(written, op->in[k]))
			return -EINVAL;
		in[k] = &v->g->tensors[op->in[k]];
	}
	v->x = in[0];
	v->b = in[1];
	v->y = NULL;
	if (op->code == ML_OP_OUTPUT)
		return op->out == ML_LIB_NO_TENSOR ? 0 : -EINVAL;
	if (op->out >= v->g->n_tensors)
		return -EINVAL;
	v->y = &v->g->tensors[op->out];
	for (k = 0; k < n_in; k++) {
		if (!ml_lib_overlap(in[k], v->y))
			continue;
		if (!ml_lib_may_run_in_place(op->code) || in[k]->offset != v->y->offset ||
		    ml_lib_dtype_size(in[k]->dtype) != ml_lib_dtype_size(v->y->dtype))
			return -EINVAL;
	}
	return 0;
}

/* Writing tensor @out clobbers every other tensor sharing its bytes. */
static void ml_lib_mark_written(const struct ml_lib_graph *g, u64 *written, u32 out)
{
	const struct ml_lib_tensor *y = &g->tensors[out];
	u32 i;

	for (i = 0; i < g->n_tensors; i++)
		if (i != out && ml_lib_overlap(&g->tensors[i], y))
			written[i / 64] &= ~(1ULL << (i % 64));
	written[out / 64] |= 1ULL << (out % 64);
}

/*
 * The [off, off + n) ranges of every INPUT (or OUTPUT) op together cover
 * [0, total). Quadratic in n_ops at worst, but needs no memory.
 */
static bool ml_lib_covers(const struct ml_lib_graph *g, u16 code, u32 total)
{
	u32 covered = 0, i;
	bool progress = true;

	while (covered < total && progress) {
		progress = false;
		for (i = 0; i < g->n_ops; i++) {
			const struct ml_lib_op *op = &g->ops[i];
			u32 off, n;

			if (op->code != code)
				continue;
			off = code == ML_OP_INPUT ? op->u.input.in_off : op->u.output.out_off;
			n = code == ML_OP_INPUT ? op->u.input.n : op->u.output.n;
			if (off <= covered && off + n > covered) {
				covered = off + n;	/* <= total, validated */
				progress = true;
			}
		}
	}
	return covered >= total;
}

/**
 * ml_lib_graph_validate() - check that a graph is safe and exact to run
 * @g: graph from generated C tables or from ml_lib_blob_parse()
 *
 * Checks every rule of docs/arithmetic.md §5: counts and limits, tensors
 * inside the arena and aligned, op codes, tensor indices, lengths and
 * dtypes, parameter ranges, accumulator bounds, that every tensor an op
 * reads was written by an earlier op (and not clobbered since), that no
 * op overwrites its own input except the element-wise ops allowed to run
 * in place, that INPUT and OUTPUT ops cover the caller's vectors, and
 * that the graph's work stays within ML_LIB_WORK_BUDGET (at most about 12 ms).
 * ml_lib_run() relies on all of it.
 *
 * Context: Any context; does not sleep or allocate. Uses about 490 bytes
 * of stack and time linear in the size of the graph's tables (quadratic
 * only in the number of ops and tensors, both at most 1024); the arrays
 * it scans are bounded by the work budget, which is checked first.
 * Return: 0 if @g may be run, otherwise a negative errno: -EINVAL,
 * -ERANGE, -EDOM, -EOVERFLOW, -EOPNOTSUPP or -E2BIG (docs/blob-format.md).
 */
int ml_lib_graph_validate(const struct ml_lib_graph *g)
{
	u64 written[ML_LIB_MAX_TENSORS / 64] = { 0 };
	u64 work = 0;
	struct ml_lib_vctx v = { .g = g, .work = &work };
	u32 i;
	int ret;

	if (!g)
		return -EINVAL;
	ret = ml_lib_check_counts(g);
	if (ret)
		return ret;
	for (i = 0; i < g->n_tensors; i++) {
		ret = ml_lib_check_tensor(g, &g->tensors[i]);
		if (ret)
			return ret;
	}
	for (i = 0; i < g->n_ops; i++) {
		const struct ml_lib_op *op = &g->ops[i];

		if (op->code < ML_OP_INPUT || op->code > ML_OP_MAX_CODE)
			return -EOPNOTSUPP;
		ret = ml_lib_check_indices(&v, op, written);
		if (!ret)
			ret = ml_lib_check_params(&v, op);
		if (ret)
			return ret;
		if (v.y)
			ml_lib_mark_written(g, written, op->out);
	}
	if (!ml_lib_covers(g, ML_OP_INPUT, g->n_in) || !ml_lib_covers(g, ML_OP_OUTPUT, g->n_out))
		return -EINVAL;
	return 0;
}
EXPORT_SYMBOL_GPL(ml_lib_graph_validate);
