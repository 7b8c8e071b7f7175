// SPDX-License-Identifier: GPL-2.0
/*
 * readahead_hook - example consumer of the ml_lib model "readahead", a
 * KML-like classifier that picks a file's readahead window from the shape
 * of its recent reads.
 *
 * SIMULATED HOOK: this module does not attach to the page cache. A file
 * system (or a hook where ondemand readahead starts, page_cache_sync_ra())
 * would call ra_observe_read() for every read of a file and use
 * ra_pages() as that file's file_ra_state.ra_pages. Here, at load time,
 * the module replays recorded windows of the simulated reads of
 * models/readahead/simulate.py (readahead_trace.h), one per access
 * pattern, through ra_observe_read() and prints the window it chose next
 * to the class ml_lib's Python reference chose for the same reads.
 *
 * Per file the hook keeps a few integer sums over a window of 64 reads;
 * at the end of a window it computes the model's five features with
 * integer arithmetic only, exactly as simulate.window_features() does.
 */
#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/bits.h>
#include <linux/math64.h>
#include <linux/minmax.h>
#include <linux/ml_lib.h>
#include "readahead.h"

struct ra_read {
	s64 start;	/* first page */
	s64 pages;	/* pages read */
};

#include "readahead_trace.h"

/* features saturate here, as in simulate.window_features() */
#define RA_FEATURE_MAX BIT_ULL(20)

/* readahead window (pages) of each class the model predicts */
static const u32 ra_class_pages[] = { 1, 8, 32, 128 };

/* Per-file state a file system would keep next to its file_ra_state. */
struct ra_window {
	u32 reads, seq, near;
	s64 prev_start, prev_pages;
	s64 sum_pages, sum_abs, sum_d;
	u64 sum_d2;
	u32 ra_pages;		/* current decision */
	int last_class;
};

static void ra_window_reset(struct ra_window *w)
{
	u32 ra = w->ra_pages;
	int cls = w->last_class;

	memset(w, 0, sizeof(*w));
	w->ra_pages = ra;
	w->last_class = cls;
}

static void ra_features(const struct ra_window *w, struct readahead_input *in)
{
	s64 m = w->reads - 1;	/* deltas in the window */
	u64 var;

	/* population variance of the deltas, floored: (m*S2 - S1^2) / m^2 */
	var = div64_u64(m * w->sum_d2 - (u64)(w->sum_d * w->sum_d), m * m);
	in->mean_req_pages = div64_s64(w->sum_pages, w->reads);
	in->mean_abs_delta = min_t(s64, div64_s64(w->sum_abs, m), RA_FEATURE_MAX);
	in->std_delta = min_t(s64, int_sqrt64(var), RA_FEATURE_MAX);
	in->seq_permille = div64_s64(w->seq * 1000LL, m);
	in->fwd_near_permille = div64_s64(w->near * 1000LL, m);
}

/**
 * ra_observe_read() - account one read of a file; decide at a window's end
 * @w: the file's window state
 * @m: the "readahead" model
 * @start: first page read
 * @pages: number of pages read
 * @feat: filled with the features when a decision is made
 *
 * Context: any; never sleeps (an in-kernel model).
 * Return: the class chosen (>= 0) when this read completed a window, -EAGAIN
 * in the middle of a window, or a negative errno from ml_lib_infer(), on
 * which the file keeps its current window.
 */
static int ra_observe_read(struct ra_window *w, struct ml_lib_model *m,
			   s64 start, s64 pages, struct readahead_input *feat)
{
	struct readahead_output out;
	s64 d;
	int ret;

	if (w->reads) {
		d = start - w->prev_start;
		w->seq += start == w->prev_start + w->prev_pages;
		w->near += d > 0 && d <= 64;
		w->sum_abs += abs(d);
		w->sum_d += d;
		w->sum_d2 += (u64)(d * d);
	}
	w->sum_pages += pages;
	w->prev_start = start;
	w->prev_pages = pages;
	if (++w->reads < RA_WINDOW_READS)
		return -EAGAIN;

	ra_features(w, feat);
	ret = ml_lib_infer(m, (const s64 *)feat, READAHEAD_N_IN, (s32 *)&out,
			   READAHEAD_N_OUT);
	ra_window_reset(w);
	if (ret < 0)
		return ret;
	if (out.output < 0 || out.output >= ARRAY_SIZE(ra_class_pages))
		return -ERANGE;
	w->ra_pages = ra_class_pages[out.output];
	w->last_class = out.output;
	return out.output;
}

static struct ra_window replay_file;

static int __init readahead_hook_init(void)
{
	struct readahead_input feat;
	struct ml_lib_model *m;
	u32 i, match = 0;
	int ret = 0;

	m = ml_lib_model_get("readahead");
	if (!m) {
		pr_err("readahead_hook: model \"readahead\" is not registered (load readahead_ml.ko)\n");
		return -ENODEV;
	}
	replay_file.ra_pages = 32;	/* the kernel's default 128 KiB */
	for (i = 0; i < ARRAY_SIZE(ra_trace); i++) {
		ret = ra_observe_read(&replay_file, m, ra_trace[i].start,
				      ra_trace[i].pages, &feat);
		if (ret == -EAGAIN)
			continue;
		if (ret < 0)
			break;
		match += ret == ra_trace_expect[i / RA_WINDOW_READS];
		pr_info("readahead_hook: window %u (%s) mean_req=%lld mean_abs_delta=%lld std=%lld seq=%lld near=%lld: kernel=%u pages (class %d) python=class %u\n",
			i / RA_WINDOW_READS, ra_trace_pattern[i / RA_WINDOW_READS],
			feat.mean_req_pages, feat.mean_abs_delta, feat.std_delta,
			feat.seq_permille, feat.fwd_near_permille,
			replay_file.ra_pages, ret, ra_trace_expect[i / RA_WINDOW_READS]);
		ret = 0;
	}
	ml_lib_model_put(m);
	if (ret < 0) {
		pr_err("readahead_hook: ml_lib_infer failed: %d\n", ret);
		return ret;
	}
	pr_info("readahead_hook: %u windows replayed, %u/%u classes equal to the Python reference\n",
		RA_TRACE_WINDOWS, match, RA_TRACE_WINDOWS);
	return 0;
}

static void __exit readahead_hook_exit(void)
{
}

module_init(readahead_hook_init);
module_exit(readahead_hook_exit);

MODULE_DESCRIPTION("ml_lib example: KML-like readahead window prediction (simulated hook)");
MODULE_LICENSE("GPL");
