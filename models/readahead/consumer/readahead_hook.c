// SPDX-License-Identifier: GPL-2.0
/*
 * readahead_hook - example consumer of the ml_lib model "readahead", a
 * KML-like classifier that picks a file's readahead window from the shape
 * of its recent reads.
 *
 * SIMULATED HOOK: this module does not attach to the page cache. A file
 * system (or a hook where ondemand readahead starts, page_cache_sync_ra())
 * would call ra_observe_read() for every read of a file and use
 * READ_ONCE(w->ra_pages) as that file's file_ra_state.ra_pages, with the
 * model looked up once when the hook is set up. Here, at load time,
 * the module replays recorded windows of the simulated reads of
 * models/readahead/simulate.py (readahead_trace.h), one per access
 * pattern, through ra_observe_read() and prints the window it chose next
 * to the class ml_lib's Python reference chose for the same reads.
 *
 * Per file the hook keeps a few integer sums over a window of 64 reads,
 * under a spinlock (readers of one file run concurrently); at the end of a
 * window it computes the model's five features with integer arithmetic
 * only, exactly as simulate.window_features() does.
 */
#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/bits.h>
#include <linux/math64.h>
#include <linux/minmax.h>
#include <linux/overflow.h>
#include <linux/spinlock.h>
#include <linux/string.h>
#include <linux/ml_lib.h>
#include "readahead.h"

struct ra_read {
	s64 start;	/* first page */
	s64 pages;	/* pages read */
};

#include "readahead_trace.h"

/* features saturate here, as in simulate.window_features() */
#define RA_FEATURE_MAX ((s64)BIT_ULL(20))

/*
 * Each delta between the first pages of consecutive reads is clamped to
 * [-RA_DELTA_MAX, RA_DELTA_MAX] pages (64 GiB with 4 KiB pages), as
 * simulate.DELTA_MAX clamps it in Python. With at most 127 deltas in a
 * window, |sum_d| and sum_abs stay below 2^31, sum_d2 below 2^55, and the
 * variance's m * sum_d2 and sum_d^2 below 2^62: no sum overflows s64, so C
 * and Python agree on any reads (pages >= 0). The simulated traces never
 * come near the bound (a file of 2^18 pages).
 */
#define RA_DELTA_MAX ((s64)BIT_ULL(24))

/* readahead window (pages) of each class the model predicts */
static const u32 ra_class_pages[] = { 1, 8, 32, 128 };

/* Sums over the reads of the current window, zeroed at its end. */
struct ra_sums {
	u32 reads, seq, near;
	s64 prev_start, prev_pages;
	s64 sum_pages, sum_abs, sum_d, sum_d2;
};

/* Per-file state a file system would keep next to its file_ra_state. */
struct ra_window {
	spinlock_t lock;	/* protects @s, @ra_pages and @last_class */
	struct ra_sums s;
	u32 ra_pages;		/* current decision; READ_ONCE() it unlocked */
	int last_class;
};

/* start - prev, clamped to +-RA_DELTA_MAX (also when it overflows s64) */
static s64 ra_delta(s64 start, s64 prev)
{
	s64 d;

	if (check_sub_overflow(start, prev, &d))
		return start > prev ? RA_DELTA_MAX : -RA_DELTA_MAX;
	return clamp_t(s64, d, -RA_DELTA_MAX, RA_DELTA_MAX);
}

/* The model's features from a window's sums; -EINVAL below two reads. */
static int ra_features(const struct ra_sums *s, struct readahead_input *in)
{
	s64 m = (s64)s->reads - 1;	/* deltas in the window */
	u64 var;

	BUILD_BUG_ON(RA_WINDOW_READS < 2 || RA_WINDOW_READS > 128);
	if (m < 1)
		return -EINVAL;
	/* population variance of the deltas, floored: (m*S2 - S1^2) / m^2 */
	var = div64_u64((u64)(m * s->sum_d2 - s->sum_d * s->sum_d), m * m);
	in->mean_req_pages = div64_s64(s->sum_pages, s->reads);
	in->mean_abs_delta = min(div64_s64(s->sum_abs, m), RA_FEATURE_MAX);
	in->std_delta = min_t(s64, int_sqrt64(var), RA_FEATURE_MAX);
	in->seq_permille = div64_s64(s->seq * 1000LL, m);
	in->fwd_near_permille = div64_s64(s->near * 1000LL, m);
	return 0;
}

