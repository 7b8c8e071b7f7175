// SPDX-License-Identifier: GPL-2.0
/*
 * lib/ml on a big-endian CPU: tests/test_big_endian.py builds this with
 * clang --target=s390x-linux-gnu (static), with the engine's sources and
 * some generated C tables, and runs it under qemu-s390x. Everything on the
 * pipe is little-endian, whatever the CPU, so the Python side needs no
 * knowledge of the target.
 *
 * stdout starts with the u32 0x01020304 in the CPU's own byte order: the
 * test checks it reads 01 02 03 04, i.e. that it really ran big-endian.
 * Then one reply per request read from stdin, until end of file:
 *
 *   'B' u32 len, blob[len], u32 rows, u32 n_in, s64 raw[rows][n_in]
 *       ml_lib_blob_parse() the blob, ml_lib_run() every row
 *   'G' u32 index, u32 rows, u32 n_in, s64 raw[rows][n_in]
 *       ml_lib_graph_validate() generated graph runner_graphs[index], run
 *
 *   reply: s32 errno (0, or the positive errno of the parse, validation or
 *          first failing run), then if 0: s32 out[rows][n_out]
 *
 * n_in is the caller's, from its own copy of the model, so the rows of a
 * rejected blob can be read past. Each row runs on an arena
 * refilled with garbage first, so a read of a scratch byte that no op
 * wrote shows up as a mismatch.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linux/ml_lib.h>

/* written by the test: the generated graphs compiled in (may be none) */
extern const struct ml_lib_graph *const runner_graphs[];
extern const u32 runner_n_graphs;

static void die(const char *why)
{
	fprintf(stderr, "engine_runner: %s\n", why);
	exit(1);
}

static void read_bytes(void *p, size_t n)
{
	if (n && fread(p, 1, n, stdin) != n)
		die("short read on stdin");
}

/* get_unaligned_le*() come with ml_lib_compat.h, as the blob loader uses them */
static u32 read_le32(void)
{
	u8 b[4];

	read_bytes(b, 4);
	return get_unaligned_le32(b);
}

static void write_le32(u32 v)
{
	u8 b[4] = { v, v >> 8, v >> 16, v >> 24 };

	if (fwrite(b, 1, 4, stdout) != 4)
		die("short write on stdout");
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		die("out of memory");
	return p;
}

/* rows * n_in little-endian s64 from stdin, in the CPU's order */
static s64 *read_rows(u32 rows, u32 n_in)
{
	size_t n = (size_t)rows * n_in, i;
	u8 *b = xmalloc(n * 8);
	s64 *raw = xmalloc(n * sizeof(*raw));

	read_bytes(b, n * 8);
	for (i = 0; i < n; i++)
		raw[i] = (s64)get_unaligned_le64(b + 8 * i);
	free(b);
	return raw;
}

static u32 garbage_state = 2463534242U;

static void fill_garbage(u64 *arena, u32 words)
{
	u32 i;

	for (i = 0; i < words; i++) {
		garbage_state ^= garbage_state << 13;
		garbage_state ^= garbage_state >> 17;
		garbage_state ^= garbage_state << 5;
		arena[i] = (u64)garbage_state << 32 | (garbage_state * 2654435761U);
	}
}

/* Run every row and reply; the graph has passed validation. */
static void run_rows(const struct ml_lib_graph *g, const s64 *raw, u32 rows)
{
	u32 words = (g->arena_bytes + 7) / 8, r, i;
	u64 *arena = xmalloc((size_t)words * 8);
	s32 *out = xmalloc((size_t)rows * g->n_out * sizeof(*out));
	int ret = 0;

	for (r = 0; r < rows && !ret; r++) {
		fill_garbage(arena, words);
		ret = ml_lib_run(g, arena, raw + (size_t)r * g->n_in, g->n_in,
				 out + (size_t)r * g->n_out, g->n_out);
	}
	write_le32((u32)-ret);
	if (!ret)
		for (i = 0; i < rows * g->n_out; i++)
			write_le32((u32)out[i]);
	free(out);
	free(arena);
}

static void blob_request(void)
{
	u32 len = read_le32(), rows, n_in;
	u8 *blob = xmalloc(len);
	struct ml_lib_graph *g;
	s64 *raw;
	int ret;

	read_bytes(blob, len);
	rows = read_le32();
	n_in = read_le32();
	raw = read_rows(rows, n_in);
	ret = ml_lib_blob_parse(blob, len, &g);
	if (ret) {
		write_le32((u32)-ret);
	} else {
		if (n_in != g->n_in)
			die("row width differs from the blob's n_in");
		run_rows(g, raw, rows);
		ml_lib_graph_free(g);
	}
	free(raw);
	free(blob);
}

static void graph_request(void)
{
	u32 index = read_le32(), rows = read_le32(), n_in = read_le32();
	const struct ml_lib_graph *g;
	s64 *raw;
	int ret;

	if (index >= runner_n_graphs)
		die("graph index out of range");
	g = runner_graphs[index];
	raw = read_rows(rows, n_in);
	ret = ml_lib_graph_validate(g);
	if (ret)
		write_le32((u32)-ret);
	else if (n_in != g->n_in)
		die("row width differs from the graph's n_in");
	else
		run_rows(g, raw, rows);
	free(raw);
}

int main(void)
{
	const u32 order = 0x01020304;
	int c;

	if (fwrite(&order, 1, 4, stdout) != 4)
		die("short write on stdout");
	while ((c = getchar()) != EOF) {
		if (c == 'B')
			blob_request();
		else if (c == 'G')
			graph_request();
		else
			die("unknown request");
	}
	return fflush(stdout) ? 1 : 0;
}
