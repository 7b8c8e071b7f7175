// SPDX-License-Identifier: GPL-2.0
/*
 * C side of `make bench`: one model, three engines timed side by side.
 *
 *   ml_lib-scalar   lib/ml: ml_lib_run() on the graph parsed from the blob
 *   int64-baseline  LinnOS-style (OSDI'20, as the paper describes it):
 *                   int64 weights scaled x1000, int64 inputs, per-neuron
 *                   "/ 1000" rescale and ReLU, plain loops
 *   int8-dot        the floor: a tight int8 x int8 -> s32 dot product per
 *                   output, then shift + clamp to int8, same shapes
 *
 * Built with the kernel's code generation (-O2 -mgeneral-regs-only
 * -mno-red-zone: no SSE, no auto-vectorisation), like the engine itself.
 * Integer-only, so it builds under those flags. Rounds interleave the
 * engines so machine noise hits all of them alike; each round times a
 * batch of calls. Prints one JSON object per engine with the median and
 * quartiles in picoseconds per call.
 *
 * usage: bench_c BLOB ROUNDS mlp W0 W1 ... | conv C_IN WIN C_OUT K N_CLASSES
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <linux/ml_lib.h>

#define MAX_LAYERS	8
#define N_ENGINES	3

static const char *const engine_names[N_ENGINES] = {
	"ml_lib-scalar", "int64-baseline", "int8-dot",
};

/* Shapes: an MLP of n_layers FC layers, or conv -> maxpool(2) -> fc. */
struct shape {
	int conv;
	u32 n_layers, width[MAX_LAYERS + 1];
	u32 c_in, win, c_out, k, n_cls, l_conv, l_pool;
};

static s64 sink;	/* keeps results alive (printed at the end) */

static u64 now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (u64)ts.tv_sec * 1000000000ULL + (u64)ts.tv_nsec;
}

static u32 lcg_state = 12345;

static s32 rnd(s32 lo, s32 hi)
{
	lcg_state = lcg_state * 1103515245U + 12345U;
	return lo + (s32)((lcg_state >> 8) % (u32)(hi - lo + 1));
}

static void *xmalloc(size_t n)
{
	void *p = calloc(1, n ? n : 1);

	if (!p) {
		fprintf(stderr, "bench_c: out of memory\n");
		exit(1);
	}
	return p;
}

/* ---- int64-baseline: LinnOS-style ---------------------------------------- */

struct i64_model {
	s64 *w[MAX_LAYERS], *b[MAX_LAYERS];
	s64 *act[MAX_LAYERS + 1];
	s64 *conv_w, *conv_b, *conv_out, *pool_out;
};

/* One layer: out[j] = relu((sum_i w[j][i] * in[i] + b[j]) / 1000). */
static void i64_layer(const s64 *w, const s64 *b, const s64 *in, s64 *out,
		      u32 n_in, u32 n_out, int relu)
{
	u32 i, j;

	for (j = 0; j < n_out; j++) {
		s64 acc = 0;

		for (i = 0; i < n_in; i++)
			acc += w[j * n_in + i] * in[i];
		acc = (acc + b[j]) / 1000;
		out[j] = relu && acc < 0 ? 0 : acc;
	}
}

static void i64_run(const struct shape *s, const struct i64_model *m, const s64 *in, s32 *out)
{
	u32 l, c, p, ci, j;
	const s64 *x = in;

	if (s->conv) {
		for (c = 0; c < s->c_out; c++)
			for (p = 0; p < s->l_conv; p++) {
				s64 acc = 0;

				for (ci = 0; ci < s->c_in; ci++)
					for (j = 0; j < s->k; j++)
						acc += m->conv_w[(c * s->c_in + ci) * s->k + j] *
						       in[ci * s->win + p + j];
				acc = (acc + m->conv_b[c]) / 1000;
				m->conv_out[c * s->l_conv + p] = acc < 0 ? 0 : acc;
			}
		for (c = 0; c < s->c_out; c++)
			for (p = 0; p < s->l_pool; p++) {
				s64 a = m->conv_out[c * s->l_conv + 2 * p];
				s64 b = m->conv_out[c * s->l_conv + 2 * p + 1];

				m->pool_out[c * s->l_pool + p] = a > b ? a : b;
			}
		x = m->pool_out;
	}
	for (l = 0; l < s->n_layers; l++) {
		i64_layer(m->w[l], m->b[l], x, m->act[l + 1], s->width[l], s->width[l + 1],
			  l + 1 < s->n_layers);
		x = m->act[l + 1];
	}
	for (j = 0; j < s->width[s->n_layers]; j++)
		out[j] = (s32)x[j];
}

/* ---- int8-dot: the floor ----------------------------------------------- */

struct i8_model {
	s8 *w[MAX_LAYERS];
	s32 *b[MAX_LAYERS];
	s8 *act[MAX_LAYERS + 1];
	s8 *conv_w, *conv_out, *pool_out;
	s32 *conv_b;
};

