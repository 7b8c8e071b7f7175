// SPDX-License-Identifier: GPL-2.0
/*
 * ml_lib blob loader: binary model (docs/blob-format.md) -> native graph.
 *
 * The blob is untrusted. Every header field, record and data reference is
 * checked before it is used, all integers are decoded little-endian
 * without alignment assumptions, and the result is one allocation holding
 * the graph, its name, tensors, ops and a copy of the data section (so the
 * caller may free the blob). The graph then goes through
 * ml_lib_graph_validate(); on any error everything is freed.
 */
#ifdef __KERNEL__
#include <linux/errno.h>
#include <linux/export.h>
#include <linux/kernel.h>
#include <linux/overflow.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <asm/unaligned.h>
#endif
#include "ops.h"

#define ML_LIB_BLOB_MAGIC	0x424c4c4d	/* "MLLB" read as le32 */
#define ML_LIB_BLOB_MAJOR	2
#define ML_LIB_BLOB_HDR_LEN	80
#define ML_LIB_BLOB_TENSOR_LEN	16
#define ML_LIB_BLOB_OP_LEN	64
#define ML_LIB_BLOB_NO_DATA	0xffffffffU
#define ML_LIB_BLOB_N_P		10
#define ML_LIB_BLOB_N_D		4
/* Longest array read_blob() accepts; anything longer cannot fit an arena op. */
#define ML_LIB_BLOB_MAX_ARRAY	((s64)ML_LIB_MAX_ARENA * 64)

/* Header fields, decoded. */
struct ml_lib_blob_hdr {
	u32 n_tensors, n_ops, n_in, n_out, arena_bytes, data_off, data_len;
};

/* How many p[] and d[] an op code uses, and the element size of each array. */
struct ml_lib_blob_opdesc {
	u8 n_p, n_d;
	u8 esize[ML_LIB_BLOB_N_D];
};

static const struct ml_lib_blob_opdesc ml_lib_blob_ops[ML_OP_MAX_CODE + 1] = {
	[ML_OP_INPUT]		= { .n_p = 2, .n_d = 4, .esize = { 8, 1, 4, 1 } },
	[ML_OP_FC]		= { .n_p = 4, .n_d = 4, .esize = { 1, 4, 4, 1 } },
	[ML_OP_CONV1D]		= { .n_p = 10, .n_d = 4, .esize = { 1, 4, 4, 1 } },
	[ML_OP_MAXPOOL1D]	= { .n_p = 5 },
	[ML_OP_AVGPOOL1D]	= { .n_p = 9 },
	[ML_OP_CLAMP]		= { .n_p = 3 },
	[ML_OP_LEAKY_RELU]	= { .n_p = 5 },
	[ML_OP_LUT]		= { .n_p = 1, .n_d = 1, .esize = { 2 } },
	[ML_OP_ADD]		= { .n_p = 6 },
	[ML_OP_RESCALE]		= { .n_p = 5 },
	[ML_OP_CONCAT]		= { .n_p = 3 },
	[ML_OP_RESHAPE]		= { .n_p = 1 },
	[ML_OP_SOFTMAX]		= { .n_p = 5, .n_d = 1, .esize = { 4 } },
	[ML_OP_ARGMAX]		= { .n_p = 2 },
	[ML_OP_OUTPUT]		= { .n_p = 5 },
};

/* One op record, decoded. */
struct ml_lib_blob_op {
	u16 code, in0, in1, out;
	s32 p[ML_LIB_BLOB_N_P];
	u32 d[ML_LIB_BLOB_N_D];
};

static int ml_lib_blob_check_name(const u8 *name)
{
	u32 i, len = 0;

	while (len < ML_LIB_NAME_LEN && name[len])
		len++;
	if (!len || len == ML_LIB_NAME_LEN)
		return -EINVAL;
	for (i = len; i < ML_LIB_NAME_LEN; i++)
		if (name[i])
			return -EINVAL;	/* NUL-padded means all NUL */
	for (i = 0; i < len; i++)
		if (!(name[i] == '_' || (name[i] >= '0' && name[i] <= '9') ||
		      (name[i] >= 'a' && name[i] <= 'z') || (name[i] >= 'A' && name[i] <= 'Z')))
			return -EINVAL;
	return 0;
}

