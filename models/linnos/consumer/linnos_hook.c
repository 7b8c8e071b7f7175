// SPDX-License-Identifier: GPL-2.0
/*
 * linnos_hook - example consumer of the ml_lib model "linnos", a
 * LinnOS-like classifier that predicts, when a read is issued, whether it
 * will be slow (a flash device in garbage collection), so the caller can
 * send it to another replica instead of waiting.
 *
 * SIMULATED HOOK: this module does not attach to the block layer. A driver
 * that wanted the decision would call linnos_io_issue() where it issues a
 * request (its blk_mq_ops->queue_rq) and linnos_io_complete() where it
 * completes one. Here, at load time, the module replays a recorded stretch
 * of the simulated trace of models/linnos/simulate.py (linnos_trace.h)
 * through exactly those two functions and prints every read's decision,
 * next to the decision ml_lib's Python reference made for the same read.
 *
 * The features are the ones the model was trained on: the number of
 * outstanding I/Os, and the latency and issue-time queue length of the 15
 * most recent completions. Keeping them costs a 15-entry ring per device.
 */
#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/stddef.h>
#include <linux/ml_lib.h>
#include "linnos.h"

#define LINNOS_HIST 15

struct linnos_completion {
	u32 lat_us;
	u32 qlen;
};

enum linnos_event_type {
	LINNOS_EV_COMPLETE,
	LINNOS_EV_ISSUE,
};

struct linnos_event {
	u8 type;	/* enum linnos_event_type */
	u8 write;	/* issue: a write (never predicted) */
	u8 slow;	/* issue: its recorded latency was above the threshold */
	u8 expect;	/* issue: the Python reference's prediction */
	u32 lat_us;	/* complete: latency; issue: recorded latency */
	u32 qlen;	/* complete: outstanding I/Os when it was issued */
};

#include "linnos_trace.h"

/* Per-device state a block driver would keep for the model. */
struct linnos_dev {
	u32 outstanding;
	u32 next;	/* ring slot the next completion goes to */
	struct linnos_completion ring[LINNOS_HIST];
};

static void linnos_io_complete(struct linnos_dev *d, u32 lat_us, u32 qlen)
{
	d->ring[d->next].lat_us = lat_us;
	d->ring[d->next].qlen = qlen;
	d->next = (d->next + 1) % LINNOS_HIST;
	if (d->outstanding)
		d->outstanding--;
}

static void linnos_features(const struct linnos_dev *d, struct linnos_input *in)
{
	/* the struct is the model's s64 feature vector, field for field */
	s64 *raw = (s64 *)in;
	s64 *lat = raw + 1, *qlen = raw + 1 + LINNOS_HIST;
	u32 k, slot;

	BUILD_BUG_ON(offsetof(struct linnos_input, lat_0) != sizeof(s64));
	BUILD_BUG_ON(offsetof(struct linnos_input, qlen_0) !=
		     (1 + LINNOS_HIST) * sizeof(s64));
	raw[0] = d->outstanding;
	/* lat_0 / qlen_0 are the most recent completion */
	for (k = 0; k < LINNOS_HIST; k++) {
		slot = (d->next + LINNOS_HIST - 1 - k) % LINNOS_HIST;
		lat[k] = d->ring[slot].lat_us;
		qlen[k] = d->ring[slot].qlen;
	}
}

/**
 * linnos_io_issue() - decide for an I/O being issued
 * @d: the device's state
 * @m: the "linnos" model
 * @write: the I/O is a write (LinnOS predicts reads only)
 * @feat: filled with the features the decision used
 *
 * Context: any; never sleeps (an in-kernel model).
 * Return: 1 to revoke the read to another replica (predicted slow), 0 to
 * submit it, or a negative errno from ml_lib_infer(), on which the caller
 * submits as it does today.
 */
static int linnos_io_issue(struct linnos_dev *d, struct ml_lib_model *m,
			   bool write, struct linnos_input *feat)
{
	struct linnos_output out;
	int ret = 0;

	if (!write) {
		linnos_features(d, feat);
		ret = ml_lib_infer(m, (const s64 *)feat, LINNOS_N_IN,
				   (s32 *)&out, LINNOS_N_OUT);
		if (ret >= 0)
			ret = out.output == 1;
	}
	d->outstanding++;
	return ret;
}

static struct linnos_dev replay_dev;

static int __init linnos_hook_init(void)
{
	u32 i, reads = 0, revoked = 0, slow = 0, correct = 0, match = 0;
	const struct linnos_event *e;
	struct linnos_input feat;
	struct ml_lib_model *m;
	int ret;

	m = ml_lib_model_get("linnos");
	if (!m) {
		pr_err("linnos_hook: model \"linnos\" is not registered (load linnos_ml.ko)\n");
		return -ENODEV;
	}
	for (i = 0; i < ARRAY_SIZE(linnos_trace_history); i++)
		linnos_io_complete(&replay_dev, linnos_trace_history[i].lat_us,
				   linnos_trace_history[i].qlen);
	/* I/Os issued before the replay and still in flight */
	replay_dev.outstanding = LINNOS_TRACE_OUTSTANDING;

	for (i = 0; i < ARRAY_SIZE(linnos_trace); i++) {
		e = &linnos_trace[i];
		if (e->type == LINNOS_EV_COMPLETE) {
			linnos_io_complete(&replay_dev, e->lat_us, e->qlen);
			continue;
		}
		ret = linnos_io_issue(&replay_dev, m, e->write, &feat);
		if (e->write)
			continue;
		if (ret < 0) {
			pr_err("linnos_hook: ml_lib_infer failed: %d\n", ret);
			ml_lib_model_put(m);
			return ret;
		}
		reads++;
		revoked += ret;
		slow += e->slow;
		correct += ret == e->slow;
		match += ret == e->expect;
		pr_info("linnos_hook: read %u queue_len=%lld lat_0=%lld qlen_0=%lld kernel=%d python=%u truth=%u latency_us=%u\n",
			reads, feat.queue_len, feat.lat_0, feat.qlen_0, ret,
			e->expect, e->slow, e->lat_us);
	}
	ml_lib_model_put(m);
	pr_info("linnos_hook: %u reads replayed: %u revoked, %u were slow, %u decisions right, %u/%u equal to the Python reference\n",
		reads, revoked, slow, correct, match, reads);
	return 0;
}

static void __exit linnos_hook_exit(void)
{
}

module_init(linnos_hook_init);
module_exit(linnos_hook_exit);

MODULE_DESCRIPTION("ml_lib example: LinnOS-like read latency prediction (simulated hook)");
MODULE_LICENSE("GPL");
