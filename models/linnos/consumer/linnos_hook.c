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
 * The model is looked up once, at load (process context), and the
 * reference held until the module is removed.
 *
 * The features are the ones the model was trained on: the number of
 * outstanding I/Os, and the latency and issue-time queue length of the 15
 * most recent completions. Keeping them costs a 15-entry ring per device.
 */
#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/spinlock.h>
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

/*
 * Per-device state a block driver would keep for the model. Issues
 * (queue_rq) and completions (irq) update it on several CPUs at once.
 */
struct linnos_dev {
	spinlock_t lock;	/* protects all of the below */
	u32 outstanding;
	u32 next;	/* ring slot the next completion goes to */
	struct linnos_completion ring[LINNOS_HIST];
};

/**
 * linnos_io_complete() - account a completed I/O
 * @d: the device's state
 * @lat_us: its latency
 * @qlen: the outstanding I/Os when it was issued
 *
 * Context: any but NMI (completion irq included); never sleeps.
 */
static void linnos_io_complete(struct linnos_dev *d, u32 lat_us, u32 qlen)
{
	unsigned long flags;

	spin_lock_irqsave(&d->lock, flags);
	d->ring[d->next].lat_us = lat_us;
	d->ring[d->next].qlen = qlen;
	d->next = (d->next + 1) % LINNOS_HIST;
	/* an I/O issued before the state existed may complete: saturate */
	if (d->outstanding)
		d->outstanding--;
	spin_unlock_irqrestore(&d->lock, flags);
}

/* Snapshot of the features; the caller holds @d->lock. */
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
 * @m: the "linnos" model, an in-kernel one (see linnos_hook_init())
 * @write: the I/O is a write (LinnOS predicts reads only)
 * @feat: filled with the features the decision used
 *
 * The features are snapshotted and the I/O counted as outstanding under
 * @d->lock; the model runs on the snapshot outside the lock.
 *
 * Context: any but NMI; never sleeps.
 * Return: 1 to revoke the read to another replica (predicted slow), 0 to
 * submit it, or a negative errno from ml_lib_infer(), on which the caller
 * submits as it does today.
 */
static int linnos_io_issue(struct linnos_dev *d, struct ml_lib_model *m,
			   bool write, struct linnos_input *feat)
{
	struct linnos_output out;
	unsigned long flags;
	int ret;

	spin_lock_irqsave(&d->lock, flags);
	if (!write)
		linnos_features(d, feat);
	d->outstanding++;
	spin_unlock_irqrestore(&d->lock, flags);
	if (write)
		return 0;

	ret = ml_lib_infer(m, (const s64 *)feat, LINNOS_N_IN, (s32 *)&out,
			   LINNOS_N_OUT);
	if (ret < 0)
		return ret;
	return out.output == 1;
}

/*
 * Looked up once, in process context (ml_lib_model_get() sleeps), and held
 * until the module is removed; queue_rq only uses this pointer.
 */
static struct ml_lib_model *linnos_hook_model;

static struct linnos_dev replay_dev = {
	.lock = __SPIN_LOCK_UNLOCKED(replay_dev.lock),
};

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
	/* a proxy model may sleep in ml_lib_infer(): not in queue_rq */
	if (!m->graph || m->proxy) {
		pr_err("linnos_hook: model \"linnos\" is proxy-served; this hook needs an in-kernel model\n");
		ml_lib_model_put(m);
		return -EOPNOTSUPP;
	}
	for (i = 0; i < ARRAY_SIZE(linnos_trace_history); i++)
		linnos_io_complete(&replay_dev, linnos_trace_history[i].lat_us,
				   linnos_trace_history[i].qlen);
	/* I/Os issued before the replay and still in flight */
	spin_lock_irq(&replay_dev.lock);
	replay_dev.outstanding = LINNOS_TRACE_OUTSTANDING;
	spin_unlock_irq(&replay_dev.lock);

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
	pr_info("linnos_hook: %u reads replayed: %u revoked, %u were slow, %u decisions right, %u/%u equal to the Python reference\n",
		reads, revoked, slow, correct, match, reads);
	linnos_hook_model = m;
	return 0;
}

static void __exit linnos_hook_exit(void)
{
	ml_lib_model_put(linnos_hook_model);
}

module_init(linnos_hook_init);
module_exit(linnos_hook_exit);

MODULE_DESCRIPTION("ml_lib example: LinnOS-like read latency prediction (simulated hook)");
MODULE_LICENSE("GPL");