static u64 ml_lib_align8(u64 v)
{
	return (v + 7) & ~7ULL;
}

static int ml_lib_blob_read_hdr(const u8 *b, size_t len, struct ml_lib_blob_hdr *h)
{
	u64 records;

	if (len < ML_LIB_BLOB_HDR_LEN)
		return -EMSGSIZE;
	if (get_unaligned_le32(b) != ML_LIB_BLOB_MAGIC)
		return -ENOEXEC;
	if (get_unaligned_le16(b + 4) != ML_LIB_BLOB_MAJOR)
		return -EPROTONOSUPPORT;
	if (get_unaligned_le32(b + 8) != ML_LIB_BLOB_HDR_LEN)
		return -EINVAL;
	h->n_tensors = get_unaligned_le32(b + 16);
	h->n_ops = get_unaligned_le32(b + 20);
	h->n_in = get_unaligned_le32(b + 24);
	h->n_out = get_unaligned_le32(b + 28);
	h->arena_bytes = get_unaligned_le32(b + 32);
	h->data_off = get_unaligned_le32(b + 36);
	h->data_len = get_unaligned_le32(b + 40);
	/* Same order of checks as toolchain/ml_lib/blob.py read_blob(). */
	if (get_unaligned_le32(b + 12) != len || (u64)h->data_off + h->data_len != len)
		return -EMSGSIZE;
	if (!h->n_tensors || !h->n_ops || !h->n_in || !h->n_out || !h->arena_bytes ||
	    h->n_tensors > ML_LIB_MAX_TENSORS || h->n_ops > ML_LIB_MAX_OPS ||
	    h->n_in > ML_LIB_MAX_IO || h->n_out > ML_LIB_MAX_IO ||
	    h->arena_bytes > ML_LIB_MAX_ARENA || len > ML_LIB_MAX_BLOB_LEN)
		return -E2BIG;
	records = ML_LIB_BLOB_HDR_LEN + (u64)ML_LIB_BLOB_TENSOR_LEN * h->n_tensors +
		  (u64)ML_LIB_BLOB_OP_LEN * h->n_ops;
	if (h->data_off != ml_lib_align8(records))
		return -EMSGSIZE;
	if (get_unaligned_le32(b + 44))
		return -EINVAL;
	return ml_lib_blob_check_name(b + 48);
}

static int ml_lib_blob_read_tensor(const u8 *r, struct ml_lib_tensor *t)
{
	t->offset = get_unaligned_le32(r);
	t->len = get_unaligned_le32(r + 4);
	t->zero_point = (s32)get_unaligned_le32(r + 8);
	t->dtype = r[12];
	if (r[13] || r[14] || r[15])
		return -EINVAL;
	return t->dtype >= ML_LIB_S8 && t->dtype <= ML_LIB_S32 ? 0 : -EINVAL;
}

static int ml_lib_blob_read_op(const u8 *r, struct ml_lib_blob_op *o)
{
	const struct ml_lib_blob_opdesc *desc;
	u32 k;

	o->code = get_unaligned_le16(r);
	o->in0 = get_unaligned_le16(r + 2);
	o->in1 = get_unaligned_le16(r + 4);
	o->out = get_unaligned_le16(r + 6);
	for (k = 0; k < ML_LIB_BLOB_N_P; k++)
		o->p[k] = (s32)get_unaligned_le32(r + 8 + 4 * k);
	for (k = 0; k < ML_LIB_BLOB_N_D; k++)
		o->d[k] = get_unaligned_le32(r + 48 + 4 * k);
	if (o->code < ML_OP_INPUT || o->code > ML_OP_MAX_CODE)
		return -EOPNOTSUPP;
	desc = &ml_lib_blob_ops[o->code];
	for (k = desc->n_p; k < ML_LIB_BLOB_N_P; k++)
		if (o->p[k])
			return -EINVAL;
	for (k = desc->n_d; k < ML_LIB_BLOB_N_D; k++)
		if (o->d[k] != ML_LIB_BLOB_NO_DATA)
			return -EINVAL;
	return 0;
}

/*
 * Element count of array @k of op @o from its signed parameters, or -1 when
 * it is negative or absurd (> ML_LIB_BLOB_MAX_ARRAY), as read_blob() does.
 * A LUT's length follows from its input's dtype in @tensors (the caller has
 * checked that in0 is an S8 or S16 tensor).
 */