static s8 i8_requant(s32 acc)
{
	acc >>= 8;
	return (s8)(acc < -128 ? -128 : acc > 127 ? 127 : acc);
}

static void i8_layer(const s8 *w, const s32 *b, const s8 *in, s8 *out, u32 n_in, u32 n_out)
{
	u32 i, j;

	for (j = 0; j < n_out; j++) {
		const s8 *wj = w + (size_t)j * n_in;
		s32 acc = b[j];

		for (i = 0; i < n_in; i++)
			acc += wj[i] * in[i];
		out[j] = i8_requant(acc);
	}
}

static void i8_run(const struct shape *s, const struct i8_model *m, const s8 *in, s32 *out)
{
	u32 l, c, p, ci, j;
	const s8 *x = in;

	if (s->conv) {
		for (c = 0; c < s->c_out; c++)
			for (p = 0; p < s->l_conv; p++) {
				s32 acc = m->conv_b[c];

				for (ci = 0; ci < s->c_in; ci++) {
					const s8 *wc = m->conv_w + (c * s->c_in + ci) * s->k;
					const s8 *xc = in + ci * s->win + p;

					for (j = 0; j < s->k; j++)
						acc += wc[j] * xc[j];
				}
				m->conv_out[c * s->l_conv + p] = i8_requant(acc);
			}
		for (c = 0; c < s->c_out; c++)
			for (p = 0; p < s->l_pool; p++) {
				s8 a = m->conv_out[c * s->l_conv + 2 * p];
				s8 b = m->conv_out[c * s->l_conv + 2 * p + 1];

				m->pool_out[c * s->l_pool + p] = a > b ? a : b;
			}
		x = m->pool_out;
	}
	for (l = 0; l < s->n_layers; l++) {
		i8_layer(m->w[l], m->b[l], x, m->act[l + 1], s->width[l], s->width[l + 1]);
		x = m->act[l + 1];
	}
	for (j = 0; j < s->width[s->n_layers]; j++)
		out[j] = x[j];
}

/* ---- setup ------------------------------------------------------------- */

static int parse_shape(int argc, char **argv, struct shape *s)
{
	int i;

	memset(s, 0, sizeof(*s));
	if (argc >= 2 && !strcmp(argv[0], "mlp")) {
		s->n_layers = argc - 2;
		if (s->n_layers < 1 || s->n_layers > MAX_LAYERS)
			return -1;
		for (i = 1; i < argc; i++)
			s->width[i - 1] = strtoul(argv[i], NULL, 10);
		return 0;
	}
	if (argc == 6 && !strcmp(argv[0], "conv")) {
		s->conv = 1;
		s->c_in = strtoul(argv[1], NULL, 10);
		s->win = strtoul(argv[2], NULL, 10);
		s->c_out = strtoul(argv[3], NULL, 10);
		s->k = strtoul(argv[4], NULL, 10);
		s->n_cls = strtoul(argv[5], NULL, 10);
		s->l_conv = s->win - s->k + 1;
		s->l_pool = s->l_conv / 2;
		s->n_layers = 1;
		s->width[0] = s->c_out * s->l_pool;
		s->width[1] = s->n_cls;
		return 0;
	}
	return -1;
}

static u32 n_features(const struct shape *s)
{
	return s->conv ? s->c_in * s->win : s->width[0];
}

static void build_baselines(const struct shape *s, struct i64_model *m64, struct i8_model *m8)
{
	u32 l, i, n;

	for (l = 0; l < s->n_layers; l++) {
		n = s->width[l] * s->width[l + 1];
		m64->w[l] = xmalloc(n * sizeof(s64));
		m8->w[l] = xmalloc(n);
		for (i = 0; i < n; i++) {
			m8->w[l][i] = (s8)rnd(-127, 127);
			m64->w[l][i] = rnd(-2000, 2000);	/* float weight x 1000 */
		}
		m64->b[l] = xmalloc(s->width[l + 1] * sizeof(s64));
		m8->b[l] = xmalloc(s->width[l + 1] * sizeof(s32));
		for (i = 0; i < s->width[l + 1]; i++) {
			m64->b[l][i] = rnd(-100000, 100000);
			m8->b[l][i] = rnd(-1000, 1000);
		}
		m64->act[l + 1] = xmalloc(s->width[l + 1] * sizeof(s64));
		m8->act[l + 1] = xmalloc(s->width[l + 1]);
	}
	if (s->conv) {
		n = s->c_out * s->c_in * s->k;
		m64->conv_w = xmalloc(n * sizeof(s64));
		m8->conv_w = xmalloc(n);
		for (i = 0; i < n; i++) {
			m8->conv_w[i] = (s8)rnd(-127, 127);
			m64->conv_w[i] = rnd(-2000, 2000);
		}
		m64->conv_b = xmalloc(s->c_out * sizeof(s64));
		m8->conv_b = xmalloc(s->c_out * sizeof(s32));
		m64->conv_out = xmalloc(s->c_out * s->l_conv * sizeof(s64));
		m8->conv_out = xmalloc(s->c_out * s->l_conv);
		m64->pool_out = xmalloc(s->c_out * s->l_pool * sizeof(s64));
		m8->pool_out = xmalloc(s->c_out * s->l_pool);
	}
}

