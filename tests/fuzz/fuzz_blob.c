// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer target: ml_lib_blob_parse() on arbitrary bytes and, whenever a
 * blob is accepted, ml_lib_run() on an all-zero and an extreme input.
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

	free(out);
	free(in);
	free(arena);
	ml_lib_graph_free(g);
	return 0;
}