static s64 ml_lib_blob_array_len(const struct ml_lib_blob_op *o, u32 k,
				 const struct ml_lib_tensor *tensors)
{
	const s32 *p = o->p;
	s64 n;

	switch (o->code) {
	case ML_OP_INPUT:
		n = p[1];
		break;
	case ML_OP_FC:
		n = k ? p[1] : (s64)p[1] * p[0];
		break;
	case ML_OP_CONV1D:
		if (k)
			n = p[2];
		else if (check_mul_overflow((s64)p[2] * p[0], (s64)p[4], &n))
			return -1;
		break;
	case ML_OP_LUT:
		n = tensors[o->in0].dtype == ML_LIB_S8 ? 256 : 513;
		break;
	default: /* ML_OP_SOFTMAX */
		n = p[4];
		break;
	}
	return n < 0 || n > ML_LIB_BLOB_MAX_ARRAY ? -1 : n;
}

/*
 * Arrays are stored little-endian: convert @n elements of @esize bytes
 * from the blob (@src) into the graph's copy (@dst, aligned to @esize).
 * On a little-endian CPU this copies the same bytes again. Arrays do not
 * overlap (ml_lib_blob_resolve()), so each byte is converted at most once
 * and means the same on every CPU.
 */
static void ml_lib_blob_array_to_cpu(u8 *dst, const u8 *src, u32 esize, s64 n)
{
	s64 e;

	for (e = 0; e < n; e++, dst += esize, src += esize) {
		if (esize == 2)
			*(u16 *)dst = get_unaligned_le16(src);
		else if (esize == 4)
			*(u32 *)dst = get_unaligned_le32(src);
		else if (esize == 8)
			*(u64 *)dst = get_unaligned_le64(src);
	}
}

/*
 * Check the op's data references, convert the arrays to CPU byte order and
 * turn them into pointers into @data, the graph's copy of the blob's data
 * section @src. @ptr[k] is left NULL for unused arrays.
 *
 * Each array must start at or after the end of the one before it, in op
 * and slot order (@next: that end), as write_blob() lays them out. Shared
 * or overlapping arrays would let a blob of a few MiB make the loader
 * convert the whole data section once per reference (tens of seconds
 * before the work budget is checked), and bytes that two arrays of
 * different element sizes share would convert differently on big-endian
 * CPUs than the little-endian reference reads them.
 */
static int ml_lib_blob_resolve(const struct ml_lib_blob_op *o, const struct ml_lib_blob_hdr *h,
			       const struct ml_lib_tensor *tensors, const u8 *src, u8 *data,
			       u64 *next, const void *ptr[ML_LIB_BLOB_N_D])
{
	const struct ml_lib_blob_opdesc *desc = &ml_lib_blob_ops[o->code];
	u32 k;

	/* The table length depends on the input dtype. */
	if (o->code == ML_OP_LUT &&
	    (o->in0 >= h->n_tensors || tensors[o->in0].dtype == ML_LIB_S32))
		return -EINVAL;
	for (k = 0; k < ML_LIB_BLOB_N_D; k++) {
		s64 n;

		ptr[k] = NULL;
		if (k >= desc->n_d)
			continue;
		n = ml_lib_blob_array_len(o, k, tensors);
		if (n < 0)
			return -EINVAL;
		/* n * esize < 2^29: no overflow */
		if (o->d[k] == ML_LIB_BLOB_NO_DATA || o->d[k] % desc->esize[k] ||
		    (u64)o->d[k] + (u64)n * desc->esize[k] > h->data_len ||
		    o->d[k] < *next)
			return -ERANGE;
		*next = (u64)o->d[k] + (u64)n * desc->esize[k];
		if (desc->esize[k] > 1)
			ml_lib_blob_array_to_cpu(data + o->d[k], src + o->d[k],
						 desc->esize[k], n);
		ptr[k] = data + o->d[k];
	}
	return 0;
}

/*
 * CONV1D dimensions are u16 in struct ml_lib_conv1d_params. A blob value
 * outside [0, ML_LIB_MAX_DIM] must not wrap onto a valid one: such an op
 * gets stride 0, which the validator's dimension check rejects with the
 * same -EINVAL, at the same point, as the value itself.
 */