static void *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	void *buf;
	long n;

	if (!f || fseek(f, 0, SEEK_END))
		return NULL;
	n = ftell(f);
	if (n < 0 || fseek(f, 0, SEEK_SET))
		return NULL;
	buf = xmalloc(n);
	if (fread(buf, 1, n, f) != (size_t)n)
		return NULL;
	fclose(f);
	*len = n;
	return buf;
}

static int cmp_u64(const void *a, const void *b)
{
	u64 x = *(const u64 *)a, y = *(const u64 *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	struct i64_model m64 = { 0 };
	struct i8_model m8 = { 0 };
	struct ml_lib_graph *g;
	struct shape s;
	u64 *ps[N_ENGINES], t0, calls, batch;
	u32 rounds, r, e, i, k, n_out;
	s64 *in64, *raw;
	s8 *in8;
	s32 *out;
	void *blob, *arena;
	size_t len;
	int ret;

	if (argc < 5 || parse_shape(argc - 3, argv + 3, &s)) {
		fprintf(stderr,
			"usage: bench_c BLOB ROUNDS mlp W0 W1 ... | conv C_IN WIN C_OUT K N\n");
		return 2;
	}
	rounds = strtoul(argv[2], NULL, 10);
	blob = read_file(argv[1], &len);
	if (!blob) {
		fprintf(stderr, "bench_c: cannot read %s\n", argv[1]);
		return 2;
	}
	ret = ml_lib_blob_parse(blob, len, &g);
	if (ret) {
		fprintf(stderr, "bench_c: %s: ml_lib_blob_parse: %d\n", argv[1], ret);
		return 1;
	}
	if (g->n_in != n_features(&s)) {
		fprintf(stderr, "bench_c: blob has %u inputs, shape says %u\n", g->n_in,
			n_features(&s));
		return 2;
	}
	build_baselines(&s, &m64, &m8);
	n_out = g->n_out > s.width[s.n_layers] ? g->n_out : s.width[s.n_layers];
	arena = xmalloc(g->arena_bytes);
	raw = xmalloc(g->n_in * sizeof(s64));
	in64 = xmalloc(g->n_in * sizeof(s64));
	in8 = xmalloc(g->n_in);
	out = xmalloc(n_out * sizeof(s32));
	for (i = 0; i < g->n_in; i++) {
		raw[i] = rnd(-3000, 3000);
		in64[i] = raw[i];
		in8[i] = (s8)(raw[i] >> 5);
	}

	/* batch: as many calls of our engine as take about 200 us, at least 1 */
	for (batch = 1;; batch *= 2) {
		t0 = now_ns();
		for (calls = 0; calls < batch; calls++)
			ml_lib_run(g, arena, raw, g->n_in, out, g->n_out);
		if (now_ns() - t0 > 200000 || batch >= (1 << 20))
			break;
	}
	for (e = 0; e < N_ENGINES; e++)
		ps[e] = xmalloc(rounds * sizeof(u64));
	for (r = 0; r < rounds; r++) {
		for (k = 0; k < N_ENGINES; k++) {
			e = (r + k) % N_ENGINES;	/* rotate the order each round */
			t0 = now_ns();
			for (calls = 0; calls < batch; calls++) {
				if (e == 0)
					ml_lib_run(g, arena, raw, g->n_in, out, g->n_out);
				else if (e == 1)
					i64_run(&s, &m64, in64, out);
				else
					i8_run(&s, &m8, in8, out);
				sink += out[0];
			}
			ps[e][r] = (now_ns() - t0) * 1000 / batch;
		}
	}
	for (e = 0; e < N_ENGINES; e++) {
		qsort(ps[e], rounds, sizeof(u64), cmp_u64);
		printf("{\"engine\": \"%s\", \"ps_median\": %llu, \"ps_q1\": %llu, ",
		       engine_names[e], (unsigned long long)ps[e][rounds / 2],
		       (unsigned long long)ps[e][rounds / 4]);
		printf("\"ps_q3\": %llu, \"rounds\": %u, \"batch\": %llu}\n",
		       (unsigned long long)ps[e][3 * rounds / 4], rounds,
		       (unsigned long long)batch);
	}
	fprintf(stderr, "bench_c: checksum %lld\n", (long long)sink);
	ml_lib_graph_free(g);
	return 0;
}