/**
 * ra_observe_read() - account one read of a file; decide at a window's end
 * @w: the file's window state
 * @m: the "readahead" model, an in-kernel one (see readahead_hook_init())
 * @start: first page read (a page index, >= 0)
 * @pages: number of pages read (>= 0; a read moves at most MAX_RW_COUNT
 *         bytes, so a window's sum of them cannot overflow)
 * @feat: filled with the features when a decision is made
 *
 * Concurrent readers of one file may call this at the same time: the sums
 * are updated, and at a window's end snapshotted into @feat and zeroed,
 * under @w->lock; the model then runs on that snapshot outside the lock.
 *
 * Context: any but NMI; takes @w->lock with interrupts disabled; never
 * sleeps.
 * Return: the class chosen (>= 0) when this read completed a window, -EAGAIN
 * in the middle of a window, or a negative errno from ml_lib_infer(), on
 * which the file keeps its current window.
 */
static int ra_observe_read(struct ra_window *w, struct ml_lib_model *m,
			   s64 start, s64 pages, struct readahead_input *feat)
{
	struct ra_sums *s = &w->s;
	struct readahead_output out;
	unsigned long flags;
	s64 d, next;
	int ret;

	spin_lock_irqsave(&w->lock, flags);
	if (s->reads) {
		d = ra_delta(start, s->prev_start);
		s->seq += !check_add_overflow(s->prev_start, s->prev_pages, &next) &&
			  start == next;
		s->near += d > 0 && d <= 64;
		s->sum_abs += abs(d);
		s->sum_d += d;
		s->sum_d2 += d * d;
	}
	s->sum_pages += pages;
	s->prev_start = start;
	s->prev_pages = pages;
	if (++s->reads < RA_WINDOW_READS) {
		spin_unlock_irqrestore(&w->lock, flags);
		return -EAGAIN;
	}
	ret = ra_features(s, feat);
	memset(s, 0, sizeof(*s));
	spin_unlock_irqrestore(&w->lock, flags);
	if (ret < 0)
		return ret;

	ret = ml_lib_infer(m, (const s64 *)feat, READAHEAD_N_IN, (s32 *)&out,
			   READAHEAD_N_OUT);
	if (ret < 0)
		return ret;
	if (out.output < 0 || out.output >= ARRAY_SIZE(ra_class_pages))
		return -ERANGE;
	/* windows ending together on several CPUs: the last one wins */
	spin_lock_irqsave(&w->lock, flags);
	WRITE_ONCE(w->ra_pages, ra_class_pages[out.output]);
	w->last_class = out.output;
	spin_unlock_irqrestore(&w->lock, flags);
	return out.output;
}

/*
 * Looked up once, in process context (ml_lib_model_get() sleeps), and held
 * until the module is removed; the read path only uses this pointer.
 */
static struct ml_lib_model *ra_hook_model;

static struct ra_window replay_file = {
	.lock = __SPIN_LOCK_UNLOCKED(replay_file.lock),
	.ra_pages = 32,		/* the kernel's default 128 KiB */
};

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
	/* a proxy model may sleep in ml_lib_infer(): not on the read path */
	if (!m->graph || m->proxy) {
		pr_err("readahead_hook: model \"readahead\" is proxy-served; this hook needs an in-kernel model\n");
		ml_lib_model_put(m);
		return -EOPNOTSUPP;
	}
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
			READ_ONCE(replay_file.ra_pages), ret,
			ra_trace_expect[i / RA_WINDOW_READS]);
		ret = 0;
	}
	if (ret < 0) {
		pr_err("readahead_hook: ml_lib_infer failed: %d\n", ret);
		ml_lib_model_put(m);
		return ret;
	}
	pr_info("readahead_hook: %u windows replayed, %u/%u classes equal to the Python reference\n",
		RA_TRACE_WINDOWS, match, RA_TRACE_WINDOWS);
	ra_hook_model = m;
	return 0;
}

static void __exit readahead_hook_exit(void)
{
	ml_lib_model_put(ra_hook_model);
}

module_init(readahead_hook_init);
module_exit(readahead_hook_exit);

MODULE_DESCRIPTION("ml_lib example: KML-like readahead window prediction (simulated hook)");
MODULE_LICENSE("GPL");