static bool ml_lib_blob_conv_dims_fit(const s32 *p)
{
	u32 k;

	/* p[0..7]: c_in, l_in, c_out, l_out, k, stride, pad, dil */
	for (k = 0; k < 8; k++)
		if ((u32)p[k] > ML_LIB_MAX_DIM)
			return false;
	return true;
}

/* Fill the native op from a decoded record whose arrays are resolved. */
static void ml_lib_blob_fill_op(struct ml_lib_op *op, const struct ml_lib_blob_op *o,
				const void *const ptr[ML_LIB_BLOB_N_D])
{
	const s32 *p = o->p;

	op->code = o->code;
	op->in[0] = o->in0;
	op->in[1] = o->in1;
	op->out = o->out;
	switch (o->code) {
	case ML_OP_INPUT:
		op->u.input = (struct ml_lib_input_params){
			.in_off = p[0], .n = p[1],
			.off = ptr[0], .pre = ptr[1], .mult = ptr[2], .shift = ptr[3],
		};
		break;
	case ML_OP_FC:
		op->u.fc = (struct ml_lib_fc_params){
			.n_in = p[0], .n_out = p[1], .lo = p[2], .hi = p[3],
			.w = ptr[0], .bias = ptr[1], .mult = ptr[2], .shift = ptr[3],
		};
		break;
	case ML_OP_CONV1D:
		op->u.conv = (struct ml_lib_conv1d_params){
			.c_in = (u16)p[0], .l_in = (u16)p[1],
			.c_out = (u16)p[2], .l_out = (u16)p[3],
			.k = (u16)p[4], .pad = (u16)p[6], .dil = (u16)p[7],
			.stride = ml_lib_blob_conv_dims_fit(p) ? (u16)p[5] : 0,
			.lo = p[8], .hi = p[9],
			.w = ptr[0], .bias = ptr[1], .mult = ptr[2], .shift = ptr[3],
		};
		break;
	case ML_OP_MAXPOOL1D:
	case ML_OP_AVGPOOL1D:
		op->u.pool = (struct ml_lib_pool1d_params){
			.c = p[0], .l_in = p[1], .l_out = p[2], .k = p[3], .stride = p[4],
			.mult = p[5], .shift = p[6], .lo = p[7], .hi = p[8],
		};
		break;
	case ML_OP_CLAMP:
		op->u.elt = (struct ml_lib_eltwise_params){ .n = p[0], .lo = p[1], .hi = p[2] };
		break;
	case ML_OP_LEAKY_RELU:
		op->u.elt = (struct ml_lib_eltwise_params){
			.n = p[0], .mult = p[1], .shift = p[2], .mult_b = p[3], .shift_b = p[4],
		};
		break;
	case ML_OP_LUT:
		op->u.elt = (struct ml_lib_eltwise_params){ .n = p[0], .table = ptr[0] };
		break;
	case ML_OP_ADD:
		op->u.elt = (struct ml_lib_eltwise_params){
			.n = p[0], .mult = p[1], .mult_b = p[2], .shift = p[3],
			.lo = p[4], .hi = p[5],
		};
		break;
	case ML_OP_RESCALE:
		op->u.elt = (struct ml_lib_eltwise_params){
			.n = p[0], .mult = p[1], .shift = p[2], .lo = p[3], .hi = p[4],
		};
		break;
	case ML_OP_CONCAT:
		op->u.concat = (struct ml_lib_concat_params){
			.outer = p[0], .a_inner = p[1], .b_inner = p[2],
		};
		break;
	case ML_OP_RESHAPE:
		op->u.elt = (struct ml_lib_eltwise_params){ .n = p[0] };
		break;
	case ML_OP_SOFTMAX:
	case ML_OP_ARGMAX:
		op->u.softmax = (struct ml_lib_softmax_params){
			.outer = p[0], .n = p[1], .shift = p[2], .bits = p[3],
			.table_len = p[4], .table = ptr[0],
		};
		break;
	default: /* ML_OP_OUTPUT */
		op->u.output = (struct ml_lib_output_params){
			.out_off = p[0], .n = p[1], .mode = p[2], .mult = p[3], .shift = p[4],
		};
		break;
	}
}

/* Byte offsets of the parts of the one allocation, each 8-aligned. */
struct ml_lib_blob_layout {
	size_t name, tensors, ops, data, total;
};

