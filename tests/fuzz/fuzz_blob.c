// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer target: ml_lib_blob_parse() on arbitrary bytes and, whenever a
 * blob is accepted, ml_lib_run() on an all-zero and an extreme input, and
 * ml_lib_graph_write_blob(): its canonical blob must parse again and be
 * written back identically (an accepted blob may have gaps the canonical
 * one does not).
 *
 * Built by `make fuzz` with clang -fsanitize=fuzzer,address,undefined on
 * the user-space build of lib/ml. Every buffer is malloc'ed at its exact
 * size so ASan sees any access past it; leaks are reported by libFuzzer.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <linux/ml_lib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct blob_buf {
	u8 *buf;
	size_t len, cap;
};

/* Copies what is emitted into @buf, or with @buf NULL only counts it. */
static void blob_emit(void *ctx, const void *p, size_t n)
{
	struct blob_buf *b = ctx;

	if (b->buf) {
		if (b->len + n > b->cap)
			abort();	/* more than the first pass */
		memcpy(b->buf + b->len, p, n);
	}
	b->len += n;
}

/* The canonical blob of @g, malloc'ed at its exact size. */
static u8 *canonical(const struct ml_lib_graph *g, size_t *len)
{
	struct blob_buf b = { 0 };

	*len = ml_lib_graph_write_blob(g, blob_emit, &b);
	if (*len != b.len || *len > ML_LIB_MAX_BLOB_LEN)
		abort();
	b = (struct blob_buf){ .buf = malloc(*len), .cap = *len };
	if (!b.buf)
		abort();
	if (ml_lib_graph_write_blob(g, blob_emit, &b) != *len || b.len != *len)
		abort();
	return b.buf;
}

static void check_rewrite(const struct ml_lib_graph *g)
{
	struct ml_lib_graph *g2;
	size_t len, len2;
	u8 *b, *b2;

	b = canonical(g, &len);
	if (ml_lib_blob_parse(b, len, &g2))
		abort();	/* the canonical blob of a valid graph is refused */
	b2 = canonical(g2, &len2);
	if (len2 != len || memcmp(b, b2, len))
		abort();
	free(b2);
	free(b);
	ml_lib_graph_free(g2);
}

static void run_once(const struct ml_lib_graph *g, void *arena, s64 *in, s32 *out)
{
	if (ml_lib_run(g, arena, in, g->n_in, out, g->n_out))
		abort();	/* a validated graph must run */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ml_lib_graph *g;
	void *arena;
	s64 *in;
	s32 *out;
	u32 i;

	if (ml_lib_blob_parse(data, size, &g))
		return 0;
	if (ml_lib_graph_validate(g))
		abort();	/* the loader accepted what the validator rejects */

	arena = malloc(g->arena_bytes);
	in = calloc(g->n_in, sizeof(*in));
	out = malloc(g->n_out * sizeof(*out));
	if (!arena || !in || !out)
		abort();
	run_once(g, arena, in, out);
	for (i = 0; i < g->n_in; i++)	/* raw features at the s64 limits */
		in[i] = i % 2 ? INT64_MAX : INT64_MIN;
	run_once(g, arena, in, out);
	check_rewrite(g);

	free(out);
	free(in);
	free(arena);
	ml_lib_graph_free(g);
	return 0;
}