static int ml_lib_blob_layout(const struct ml_lib_blob_hdr *h, struct ml_lib_blob_layout *l)
{
	l->name = ml_lib_align8(sizeof(struct ml_lib_graph));
	l->tensors = l->name + ml_lib_align8(ML_LIB_NAME_LEN);
	l->ops = l->tensors + ml_lib_align8(sizeof(struct ml_lib_tensor) * h->n_tensors);
	l->data = l->ops + sizeof(struct ml_lib_op) * h->n_ops;
	/* data_len is bounded only by the blob length: guard 32-bit size_t */
	if (check_add_overflow(l->data, (size_t)h->data_len, &l->total))
		return -E2BIG;
	return 0;
}

static int ml_lib_blob_fill(struct ml_lib_graph *g, const u8 *b, const struct ml_lib_blob_hdr *h,
			    u8 *mem, const struct ml_lib_blob_layout *l)
{
	struct ml_lib_tensor *tensors = (struct ml_lib_tensor *)(mem + l->tensors);
	struct ml_lib_op *ops = (struct ml_lib_op *)(mem + l->ops);
	const u8 *rec = b + ML_LIB_BLOB_HDR_LEN;
	const u8 *src = b + h->data_off;
	u8 *data = mem + l->data;
	u64 next = 0;
	u32 i;
	int ret;

	for (i = 0; i < h->n_tensors; i++, rec += ML_LIB_BLOB_TENSOR_LEN) {
		ret = ml_lib_blob_read_tensor(rec, &tensors[i]);
		if (ret)
			return ret;
	}
	for (i = 0; i < h->n_ops; i++, rec += ML_LIB_BLOB_OP_LEN) {
		struct ml_lib_blob_op o;
		const void *ptr[ML_LIB_BLOB_N_D];

		ret = ml_lib_blob_read_op(rec, &o);
		if (!ret)
			ret = ml_lib_blob_resolve(&o, h, tensors, src, data, &next, ptr);
		if (ret)
			return ret;
		ml_lib_blob_fill_op(&ops[i], &o, ptr);
	}
	g->tensors = tensors;
	g->ops = ops;
	return 0;
}

/**
 * ml_lib_blob_parse() - build a validated graph from a binary model
 * @blob: the model, in the format of docs/blob-format.md
 * @len: its exact length in bytes
 * @out: on success, the new graph; the caller releases it with
 *       ml_lib_graph_free(). Set to NULL on failure.
 *
 * Decodes and checks every header field, record and data reference, copies
 * what the graph needs into one allocation (@blob may be freed afterwards),
 * then runs ml_lib_graph_validate(). A blob that fails anything is never
 * run and leaves nothing allocated.
 *
 * Context: Process context; may sleep (allocates with GFP_KERNEL).
 * Return: 0 on success, or -EMSGSIZE (length fields), -ENOEXEC (magic),
 * -EPROTONOSUPPORT (version), -ERANGE (offset or alignment), -EOPNOTSUPP
 * (op code), -EINVAL (shapes, indices, reserved fields, name), -EDOM
 * (parameter range), -EOVERFLOW (accumulator bound), -E2BIG (limits) or
 * -ENOMEM.
 */
int ml_lib_blob_parse(const void *blob, size_t len, struct ml_lib_graph **out)
{
	struct ml_lib_blob_layout l;
	struct ml_lib_blob_hdr h;
	struct ml_lib_graph *g;
	const u8 *b = blob;
	char *name;
	u8 *mem;
	int ret;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!blob)
		return -EINVAL;
	ret = ml_lib_blob_read_hdr(b, len, &h);
	if (!ret)
		ret = ml_lib_blob_layout(&h, &l);
	if (ret)
		return ret;

	mem = kvmalloc(l.total, GFP_KERNEL);
	if (!mem)
		return -ENOMEM;
	memcpy(mem + l.data, b + h.data_off, h.data_len);
	name = (char *)(mem + l.name);
	memcpy(name, b + 48, ML_LIB_NAME_LEN);

	g = (struct ml_lib_graph *)mem;
	g->name = name;
	g->n_tensors = h.n_tensors;
	g->n_ops = h.n_ops;
	g->n_in = h.n_in;
	g->n_out = h.n_out;
	g->arena_bytes = h.arena_bytes;
	ret = ml_lib_blob_fill(g, b, &h, mem, &l);
	if (!ret)
		ret = ml_lib_graph_validate(g);
	if (ret) {
		kvfree(mem);
		return ret;
	}
	*out = g;
	return 0;
}
EXPORT_SYMBOL_GPL(ml_lib_blob_parse);

/**
 * ml_lib_graph_free() - free a graph made by ml_lib_blob_parse()
 * @g: the graph, or NULL
 *
 * Never pass a graph from generated C tables: those are static data.
 *
 * Context: Process context.
 */
void ml_lib_graph_free(struct ml_lib_graph *g)
{
	kvfree(g);
}
EXPORT_SYMBOL_GPL(ml_lib_graph_free);

/*
 * The canonical blob of a graph: exactly the bytes write_blob()
 * (toolchain/ml_lib/blob.py) writes for it, whether the graph came from a
 * blob or from generated C tables. The kernel hashes them, so the model's
 * sha256 in debugfs is sha256sum of the blob mlexport wrote; the tests
 * compare them with the toolchain's blob byte for byte.
 */
struct ml_lib_blob_sink {
	void (*emit)(void *ctx, const void *p, size_t n);
	void *ctx;
	u32 fill;
	u8 buf[64];
};

static void ml_lib_sink_flush(struct ml_lib_blob_sink *s)
{
	if (s->fill)
		s->emit(s->ctx, s->buf, s->fill);
	s->fill = 0;
}

static void ml_lib_sink_byte(struct ml_lib_blob_sink *s, u8 b)
{
	s->buf[s->fill++] = b;
	if (s->fill == sizeof(s->buf))
		ml_lib_sink_flush(s);
}

/* @size bytes of @v, least significant first, as every blob integer. */
static void ml_lib_sink_le(struct ml_lib_blob_sink *s, u64 v, u32 size)
{
	u32 i;

	for (i = 0; i < size; i++)
		ml_lib_sink_byte(s, (u8)(v >> (8 * i)));
}

static void ml_lib_sink_zeros(struct ml_lib_blob_sink *s, u64 n)
{
	while (n--)
		ml_lib_sink_byte(s, 0);
}

/* Element @e of array @a, of @esize bytes each, in CPU byte order. */
static u64 ml_lib_array_elem(const void *a, u32 esize, s64 e)
{
	if (esize == 2)
		return ((const u16 *)a)[e];
	if (esize == 4)
		return ((const u32 *)a)[e];
	if (esize == 8)
		return ((const u64 *)a)[e];
	return ((const u8 *)a)[e];
}

/*
 * The inverse of ml_lib_blob_fill_op(): @op's record and array pointers.
 * Parameters past the op's count are 0 in a blob, whatever the struct
 * holds there.
 */
static void ml_lib_blob_record_of(const struct ml_lib_op *op, struct ml_lib_blob_op *o,
				  const void *ptr[ML_LIB_BLOB_N_D])
{
	const struct ml_lib_eltwise_params *e = &op->u.elt;
	s32 *p = o->p;
	u32 k;

	o->code = op->code;
	o->in0 = op->in[0];
	o->in1 = op->in[1];
	o->out = op->out;
	for (k = 0; k < ML_LIB_BLOB_N_P; k++)
		p[k] = 0;
	for (k = 0; k < ML_LIB_BLOB_N_D; k++)
		ptr[k] = NULL;
	switch (op->code) {
	case ML_OP_INPUT:
		p[0] = op->u.input.in_off;
		p[1] = op->u.input.n;
		ptr[0] = op->u.input.off;
		ptr[1] = op->u.input.pre;
		ptr[2] = op->u.input.mult;
		ptr[3] = op->u.input.shift;
		break;
	case ML_OP_FC:
		p[0] = op->u.fc.n_in;
		p[1] = op->u.fc.n_out;
		p[2] = op->u.fc.lo;
		p[3] = op->u.fc.hi;
		ptr[0] = op->u.fc.w;
		ptr[1] = op->u.fc.bias;
		ptr[2] = op->u.fc.mult;
		ptr[3] = op->u.fc.shift;
		break;
	case ML_OP_CONV1D:
		p[0] = op->u.conv.c_in;
		p[1] = op->u.conv.l_in;
		p[2] = op->u.conv.c_out;
		p[3] = op->u.conv.l_out;
		p[4] = op->u.conv.k;
		p[5] = op->u.conv.stride;
		p[6] = op->u.conv.pad;
		p[7] = op->u.conv.dil;
		p[8] = op->u.conv.lo;
		p[9] = op->u.conv.hi;
		ptr[0] = op->u.conv.w;
		ptr[1] = op->u.conv.bias;
		ptr[2] = op->u.conv.mult;
		ptr[3] = op->u.conv.shift;
		break;
	case ML_OP_MAXPOOL1D:
	case ML_OP_AVGPOOL1D:
		p[0] = op->u.pool.c;
		p[1] = op->u.pool.l_in;
		p[2] = op->u.pool.l_out;
		p[3] = op->u.pool.k;
		p[4] = op->u.pool.stride;
		p[5] = op->u.pool.mult;
		p[6] = op->u.pool.shift;
		p[7] = op->u.pool.lo;
		p[8] = op->u.pool.hi;
		break;
	case ML_OP_CLAMP:
		p[0] = e->n;
		p[1] = e->lo;
		p[2] = e->hi;
		break;
	case ML_OP_LEAKY_RELU:
		p[0] = e->n;
		p[1] = e->mult;
		p[2] = e->shift;
		p[3] = e->mult_b;
		p[4] = e->shift_b;
		break;
	case ML_OP_LUT:
		p[0] = e->n;
		ptr[0] = e->table;
		break;
	case ML_OP_ADD:
		p[0] = e->n;
		p[1] = e->mult;
		p[2] = e->mult_b;
		p[3] = e->shift;
		p[4] = e->lo;
		p[5] = e->hi;
		break;
	case ML_OP_RESCALE:
		p[0] = e->n;
		p[1] = e->mult;
		p[2] = e->shift;
		p[3] = e->lo;
		p[4] = e->hi;
		break;
	case ML_OP_CONCAT:
		p[0] = op->u.concat.outer;
		p[1] = op->u.concat.a_inner;
		p[2] = op->u.concat.b_inner;
		break;
	case ML_OP_RESHAPE:
		p[0] = e->n;
		break;
	case ML_OP_SOFTMAX:
	case ML_OP_ARGMAX:
		p[0] = op->u.softmax.outer;
		p[1] = op->u.softmax.n;
		p[2] = op->u.softmax.shift;
		p[3] = op->u.softmax.bits;
		p[4] = op->u.softmax.table_len;
		ptr[0] = op->u.softmax.table;
		break;
	default: /* ML_OP_OUTPUT */
		p[0] = op->u.output.out_off;
		p[1] = op->u.output.n;
		p[2] = op->u.output.mode;
		p[3] = op->u.output.mult;
		p[4] = op->u.output.shift;
		break;
	}
	for (k = ml_lib_blob_ops[op->code].n_p; k < ML_LIB_BLOB_N_P; k++)
		p[k] = 0;
}

/*
 * Walk @g's arrays in blob order: with @s NULL only measure the data
 * section; otherwise write op records (@records) or the arrays themselves.
 * Return: the data section's length.
 */
static u64 ml_lib_blob_walk(const struct ml_lib_graph *g, struct ml_lib_blob_sink *s,
			    bool records)
{
	u64 len = 0;
	u32 i, k;

	for (i = 0; i < g->n_ops; i++) {
		const struct ml_lib_blob_opdesc *desc = &ml_lib_blob_ops[g->ops[i].code];
		const void *ptr[ML_LIB_BLOB_N_D];
		struct ml_lib_blob_op o;

		ml_lib_blob_record_of(&g->ops[i], &o, ptr);
		for (k = 0; k < ML_LIB_BLOB_N_D; k++)
			o.d[k] = ML_LIB_BLOB_NO_DATA;
		for (k = 0; k < desc->n_d; k++) {
			s64 n = ml_lib_blob_array_len(&o, k, g->tensors), e;

			if (s && !records)
				ml_lib_sink_zeros(s, ml_lib_align8(len) - len);
			len = ml_lib_align8(len);
			o.d[k] = (u32)len;
			len += (u64)n * desc->esize[k];
			if (!s || records)
				continue;
			for (e = 0; e < n; e++)
				ml_lib_sink_le(s, ml_lib_array_elem(ptr[k], desc->esize[k], e),
					       desc->esize[k]);
		}
		if (!s || !records)
			continue;
		ml_lib_sink_le(s, o.code, 2);
		ml_lib_sink_le(s, o.in0, 2);
		ml_lib_sink_le(s, o.in1, 2);
		ml_lib_sink_le(s, o.out, 2);
		for (k = 0; k < ML_LIB_BLOB_N_P; k++)
			ml_lib_sink_le(s, (u32)o.p[k], 4);
		for (k = 0; k < ML_LIB_BLOB_N_D; k++)
			ml_lib_sink_le(s, o.d[k], 4);
	}
	if (s && !records)
		ml_lib_sink_zeros(s, ml_lib_align8(len) - len);
	return ml_lib_align8(len);
}

/**
 * ml_lib_graph_write_blob() - write a graph as its canonical blob
 * @g: a graph that passed ml_lib_graph_validate() (generated C tables, or
 *     the result of ml_lib_blob_parse())
 * @emit: called with consecutive pieces of the blob, in order, each at most
 *        64 bytes
 * @ctx: passed to @emit
 *
 * Writes the bytes toolchain/ml_lib/blob.py write_blob() writes for the
 * same model: a blob mlexport wrote comes back byte for byte, and the
 * generated C tables of a model give the blob exported beside them. Hashing
 * them identifies the model that runs (the kernel shows their sha256 in
 * debugfs). Nothing is allocated; the time is linear in the blob's length
 * (at most %ML_LIB_MAX_BLOB_LEN).
 *
 * Context: Any context @emit may run in.
 * Return: the blob's length in bytes.
 */
size_t ml_lib_graph_write_blob(const struct ml_lib_graph *g,
			       void (*emit)(void *ctx, const void *p, size_t n), void *ctx)
{
	struct ml_lib_blob_sink s = { .emit = emit, .ctx = ctx };
	u64 recs = ML_LIB_BLOB_HDR_LEN + (u64)ML_LIB_BLOB_TENSOR_LEN * g->n_tensors +
		   (u64)ML_LIB_BLOB_OP_LEN * g->n_ops;
	u64 data_off = ml_lib_align8(recs), data_len = ml_lib_blob_walk(g, NULL, false);
	u32 i, name_len = 0;

	ml_lib_sink_le(&s, ML_LIB_BLOB_MAGIC, 4);
	ml_lib_sink_le(&s, ML_LIB_BLOB_MAJOR, 2);
	ml_lib_sink_le(&s, 0, 2);	/* minor */
	ml_lib_sink_le(&s, ML_LIB_BLOB_HDR_LEN, 4);
	ml_lib_sink_le(&s, data_off + data_len, 4);
	ml_lib_sink_le(&s, g->n_tensors, 4);
	ml_lib_sink_le(&s, g->n_ops, 4);
	ml_lib_sink_le(&s, g->n_in, 4);
	ml_lib_sink_le(&s, g->n_out, 4);
	ml_lib_sink_le(&s, g->arena_bytes, 4);
	ml_lib_sink_le(&s, data_off, 4);
	ml_lib_sink_le(&s, data_len, 4);
	ml_lib_sink_le(&s, 0, 4);	/* reserved */
	while (name_len < ML_LIB_NAME_LEN - 1 && g->name[name_len])
		ml_lib_sink_byte(&s, g->name[name_len++]);
	ml_lib_sink_zeros(&s, ML_LIB_NAME_LEN - name_len);
	for (i = 0; i < g->n_tensors; i++) {
		const struct ml_lib_tensor *t = &g->tensors[i];

		ml_lib_sink_le(&s, t->offset, 4);
		ml_lib_sink_le(&s, t->len, 4);
		ml_lib_sink_le(&s, (u32)t->zero_point, 4);
		ml_lib_sink_le(&s, t->dtype, 1);
		ml_lib_sink_zeros(&s, 3);
	}
	ml_lib_blob_walk(g, &s, true);
	ml_lib_sink_zeros(&s, data_off - recs);
	ml_lib_blob_walk(g, &s, false);
	ml_lib_sink_flush(&s);
	return data_off + data_len;
}
EXPORT_SYMBOL_GPL(ml_lib_graph_write_blob);
