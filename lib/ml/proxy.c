// SPDX-License-Identifier: GPL-2.0
/*
 * ml_lib user-space proxy: models too large for the in-kernel engine are
 * answered by a daemon (mlproxyd) through the misc device /dev/ml_lib.
 *
 * Kernel callers keep the one API (ml_lib_model_get() + ml_lib_infer(), or
 * ml_lib_infer_async()); no kernel path waits on user space longer than the
 * model's timeout. Every request is in two places under proxy_lock: its
 * daemon's queue (by ->node) or, once read, its daemon's sent table (by
 * ->hnode, hashed by id so that an answer walks one bucket, not every
 * request the daemon holds), and its model's pending list (by ->tnode,
 * oldest first, which is also deadline order because one model has one
 * timeout and the deadline is set under proxy_lock). Whoever takes a
 * request out of them under proxy_lock - the response write, the model's
 * timer, the daemon's release, the model's detach, the PM notifier before
 * a system sleep, a synchronous caller woken by a signal - is the one that
 * completes it, exactly once; so a request is still unclaimed exactly when
 * its ->tnode is not empty, and every taker unlinks it with list_del_init().
 *
 * proxy_lock and the dataset rings' ds_lock are raw spinlocks, taken with
 * interrupts off: ml_lib_infer_async() and ml_lib_dataset_publish() may be
 * called from any context but NMI (hardirq, and a caller holding a
 * scheduler lock, included; also on PREEMPT_RT). So nothing done under them
 * may sleep on PREEMPT_RT or call into the scheduler: the submit path does
 * not wake the daemon itself, it queues the daemon's irq_work (safe in any
 * context, coalescing), which wakes the daemon's wait queue.
 *
 * The protocol is in include/uapi/linux/ml_lib.h, the design in
 * docs/proxy.md.
 */

#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/miscdevice.h>
#include <linux/fs.h>
#include <linux/poll.h>
#include <linux/slab.h>
#include <linux/mm.h>
#include <linux/uaccess.h>
#include <linux/capability.h>
#include <linux/hrtimer.h>
#include <linux/irq_work.h>
#include <linux/kref.h>
#include <linux/completion.h>
#include <linux/freezer.h>
#include <linux/suspend.h>
#include <linux/notifier.h>
#include <linux/sched/signal.h>
#include <linux/wait.h>
#include <linux/wait_bit.h>
#include <linux/debugfs.h>
#include <linux/seq_file.h>
#include <linux/idr.h>
#include <linux/mutex.h>
#include <linux/spinlock.h>
#include <linux/string.h>
#include <linux/log2.h>
#include <linux/math64.h>
#include <linux/sizes.h>
#include <linux/hardirq.h>
#include <linux/preempt.h>
#include <linux/sched.h>
#include <linux/rcupdate.h>
#include <uapi/linux/ml_lib.h>

#include "proxy.h"

#define ML_LIB_HIST_BUCKETS	20
/* Staging buffers: one request or answer of the largest size fits. */
#define ML_LIB_RBUF_BYTES	65536
#define ML_LIB_MAX_TIMEOUT_US	(60U * USEC_PER_SEC)
/* requests a daemon's release, a model's detach or the PM notifier takes per proxy_lock hold */
#define ML_LIB_DRAIN_BATCH	64
#define ML_LIB_MAX_DS_RECORDS	65536
/* Bytes of a dataset ring, and of records one DATASET_READ returns. */
#define ML_LIB_MAX_DS_BYTES	SZ_64M
#define ML_LIB_DS_READ_BYTES	SZ_64K
/*
 * Buckets of a daemon's sent table, indexed by the id's low bits. Ids come
 * from one counter shared by every daemon. While one daemon's ids are
 * consecutive its N outstanding requests fill the buckets evenly, and an
 * answer's lookup walks one bucket, about 1 + N / 1024 requests, instead of
 * all N; when daemons interleave, a daemon's ids skip and can fill its
 * buckets less evenly (two daemons strictly alternating use half each).
 */
#define ML_LIB_SENT_BUCKETS	1024

/* One open file of /dev/ml_lib: a daemon. */
struct ml_lib_proxy_conn {
	struct list_head queue;		/* requests not read yet */
	struct hlist_head *sent;	/* read, waiting for an answer, by id */
	struct list_head models;	/* proxies this daemon serves */
	wait_queue_head_t wq;
	/* wakes @wq; queued under proxy_lock, synced before @conn is freed */
	struct irq_work wake;
	struct mutex rlock;		/* serializes readers on rbuf */
	struct mutex wlock;		/* serializes writers on wbuf */
	void *rbuf;
	s32 *wbuf;
};

struct ml_lib_proxy {
	struct ml_lib_model *m;
	struct ml_lib_proxy_config cfg;
	s32 *fallback_out;
	u32 id;
	u32 mode;
	bool detached;
	struct kref kref;	/* detach, and each open debugfs file */
	atomic_t collab_seq;
	struct list_head node;		/* proxy_list, under proxy_mutex */
	struct ml_lib_proxy_conn *conn;	/* under proxy_lock */
	struct list_head conn_node;	/* conn->models, under proxy_lock */
	struct list_head pending;	/* under proxy_lock, oldest first */
	struct hrtimer timer;
	atomic_t inflight;		/* queued and not yet completed */
	struct dentry *dir;

	atomic64_t requests, answers, timeouts, fallbacks;
	atomic64_t dead, absent, bypassed, nowait, invalid, interrupted;
	atomic64_t sleeping;
	atomic64_t hist[ML_LIB_HIST_BUCKETS];

	raw_spinlock_t ds_lock;		/* the ring below; any context but NMI */
	s64 *ds_buf;			/* ds_cap slots of ds_nfeat values */
	u32 ds_head, ds_count;
	u64 ds_next_seq, ds_dropped;
};

static DEFINE_RAW_SPINLOCK(proxy_lock);
static DEFINE_MUTEX(proxy_mutex);	/* proxy_list, registration */
static LIST_HEAD(proxy_list);
static DEFINE_IDA(proxy_ida);
static unsigned int proxy_next_model_id;	/* under proxy_mutex */
static u64 proxy_next_id;		/* under proxy_lock */
/*
 * System sleeps under way, one bit per kind (suspend, hibernation,
 * restore): user space, the daemon included, is or is about to be frozen.
 * A bit per kind, not one flag: a suspend's PREPARE/POST may nest in
 * /dev/snapshot's hibernation. Not a count either: 6.1's snapshot_open()
 * sends PM_RESTORE_PREPARE but no PM_POST_RESTORE when its bitmaps cannot
 * be allocated; a count would then stay up for good, the bit only until
 * the next restore attempt ends. Under proxy_lock.
 */
#define ML_LIB_PM_SUSPEND	BIT(0)
#define ML_LIB_PM_HIBERNATION	BIT(1)
#define ML_LIB_PM_RESTORE	BIT(2)
static unsigned int proxy_sleeping;
static struct dentry *proxy_debugfs;

static const char * const ml_lib_mode_names[] = {
	[ML_LIB_MODE_EMERGENCY] = "emergency",
	[ML_LIB_MODE_LEARNING] = "learning",
	[ML_LIB_MODE_COLLABORATION] = "collaboration",
	[ML_LIB_MODE_RECOMMENDATION] = "recommendation",
};

/* Answer @req from the model's fallback because of @reason. */
static void ml_lib_proxy_fallback(struct ml_lib_proxy *p,
				  struct ml_lib_request *req, int reason)
{
	int ret;

	req->reason = reason;
	if (p->cfg.fallback) {
		ret = ml_lib_infer(p->cfg.fallback, req->in, req->n_in,
				   req->out, req->n_out);
		req->status = ret < 0 ? ret : ML_LIB_SRC_FALLBACK;
	} else if (p->fallback_out) {
		memcpy(req->out, p->fallback_out, req->n_out * sizeof(s32));
		req->status = ML_LIB_SRC_FALLBACK;
	} else {
		req->status = reason;
	}
	atomic64_inc(&p->fallbacks);
}

static void ml_lib_proxy_account(struct ml_lib_proxy *p,
				 struct ml_lib_request *req)
{
	u64 us = ktime_us_delta(ktime_get(), req->start);
	unsigned int b = us ? ilog2(us) + 1 : 0;

	atomic64_inc(&p->hist[min_t(unsigned int, b, ML_LIB_HIST_BUCKETS - 1)]);
}

/*
 * Complete a request that was queued to a daemon and has just been taken
 * off the lists. @req may be freed by done(); @p may not be freed before
 * inflight drops (ml_lib_proxy_detach() waits for it).
 */
static void ml_lib_proxy_finish(struct ml_lib_proxy *p,
				struct ml_lib_request *req)
{
	ml_lib_proxy_account(p, req);
	req->done(req);
	if (atomic_dec_and_test(&p->inflight))
		wake_up_var(&p->inflight);
}

static struct hlist_head *ml_lib_proxy_bucket(struct ml_lib_proxy_conn *conn,
					      u64 id)
{
	return &conn->sent[id & (ML_LIB_SENT_BUCKETS - 1)];
}

/*
 * Take @req off its daemon, queued or sent; the other link is empty (both
 * deletions are no-ops then). Callers hold proxy_lock.
 */
static void ml_lib_proxy_unlink_conn(struct ml_lib_request *req)
{
	list_del_init(&req->node);
	hlist_del_init(&req->hnode);
}

/*
 * The longest one run of the timer spends on fallbacks in softirq; the rest
 * waits ML_LIB_TIMER_PAUSE_US for the next run, so that a flood of expired
 * requests (a daemon that reads and never answers) cannot hold the CPU.
 */
#define ML_LIB_TIMER_SLICE_US	1000
#define ML_LIB_TIMER_PAUSE_US	100

static enum hrtimer_restart ml_lib_proxy_timer(struct hrtimer *t)
{
	struct ml_lib_proxy *p = container_of(t, struct ml_lib_proxy, timer);
	enum hrtimer_restart ret = HRTIMER_NORESTART;
	ktime_t start = ktime_get(), now, next;
	struct ml_lib_request *req;
	unsigned long flags;

	for (;;) {
		now = ktime_get();
		raw_spin_lock_irqsave(&proxy_lock, flags);
		if (list_empty(&p->pending))
			goto unlock;
		req = list_first_entry(&p->pending, struct ml_lib_request,
				       tnode);
		if (ktime_after(req->deadline, now)) {
			next = req->deadline;
			break;
		}
		if (ktime_us_delta(now, start) >= ML_LIB_TIMER_SLICE_US) {
			next = ktime_add_us(now, ML_LIB_TIMER_PAUSE_US);
			break;
		}
		ml_lib_proxy_unlink_conn(req);
		list_del_init(&req->tnode);
		raw_spin_unlock_irqrestore(&proxy_lock, flags);

		atomic64_inc(&p->timeouts);
		ml_lib_proxy_fallback(p, req, -ETIMEDOUT);
		ml_lib_proxy_finish(p, req);
	}
	/*
	 * A CPU that found the list empty (while a fallback ran) may have
	 * started the timer again already; it is armed for the oldest request
	 * then.
	 */
	if (!hrtimer_is_queued(t)) {
		hrtimer_set_expires(t, next);
		ret = HRTIMER_RESTART;
	}
unlock:
	raw_spin_unlock_irqrestore(&proxy_lock, flags);
	return ret;
}

/* Add one record of @n features to @p's ring. Any context except NMI. */
static void ml_lib_dataset_add(struct ml_lib_proxy *p, const s64 *feat, u32 n)
{
	unsigned long flags;
	u32 slot;

	raw_spin_lock_irqsave(&p->ds_lock, flags);
	if (p->ds_count == p->cfg.dataset_records) {
		p->ds_head = (p->ds_head + 1) % p->cfg.dataset_records;
		p->ds_count--;
		p->ds_dropped++;
	}
	slot = (p->ds_head + p->ds_count) % p->cfg.dataset_records;
	memcpy(p->ds_buf + (size_t)slot * n, feat, n * sizeof(s64));
	p->ds_count++;
	p->ds_next_seq++;
	raw_spin_unlock_irqrestore(&p->ds_lock, flags);
}

/*
 * What the mode does with @req: true when it is to go to the daemon.
 * LEARNING publishes the inputs to the dataset ring (when it has their
 * width) and, like EMERGENCY, never asks; COLLABORATION asks for request k
 * when k mod 100 < collab_percent; RECOMMENDATION always asks.
 */
static bool ml_lib_proxy_mode_asks(struct ml_lib_proxy *p,
				   const struct ml_lib_request *req)
{
	switch (READ_ONCE(p->mode)) {
	case ML_LIB_MODE_LEARNING:
		if (p->ds_buf && p->cfg.dataset_features == req->n_in)
			ml_lib_dataset_add(p, req->in, req->n_in);
		return false;
	case ML_LIB_MODE_EMERGENCY:
		return false;
	case ML_LIB_MODE_COLLABORATION:
		return (u32)atomic_inc_return(&p->collab_seq) % 100 <
		       p->cfg.collab_percent;
	default:
		return true;
	}
}

/*
 * The front of both paths, asynchronous and synchronous: checks @req,
 * counts it and applies the mode.
 *
 * Return: 1 when @req is to go to the daemon; 0 when the mode said not to
 * ask and the fallback has answered (counted in mode_bypass, reason
 * -ECANCELED; @req->done has not run); a negative errno when @req is
 * refused (nothing counted, nothing answered): -EBUSY in NMI, -ENOENT for
 * a model that is not registered, -EINVAL for sizes that do not match.
 */
static int ml_lib_proxy_route(struct ml_lib_model *m,
			      struct ml_lib_request *req)
{
	struct ml_lib_proxy *p = m->proxy;

	/* proxy_lock, ds_lock and the hrtimer are not NMI-safe */
	if (WARN_ON_ONCE(in_nmi()))
		return -EBUSY;
	/*
	 * ml_lib_model_unregister() returns with the count at 0 and no caller
	 * inside (ml_lib_model_register() sets it), as the engine path's
	 * scratch check: no lock needed.
	 */
	if (!kref_read(&m->ref))
		return -ENOENT;
	if (req->n_in != p->cfg.n_in || req->n_out != p->cfg.n_out)
		return -EINVAL;

	req->m = m;
	req->start = ktime_get();
	atomic64_inc(&p->requests);
	if (ml_lib_proxy_mode_asks(p, req))
		return 1;
	atomic64_inc(&p->bypassed);
	ml_lib_proxy_fallback(p, req, -ECANCELED);
	return 0;
}

/**
 * ml_lib_infer_async() - ask a model for an answer without waiting
 * @m: a model from ml_lib_model_get()
 * @req: the request, owned by the caller until @req->done runs
 *
 * Usable in any context, atomic included (hardirq, interrupts off, a raw
 * spinlock or a scheduler lock held), except NMI for a proxy model (which
 * takes raw spinlocks and arms a timer); never allocates, never sleeps and
 * never calls into the scheduler (the daemon is woken from an irq_work).
 * For a proxy model the request is queued to the daemon and @req->done
 * runs from the daemon's write, from the model's timer (softirq) when the
 * timeout expires, in process context from the daemon's release, the
 * model's detach or the PM notifier before a system sleep, or at once when
 * the daemon is absent or the mode says not to ask; in every failure
 * case @req->out holds the fallback's answer and @req->status is
 * %ML_LIB_SRC_FALLBACK (or the errno when the model has no fallback).
 * For an in-kernel model the engine answers and @req->done runs before
 * this returns.
 *
 * Return: 0 when @req->done has run or will run exactly once; a negative
 * errno when it will not: -EINVAL when the sizes do not match the model,
 * -ENOENT for a model that is not registered, -EBUSY for a proxy model in
 * NMI (with a warning: a caller's bug), or the engine's errno for an
 * in-kernel model.
 */
int ml_lib_infer_async(struct ml_lib_model *m, struct ml_lib_request *req)
{
	struct ml_lib_proxy *p = m->proxy;
	struct ml_lib_proxy_conn *conn;
	unsigned long flags;
	bool first;
	int ret;

	if (!p) {
		req->reason = 0;
		req->status = ml_lib_infer(m, req->in, req->n_in, req->out,
					   req->n_out);
		if (req->status < 0)
			return req->status;
		req->done(req);
		return 0;
	}
	ret = ml_lib_proxy_route(m, req);
	if (ret < 0)
		return ret;
	if (!ret)
		goto done;

	raw_spin_lock_irqsave(&proxy_lock, flags);
	conn = p->conn;
	if (proxy_sleeping) {
		raw_spin_unlock_irqrestore(&proxy_lock, flags);
		atomic64_inc(&p->sleeping);
		ml_lib_proxy_fallback(p, req, -EHOSTDOWN);
		goto done;
	}
	if (!conn || p->detached) {
		ret = p->detached ? -ESHUTDOWN : -ENOTCONN;
		raw_spin_unlock_irqrestore(&proxy_lock, flags);
		atomic64_inc(&p->absent);
		ml_lib_proxy_fallback(p, req, ret);
		goto done;
	}
	req->id = ++proxy_next_id;
	/*
	 * From now, not req->start: read under proxy_lock, the deadlines of
	 * one model's pending list are in list order even when a caller was
	 * preempted between its route and here.
	 */
	req->deadline = ktime_add_us(ktime_get(), p->cfg.timeout_us);
	atomic_inc(&p->inflight);
	INIT_HLIST_NODE(&req->hnode);
	list_add_tail(&req->node, &conn->queue);
	first = list_empty(&p->pending);
	list_add_tail(&req->tnode, &p->pending);
	if (first)
		hrtimer_start(&p->timer, req->deadline, HRTIMER_MODE_ABS_SOFT);
	/*
	 * @conn is only guaranteed alive under proxy_lock; its release syncs
	 * the irq_work before freeing it. No wake-up here: that would take
	 * the wait queue's lock (sleeping on PREEMPT_RT) and the scheduler's.
	 */
	irq_work_queue(&conn->wake);
	raw_spin_unlock_irqrestore(&proxy_lock, flags);
	return 0;

done:
	req->done(req);
	return 0;
}
EXPORT_SYMBOL_GPL(ml_lib_infer_async);

struct ml_lib_sync_req {
	struct ml_lib_request req;
	struct completion done;
};

static void ml_lib_sync_done(struct ml_lib_request *req)
{
	complete(&container_of(req, struct ml_lib_sync_req, req)->done);
}

/*
 * True only where the synchronous path can be shown to be allowed to
 * sleep: task context, interrupts and preemption on (no spinlock, no
 * preempt_disable(), no local_bh_disable()) and outside every RCU
 * read-side section. The last one needs its own test: with PREEMPT_RCU,
 * rcu_read_lock() leaves preempt_count() at 0, and on PREEMPT_RT
 * spin_lock() and local_bh_disable() only take rcu_read_lock() and
 * migrate_disable(). Without CONFIG_PREEMPT_COUNT a held spinlock cannot
 * be seen at all, so the synchronous path never waits there.
 */
static bool ml_lib_may_wait(void)
{
	if (!IS_ENABLED(CONFIG_PREEMPT_COUNT))
		return false;
	return in_task() && preemptible() && !rcu_preempt_depth();
}

/*
 * A signal (the freezer's included) woke the synchronous caller of @req
 * before its answer: if no one has claimed @req yet, take it off the lists
 * and answer it from the fallback (-EINTR); else its claimer is completing
 * it now, from kernel memory (the write path copies the answer in under
 * proxy_lock), so the wait below is short and never on user space.
 */
static void ml_lib_proxy_interrupt(struct ml_lib_proxy *p,
				   struct ml_lib_sync_req *s)
{
	struct ml_lib_request *req = &s->req;
	unsigned long flags;
	bool mine;

	raw_spin_lock_irqsave(&proxy_lock, flags);
	mine = !list_empty(&req->tnode);
	if (mine) {
		ml_lib_proxy_unlink_conn(req);
		list_del_init(&req->tnode);
	}
	raw_spin_unlock_irqrestore(&proxy_lock, flags);
	if (mine) {
		atomic64_inc(&p->interrupted);
		ml_lib_proxy_fallback(p, req, -EINTR);
		ml_lib_proxy_finish(p, req);
	}
	wait_for_completion(&s->done);
}

/*
 * What would end a wait at once: a pending signal (the freezer sends user
 * tasks one; a kernel thread gets only those it allowed), or the freezer
 * itself, which a freezable kernel thread must notice on its own.
 */
static bool ml_lib_wait_ends(void)
{
	return signal_pending(current) || freezing(current);
}

/* Wait for @s; on a signal or the freezer take the request back. */
static void ml_lib_proxy_wait(struct ml_lib_proxy *p, struct ml_lib_sync_req *s)
{
	long t;

	/* a user task, or a kernel thread that never freezes (most do not) */
	if (!(current->flags & PF_KTHREAD) || (current->flags & PF_NOFREEZE)) {
		if (wait_for_completion_interruptible(&s->done))
			ml_lib_proxy_interrupt(p, s);
		return;
	}
	for (;;) {
		t = wait_for_completion_interruptible_timeout(&s->done, HZ / 10);
		if (t > 0)
			return;
		if (t < 0 || freezing(current)) {
			ml_lib_proxy_interrupt(p, s);
			return;
		}
	}
}

/*
 * The synchronous path of ml_lib_infer() for proxy models. The wait is
 * bounded by the model's timer, which completes every pending request at
 * its deadline whatever the daemon does. It also ends, with the fallback's
 * answer (interrupted, -EINTR), on a signal or when the freezer wants the
 * task for a suspend: held in D state for up to the timeout (at most 60 s,
 * more than the freezer's 20 s), the task would fail the suspend. For a
 * system sleep the PM notifier (ml_lib_proxy_pm_notify()) answers first,
 * before any task is frozen; these checks are for the freezes that come
 * without it (kexec's preserve-context jump, the cgroup freezer). A
 * freezable kernel thread gets no signal from the freezer, and its wake-up
 * only sends it back to sleep inside the completion, so it looks at
 * freezing() every 100 ms (ml_lib_proxy_wait()).
 * Where waiting cannot be shown to be allowed (no_wait, -EWOULDBLOCK) or
 * would end at once (interrupted, -EINTR), the mode still applies
 * (LEARNING still feeds the dataset, a bypass is still mode_bypass) and a
 * request that would have gone to the daemon is answered by the fallback
 * without being queued.
 */
int ml_lib_proxy_infer(struct ml_lib_model *m, const s64 *in, u32 n_in,
		       s32 *out, u32 n_out)
{
	struct ml_lib_sync_req s = {
		.req = {
			.in = in, .n_in = n_in, .out = out, .n_out = n_out,
			.done = ml_lib_sync_done,
		},
	};
	struct ml_lib_proxy *p = m->proxy;
	int ret, why = 0;

	if (!ml_lib_may_wait())
		why = -EWOULDBLOCK;
	else if (ml_lib_wait_ends())
		why = -EINTR;
	if (why) {
		ret = ml_lib_proxy_route(m, &s.req);
		if (ret < 0)
			return ret;
		if (ret) {
			atomic64_inc(why == -EINTR ? &p->interrupted : &p->nowait);
			ml_lib_proxy_fallback(p, &s.req, why);
		}
		return s.req.status;
	}
	might_sleep();
	init_completion(&s.done);
	/* not queued (answered at once or refused) reads as already claimed */
	INIT_LIST_HEAD(&s.req.tnode);
	ret = ml_lib_infer_async(m, &s.req);
	if (ret)
		return ret;
	ml_lib_proxy_wait(p, &s);
	return s.req.status;
}

/**
 * ml_lib_dataset_publish() - add one feature record to a model's dataset
 * @m: a proxy model attached with a dataset ring
 * @feat: the features
 * @n: number of features; must equal the ring's record width
 *
 * Any context except NMI (the ring is under a raw spinlock), a caller
 * holding a raw spinlock or a scheduler lock included; never blocks,
 * never allocates. When the ring is full the oldest record is dropped and
 * counted.
 *
 * Like the inference calls, it must have returned before the owning module
 * detaches @m (ml_lib_proxy_detach() frees the ring).
 *
 * Return: 0, -ENOENT when @m has no dataset, -EINVAL on a width mismatch,
 * -EBUSY in NMI (with a warning: a caller's bug).
 */
int ml_lib_dataset_publish(struct ml_lib_model *m, const s64 *feat, u32 n)
{
	struct ml_lib_proxy *p = m->proxy;

	if (WARN_ON_ONCE(in_nmi()))
		return -EBUSY;
	if (!p || !p->ds_buf)
		return -ENOENT;
	if (n != p->cfg.dataset_features)
		return -EINVAL;
	ml_lib_dataset_add(p, feat, n);
	return 0;
}
EXPORT_SYMBOL_GPL(ml_lib_dataset_publish);

/* Callers hold proxy_mutex. */
static struct ml_lib_proxy *ml_lib_proxy_find_id(u32 id)
{
	struct ml_lib_proxy *p;

	list_for_each_entry(p, &proxy_list, node)
		if (p->id == id)
			return p;
	return NULL;
}

static struct ml_lib_proxy *ml_lib_proxy_find_name(const char *name)
{
	struct ml_lib_proxy *p;

	list_for_each_entry(p, &proxy_list, node)
		if (!strcmp(p->m->name, name))
			return p;
	return NULL;
}

static long ml_lib_proxy_register(struct ml_lib_proxy_conn *conn,
				  void __user *arg)
{
	struct ml_lib_proxy_register reg;
	struct ml_lib_proxy *p;
	long ret;

	if (copy_from_user(&reg, arg, sizeof(reg)))
		return -EFAULT;
	if (reg.version != ML_LIB_PROXY_VERSION || reg.flags ||
	    strnlen(reg.name, sizeof(reg.name)) == sizeof(reg.name))
		return -EINVAL;

	mutex_lock(&proxy_mutex);
	p = ml_lib_proxy_find_name(reg.name);
	if (!p) {
		ret = -ENOENT;
	} else if (reg.n_in != p->cfg.n_in || reg.n_out != p->cfg.n_out) {
		ret = -EINVAL;
	} else {
		raw_spin_lock_irq(&proxy_lock);
		if (p->conn && p->conn != conn) {
			ret = -EBUSY;
		} else {
			if (!p->conn)
				list_add_tail(&p->conn_node, &conn->models);
			p->conn = conn;
			ret = p->id;
		}
		raw_spin_unlock_irq(&proxy_lock);
	}
	mutex_unlock(&proxy_mutex);
	return ret;
}

/*
 * Moves up to ML_LIB_DS_READ_BYTES of the oldest records (at least one) to
 * user space. Only the file that registered the model may read its dataset.
 * The records are copied to a bounce buffer under the locks and to user
 * space after dropping them, so no lock is held while user space may fault;
 * records a failed copy would have returned are lost (counted nowhere).
 */
static long ml_lib_proxy_dataset_read(struct ml_lib_proxy_conn *conn,
				      void __user *arg)
{
	struct ml_lib_proxy_dataset_read rd;
	struct ml_lib_proxy_record *rec;
	struct ml_lib_proxy *p;
	size_t rec_size;
	void *bounce = NULL;
	long ret = 0;
	u32 k, n = 0;
	u64 max;

	if (copy_from_user(&rd, arg, sizeof(rd)))
		return -EFAULT;
	/* a 32-bit kernel would silently drop the high half of @buf */
	if (rd.version != ML_LIB_PROXY_VERSION ||
	    rd.buf != (unsigned long)rd.buf)
		return -EINVAL;

	mutex_lock(&proxy_mutex);
	p = ml_lib_proxy_find_id(rd.model_id);
	if (!p || !p->ds_buf) {
		ret = -ENOENT;
		goto unlock;
	}
	/* @conn is alive in its own ioctl: comparing is enough */
	if (READ_ONCE(p->conn) != conn) {
		ret = -EACCES;
		goto unlock;
	}
	rec_size = sizeof(*rec) + p->cfg.dataset_features * sizeof(s64);
	/* not "0 records": a reader takes that for an empty ring */
	if (rd.buf_len < rec_size) {
		ret = -EINVAL;
		goto unlock;
	}
	/* div_u64(): no plain 64-bit division on 32-bit kernels */
	max = min_t(u64, div_u64(rd.buf_len, (u32)rec_size), p->cfg.dataset_records);
	max = min_t(u64, max, max_t(size_t, ML_LIB_DS_READ_BYTES / rec_size, 1));
	if (max) {
		bounce = kvmalloc(max * rec_size, GFP_KERNEL);
		if (!bounce) {
			ret = -ENOMEM;
			goto unlock;
		}
	}
	raw_spin_lock_irq(&p->ds_lock);
	n = min_t(u64, max, p->ds_count);
	for (k = 0; k < n; k++) {
		rec = bounce + k * rec_size;
		rec->seq = p->ds_next_seq - p->ds_count;
		rec->n = p->cfg.dataset_features;
		rec->pad = 0;
		memcpy(rec->feat, p->ds_buf + (size_t)p->ds_head * rec->n,
		       rec->n * sizeof(s64));
		p->ds_head = (p->ds_head + 1) % p->cfg.dataset_records;
		p->ds_count--;
	}
	rd.dropped = p->ds_dropped;
	raw_spin_unlock_irq(&p->ds_lock);
	mutex_unlock(&proxy_mutex);

	/* @p may be gone from here on */
	rd.n_records = n;
	rd.record_size = rec_size;
	if ((n && copy_to_user(u64_to_user_ptr(rd.buf), bounce, n * rec_size)) ||
	    copy_to_user(arg, &rd, sizeof(rd)))
		ret = -EFAULT;
	kvfree(bounce);
	return ret;

unlock:
	mutex_unlock(&proxy_mutex);
	return ret;
}

static long ml_lib_proxy_ioctl(struct file *f, unsigned int cmd,
			       unsigned long arg)
{
	switch (cmd) {
	case ML_LIB_IOC_REGISTER:
		return ml_lib_proxy_register(f->private_data,
					     (void __user *)arg);
	case ML_LIB_IOC_DATASET_READ:
		return ml_lib_proxy_dataset_read(f->private_data,
						 (void __user *)arg);
	default:
		return -ENOTTY;
	}
}

/* Wakes the daemon's readers; queued by the submit path, any context. */
static void ml_lib_proxy_wake(struct irq_work *work)
{
	struct ml_lib_proxy_conn *conn =
		container_of(work, struct ml_lib_proxy_conn, wake);

	wake_up_interruptible_poll(&conn->wq, EPOLLIN | EPOLLRDNORM);
}

static int ml_lib_proxy_open(struct inode *inode, struct file *f)
{
	struct ml_lib_proxy_conn *conn;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	conn = kzalloc(sizeof(*conn), GFP_KERNEL);
	if (!conn)
		return -ENOMEM;
	conn->rbuf = kvmalloc(ML_LIB_RBUF_BYTES, GFP_KERNEL);
	conn->wbuf = kvmalloc_array(ML_LIB_PROXY_MAX_OUT, sizeof(s32), GFP_KERNEL);
	/* zeroed hlist_heads are empty */
	conn->sent = kvcalloc(ML_LIB_SENT_BUCKETS, sizeof(*conn->sent),
			      GFP_KERNEL);
	if (!conn->rbuf || !conn->wbuf || !conn->sent) {
		kvfree(conn->rbuf);
		kvfree(conn->wbuf);
		kvfree(conn->sent);
		kfree(conn);
		return -ENOMEM;
	}
	INIT_LIST_HEAD(&conn->queue);
	INIT_LIST_HEAD(&conn->models);
	init_waitqueue_head(&conn->wq);
	init_irq_work(&conn->wake, ml_lib_proxy_wake);
	mutex_init(&conn->rlock);
	mutex_init(&conn->wlock);
	f->private_data = conn;
	return stream_open(inode, f);
}

/*
 * Take up to ML_LIB_DRAIN_BATCH of @conn's requests, queued ones first, then
 * sent ones from bucket *@bucket on, onto @dead (by ->node, free once a
 * request is off its daemon). Callers hold proxy_lock.
 */
static u32 ml_lib_proxy_take_conn(struct ml_lib_proxy_conn *conn,
				  unsigned int *bucket, struct list_head *dead)
{
	struct ml_lib_request *req;
	u32 n = 0;

	while (n < ML_LIB_DRAIN_BATCH && !list_empty(&conn->queue)) {
		req = list_first_entry(&conn->queue, struct ml_lib_request, node);
		list_move_tail(&req->node, dead);
		list_del_init(&req->tnode);
		n++;
	}
	while (n < ML_LIB_DRAIN_BATCH && *bucket < ML_LIB_SENT_BUCKETS) {
		struct hlist_head *h = &conn->sent[*bucket];

		if (hlist_empty(h)) {
			(*bucket)++;
			continue;
		}
		req = hlist_entry(h->first, struct ml_lib_request, hnode);
		hlist_del_init(&req->hnode);
		list_del_init(&req->tnode);
		list_add_tail(&req->node, dead);
		n++;
	}
	return n;
}

static int ml_lib_proxy_release(struct inode *inode, struct file *f)
{
	struct ml_lib_proxy_conn *conn = f->private_data;
	struct ml_lib_request *req, *tmp;
	struct ml_lib_proxy *p, *ptmp;
	unsigned int bucket = 0;
	LIST_HEAD(dead);
	u32 n;

	raw_spin_lock_irq(&proxy_lock);
	list_for_each_entry_safe(p, ptmp, &conn->models, conn_node) {
		p->conn = NULL;
		list_del_init(&p->conn_node);
	}
	raw_spin_unlock_irq(&proxy_lock);

	/*
	 * No request joins @conn now. The daemon is gone: its callers fall
	 * back now, not at the timeout, taken a batch per lock hold so that
	 * interrupts are never off for all of them at once.
	 */
	do {
		raw_spin_lock_irq(&proxy_lock);
		n = ml_lib_proxy_take_conn(conn, &bucket, &dead);
		raw_spin_unlock_irq(&proxy_lock);
		list_for_each_entry_safe(req, tmp, &dead, node) {
			p = req->m->proxy;
			atomic64_inc(&p->dead);
			ml_lib_proxy_fallback(p, req, -EPIPE);
			ml_lib_proxy_finish(p, req);
			cond_resched();	/* each fallback may take milliseconds */
		}
		INIT_LIST_HEAD(&dead);	/* its entries may be freed by now */
	} while (n == ML_LIB_DRAIN_BATCH);
	/*
	 * No model points to @conn any more, so nothing queues its irq_work
	 * again; one queued before may still be pending or running.
	 */
	irq_work_sync(&conn->wake);
	kvfree(conn->rbuf);
	kvfree(conn->wbuf);
	kvfree(conn->sent);
	kfree(conn);
	return 0;
}

static bool ml_lib_proxy_readable(struct ml_lib_proxy_conn *conn)
{
	bool ret;

	raw_spin_lock_irq(&proxy_lock);
	ret = !list_empty(&conn->queue);
	raw_spin_unlock_irq(&proxy_lock);
	return ret;
}

static ssize_t ml_lib_proxy_read(struct file *f, char __user *buf,
				 size_t len, loff_t *ppos)
{
	struct ml_lib_proxy_conn *conn = f->private_data;
	size_t room = min_t(size_t, len, ML_LIB_RBUF_BYTES);
	struct ml_lib_proxy_req *hdr;
	struct ml_lib_request *req;
	size_t n, size;
	bool left;
	ssize_t ret;

	/*
	 * A blocking reader holds rlock while it waits for a request: a
	 * non-blocking one must not wait for rlock either.
	 */
	if (f->f_flags & O_NONBLOCK) {
		if (!mutex_trylock(&conn->rlock))
			return -EAGAIN;
	} else if (mutex_lock_interruptible(&conn->rlock)) {
		return -ERESTARTSYS;
	}
	for (;;) {
		n = 0;
		raw_spin_lock_irq(&proxy_lock);
		while (!list_empty(&conn->queue)) {
			req = list_first_entry(&conn->queue,
					       struct ml_lib_request, node);
			size = sizeof(*hdr) + req->n_in * sizeof(s64);
			if (n + size > room)
				break;
			/* every byte is assigned: no kernel memory leaks */
			hdr = conn->rbuf + n;
			hdr->version = ML_LIB_PROXY_VERSION;
			hdr->size = size;
			hdr->id = req->id;
			hdr->model_id = req->m->proxy->id;
			hdr->n_in = req->n_in;
			memcpy(hdr->in, req->in, req->n_in * sizeof(s64));
			list_del_init(&req->node);
			hlist_add_head(&req->hnode,
				       ml_lib_proxy_bucket(conn, req->id));
			n += size;
		}
		left = !list_empty(&conn->queue);
		raw_spin_unlock_irq(&proxy_lock);
		if (n)
			break;
		if (left) {		/* buffer too small for one record */
			ret = -EINVAL;
			goto out;
		}
		if (f->f_flags & O_NONBLOCK) {
			ret = -EAGAIN;
			goto out;
		}
		if (wait_event_interruptible(conn->wq,
					     ml_lib_proxy_readable(conn))) {
			ret = -ERESTARTSYS;
			goto out;
		}
	}
	/* requests whose copy fails stay sent and time out into the fallback */
	ret = copy_to_user(buf, conn->rbuf, n) ? -EFAULT : n;
out:
	mutex_unlock(&conn->rlock);
	return ret;
}

/* The model with id @model_id that @conn serves, or NULL; under proxy_lock. */
static struct ml_lib_proxy *
ml_lib_proxy_conn_model(struct ml_lib_proxy_conn *conn, u32 model_id)
{
	struct ml_lib_proxy *p;

	list_for_each_entry(p, &conn->models, conn_node)
		if (p->id == model_id)
			return p;
	return NULL;
}

/* Take one answer from @buf; return its size or a negative errno. */
static ssize_t ml_lib_proxy_write_one(struct ml_lib_proxy_conn *conn,
				      const char __user *buf, size_t len)
{
	struct ml_lib_proxy_resp hdr;
	struct ml_lib_request *req, *found = NULL;
	struct ml_lib_proxy *p = NULL;
	size_t size, payload;

	if (len < sizeof(hdr))
		return -EINVAL;
	if (copy_from_user(&hdr, buf, sizeof(hdr)))
		return -EFAULT;
	if (hdr.version != ML_LIB_PROXY_VERSION || !hdr.n_out ||
	    hdr.n_out > ML_LIB_PROXY_MAX_OUT)
		return -EINVAL;
	payload = ALIGN(hdr.n_out * sizeof(s32), 8);
	size = sizeof(hdr) + payload;
	if (hdr.size != size || size > len)
		return -EINVAL;
	if (copy_from_user(conn->wbuf, buf + sizeof(hdr), payload))
		return -EFAULT;
	if ((hdr.n_out & 1) && conn->wbuf[hdr.n_out])	/* padding is zero */
		return -EINVAL;

	raw_spin_lock_irq(&proxy_lock);
	hlist_for_each_entry(req, ml_lib_proxy_bucket(conn, hdr.id), hnode) {
		if (req->id == hdr.id) {
			found = req;
			break;
		}
	}
	/*
	 * Counted for the request's model, or for an unknown id (late,
	 * duplicate, never sent) the one the answer names, if served here.
	 */
	if (found)
		p = found->m->proxy;
	else
		p = ml_lib_proxy_conn_model(conn, hdr.model_id);
	if (!found || p->id != hdr.model_id || p->cfg.n_out != hdr.n_out) {
		if (p)
			atomic64_inc(&p->invalid);
		raw_spin_unlock_irq(&proxy_lock);
		return -EINVAL;
	}
	hlist_del_init(&found->hnode);
	list_del_init(&found->tnode);
	memcpy(found->out, conn->wbuf, hdr.n_out * sizeof(s32));
	raw_spin_unlock_irq(&proxy_lock);

	found->status = ML_LIB_SRC_PROXY;
	found->reason = 0;
	atomic64_inc(&p->answers);
	ml_lib_proxy_finish(p, found);
	return size;
}

static ssize_t ml_lib_proxy_write(struct file *f, const char __user *buf,
				  size_t len, loff_t *ppos)
{
	struct ml_lib_proxy_conn *conn = f->private_data;
	ssize_t ret = 0;
	size_t done = 0;

	if (mutex_lock_interruptible(&conn->wlock))
		return -ERESTARTSYS;
	while (done < len) {
		ret = ml_lib_proxy_write_one(conn, buf + done, len - done);
		if (ret < 0)
			break;
		done += ret;
	}
	mutex_unlock(&conn->wlock);
	return done ? done : ret;
}

static __poll_t ml_lib_proxy_poll(struct file *f, poll_table *wait)
{
	struct ml_lib_proxy_conn *conn = f->private_data;
	__poll_t mask = EPOLLOUT | EPOLLWRNORM;

	poll_wait(f, &conn->wq, wait);
	if (ml_lib_proxy_readable(conn))
		mask |= EPOLLIN | EPOLLRDNORM;
	return mask;
}

static const struct file_operations ml_lib_proxy_fops = {
	.owner = THIS_MODULE,
	.open = ml_lib_proxy_open,
	.release = ml_lib_proxy_release,
	.read = ml_lib_proxy_read,
	.write = ml_lib_proxy_write,
	.poll = ml_lib_proxy_poll,
	.unlocked_ioctl = ml_lib_proxy_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
};

static struct miscdevice ml_lib_proxy_dev = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "ml_lib",
	.fops = &ml_lib_proxy_fops,
	.mode = 0600,
};

static int ml_lib_proxy_stats_show(struct seq_file *s, void *unused)
{
	struct ml_lib_proxy *p = s->private;
	unsigned long flags;
	u64 dropped, queued;
	int i;

	raw_spin_lock_irqsave(&p->ds_lock, flags);
	dropped = p->ds_dropped;
	queued = p->ds_count;
	raw_spin_unlock_irqrestore(&p->ds_lock, flags);

	seq_printf(s, "mode %s\n", ml_lib_mode_names[READ_ONCE(p->mode)]);
	seq_printf(s, "timeout_us %u\n", p->cfg.timeout_us);
	seq_printf(s, "served %d\n", READ_ONCE(p->conn) ? 1 : 0);
	seq_printf(s, "requests %lld\n", atomic64_read(&p->requests));
	seq_printf(s, "answers %lld\n", atomic64_read(&p->answers));
	seq_printf(s, "timeouts %lld\n", atomic64_read(&p->timeouts));
	seq_printf(s, "fallbacks %lld\n", atomic64_read(&p->fallbacks));
	seq_printf(s, "daemon_gone %lld\n", atomic64_read(&p->dead));
	seq_printf(s, "no_daemon %lld\n", atomic64_read(&p->absent));
	seq_printf(s, "mode_bypass %lld\n", atomic64_read(&p->bypassed));
	seq_printf(s, "no_wait %lld\n", atomic64_read(&p->nowait));
	seq_printf(s, "interrupted %lld\n", atomic64_read(&p->interrupted));
	seq_printf(s, "sleeping %lld\n", atomic64_read(&p->sleeping));
	seq_printf(s, "invalid_answers %lld\n", atomic64_read(&p->invalid));
	seq_printf(s, "inflight %d\n", atomic_read(&p->inflight));
	seq_printf(s, "dataset_queued %llu\n", queued);
	seq_printf(s, "dataset_dropped %llu\n", dropped);
	/* bucket i counts latencies in [2^(i-1), 2^i) us; bucket 0 is < 1 us */
	seq_puts(s, "latency_us_log2");
	for (i = 0; i < ML_LIB_HIST_BUCKETS; i++)
		seq_printf(s, " %lld", atomic64_read(&p->hist[i]));
	seq_putc(s, '\n');
	return 0;
}

/*
 * The debugfs files are created "unsafe" (debugfs wraps no call) and hold
 * a reference to their ml_lib_proxy from open to release. With debugfs's
 * wrapper, ml_lib_proxy_detach()'s debugfs_remove() would wait for every
 * read or write in progress, one stalled in its copy to or from user space
 * (a userfaultfd page) included, so a reader could hold a caller's module
 * exit forever. Now debugfs_remove() waits only for an open in progress,
 * and the struct outlives the last open file (which then shows the final
 * counters; a mode written after detach gets -ENODEV).
 */
static void ml_lib_proxy_free(struct kref *kref)
{
	kfree(container_of(kref, struct ml_lib_proxy, kref));
}

/*
 * @p is alive in ->open: debugfs's open wrapper holds the file across it
 * (debugfs_file_get()), and detach drops its own reference only after
 * debugfs_remove(), which waits for that.
 */
static int ml_lib_proxy_stats_open(struct inode *inode, struct file *f)
{
	struct ml_lib_proxy *p = inode->i_private;
	int ret;

	kref_get(&p->kref);
	ret = single_open(f, ml_lib_proxy_stats_show, p);
	if (ret)
		kref_put(&p->kref, ml_lib_proxy_free);
	return ret;
}

static int ml_lib_proxy_stats_release(struct inode *inode, struct file *f)
{
	struct ml_lib_proxy *p = ((struct seq_file *)f->private_data)->private;

	single_release(inode, f);
	kref_put(&p->kref, ml_lib_proxy_free);
	return 0;
}

static const struct file_operations ml_lib_proxy_stats_fops = {
	.owner = THIS_MODULE,
	.open = ml_lib_proxy_stats_open,
	.read = seq_read,
	.llseek = seq_lseek,
	.release = ml_lib_proxy_stats_release,
};

static int ml_lib_proxy_mode_open(struct inode *inode, struct file *f)
{
	struct ml_lib_proxy *p = inode->i_private;

	kref_get(&p->kref);	/* alive here: see ml_lib_proxy_stats_open() */
	f->private_data = p;
	return nonseekable_open(inode, f);
}

static int ml_lib_proxy_mode_release(struct inode *inode, struct file *f)
{
	kref_put(&((struct ml_lib_proxy *)f->private_data)->kref,
		 ml_lib_proxy_free);
	return 0;
}

static ssize_t ml_lib_proxy_mode_read(struct file *f, char __user *buf,
				      size_t len, loff_t *ppos)
{
	struct ml_lib_proxy *p = f->private_data;
	char tmp[16];
	int n = scnprintf(tmp, sizeof(tmp), "%u\n", READ_ONCE(p->mode));

	return simple_read_from_buffer(buf, len, ppos, tmp, n);
}

static ssize_t ml_lib_proxy_mode_write(struct file *f, const char __user *buf,
				       size_t len, loff_t *ppos)
{
	struct ml_lib_proxy *p = f->private_data;
	u32 mode;
	int ret = kstrtou32_from_user(buf, len, 0, &mode);

	if (ret)
		return ret;
	if (mode > ML_LIB_MODE_RECOMMENDATION)
		return -EINVAL;
	if (READ_ONCE(p->detached))
		return -ENODEV;
	WRITE_ONCE(p->mode, mode);
	return len;
}

static const struct file_operations ml_lib_proxy_mode_fops = {
	.owner = THIS_MODULE,
	.open = ml_lib_proxy_mode_open,
	.read = ml_lib_proxy_mode_read,
	.write = ml_lib_proxy_mode_write,
	.release = ml_lib_proxy_mode_release,
};

/**
 * ml_lib_proxy_set_mode() - change how a proxy model's answers are used
 * @m: a proxy model
 * @mode: an &enum ml_lib_mode
 *
 * Return: 0, or -EINVAL for an unknown mode or a model without proxy.
 */
int ml_lib_proxy_set_mode(struct ml_lib_model *m, u32 mode)
{
	if (!m->proxy || mode > ML_LIB_MODE_RECOMMENDATION)
		return -EINVAL;
	WRITE_ONCE(m->proxy->mode, mode);
	return 0;
}
EXPORT_SYMBOL_GPL(ml_lib_proxy_set_mode);

static int ml_lib_proxy_check(const struct ml_lib_model *m,
			      const struct ml_lib_proxy_config *cfg)
{
	const struct ml_lib_model *fb = cfg->fallback;

	if (!m->name || strlen(m->name) >= ML_LIB_PROXY_NAME_LEN || m->proxy ||
	    m->graph || fb == m)
		return -EINVAL;
	if (!cfg->n_in || cfg->n_in > ML_LIB_PROXY_MAX_IN ||
	    !cfg->n_out || cfg->n_out > ML_LIB_PROXY_MAX_OUT)
		return -EINVAL;
	if (!cfg->timeout_us || cfg->timeout_us > ML_LIB_MAX_TIMEOUT_US ||
	    cfg->mode > ML_LIB_MODE_RECOMMENDATION || cfg->collab_percent > 100)
		return -EINVAL;
	/* the fallback must answer in any context: an engine model only */
	if (fb && (!fb->graph || fb->proxy || fb->graph->n_in != cfg->n_in ||
		   fb->graph->n_out != cfg->n_out))
		return -EINVAL;
	if (cfg->dataset_records &&
	    (cfg->dataset_records > ML_LIB_MAX_DS_RECORDS ||
	     !cfg->dataset_features ||
	     cfg->dataset_features > ML_LIB_PROXY_MAX_IN ||
	     (u64)cfg->dataset_records * cfg->dataset_features * sizeof(s64) >
	     ML_LIB_MAX_DS_BYTES))
		return -EINVAL;
	return 0;
}

/* A fallback registered by @m's own module: the proxy does not pin it. */
static bool ml_lib_fb_is_own(const struct ml_lib_model *m,
			     const struct ml_lib_model *fb)
{
	return fb && fb->owner && fb->owner == m->owner;
}

/* Drops the reference to @fb that ml_lib_proxy_attach() took. */
static void ml_lib_proxy_put_fallback(const struct ml_lib_model *m,
				      struct ml_lib_model *fb)
{
	/* attach already dropped the module reference of an own fallback */
	if (ml_lib_fb_is_own(m, fb))
		__module_get(fb->owner);
	ml_lib_model_put(fb);
}

/**
 * ml_lib_proxy_attach() - make @m a model answered by the user-space daemon
 * @m: the model, not yet registered, with @m->graph NULL
 * @cfg: sizes, timeout, mode, fallback and dataset ring; copied
 *
 * Process context. Call before ml_lib_model_register(); callers then use
 * ml_lib_infer() / ml_lib_infer_async() as for any model. A fallback model
 * must be registered; the proxy holds a reference to it until
 * ml_lib_proxy_detach(), so it cannot be unloaded meanwhile.
 *
 * Return: 0; -EINVAL for a bad @cfg (sizes, timeout, mode, a dataset ring
 * over 64 MiB, a fallback that is not a registered in-kernel model of the
 * same sizes, or @m itself) or an @m that has a graph; -EEXIST when a proxy
 * model of that name exists; -ENOSPC when every model id is taken; -ENOMEM.
 */
int ml_lib_proxy_attach(struct ml_lib_model *m,
			const struct ml_lib_proxy_config *cfg)
{
	struct ml_lib_model *fb = NULL;
	struct ml_lib_proxy *p;
	int ret;

	might_sleep();
	ret = ml_lib_proxy_check(m, cfg);
	if (ret)
		return ret;
	p = kzalloc(sizeof(*p), GFP_KERNEL);
	if (!p)
		return -ENOMEM;
	if (cfg->fallback) {
		/* looked up under the registry's lock: registered, and pinned */
		fb = ml_lib_model_get(cfg->fallback->name);
		if (fb != cfg->fallback) {
			ml_lib_model_put(fb);
			kfree(p);
			return -EINVAL;
		}
		/*
		 * A module's own fallback must not pin that module: it could
		 * never be removed, since detach runs from its exit. Its exit
		 * detaches before unregistering the fallback.
		 */
		if (ml_lib_fb_is_own(m, fb))
			module_put(fb->owner);
	}
	p->m = m;
	p->cfg = *cfg;
	p->mode = cfg->mode;
	kref_init(&p->kref);
	INIT_LIST_HEAD(&p->pending);
	INIT_LIST_HEAD(&p->conn_node);
	raw_spin_lock_init(&p->ds_lock);
	hrtimer_init(&p->timer, CLOCK_MONOTONIC, HRTIMER_MODE_ABS_SOFT);
	p->timer.function = ml_lib_proxy_timer;
	ret = -ENOMEM;
	if (cfg->fallback_out) {
		p->fallback_out = kmemdup(cfg->fallback_out,
					  cfg->n_out * sizeof(s32), GFP_KERNEL);
		if (!p->fallback_out)
			goto err;
	}
	if (cfg->dataset_records) {
		p->ds_buf = kvcalloc((size_t)cfg->dataset_records *
				     cfg->dataset_features, sizeof(s64),
				     GFP_KERNEL);
		if (!p->ds_buf)
			goto err;
	}
	mutex_lock(&proxy_mutex);
	ret = -EEXIST;
	if (ml_lib_proxy_find_name(m->name))
		goto err_unlock;
	/*
	 * Ids go round like PIDs: a detached model's id is not handed out
	 * again at once, so a daemon's stale answer or registration for it
	 * cannot reach the model attached next.
	 */
	ret = ida_alloc_min(&proxy_ida, proxy_next_model_id, GFP_KERNEL);
	if (ret == -ENOSPC)
		ret = ida_alloc(&proxy_ida, GFP_KERNEL);
	if (ret < 0)
		goto err_unlock;
	p->id = ret;
	proxy_next_model_id = ret < INT_MAX ? ret + 1 : 0;
	list_add_tail(&p->node, &proxy_list);
	m->proxy = p;
	mutex_unlock(&proxy_mutex);

	p->dir = debugfs_create_dir(m->name, proxy_debugfs);
	debugfs_create_file_unsafe("stats", 0400, p->dir, p,
				   &ml_lib_proxy_stats_fops);
	debugfs_create_file_unsafe("mode", 0600, p->dir, p,
				   &ml_lib_proxy_mode_fops);
	return 0;
err_unlock:
	mutex_unlock(&proxy_mutex);
err:
	kvfree(p->ds_buf);
	kfree(p->fallback_out);
	kfree(p);
	ml_lib_proxy_put_fallback(m, fb);
	return ret;
}
EXPORT_SYMBOL_GPL(ml_lib_proxy_attach);

/*
 * Answer every request of @p still waiting for its daemon from the
 * fallback (@reason, counted in @count when given), a batch per proxy_lock
 * hold (interrupts are off under it), collected on ->node, which is free
 * once a request is off its daemon. Process context.
 */
static void ml_lib_proxy_drain(struct ml_lib_proxy *p, int reason,
			       atomic64_t *count)
{
	struct ml_lib_request *req, *tmp;
	LIST_HEAD(dead);
	u32 n;

	do {
		n = 0;
		raw_spin_lock_irq(&proxy_lock);
		while (n < ML_LIB_DRAIN_BATCH && !list_empty(&p->pending)) {
			req = list_first_entry(&p->pending, struct ml_lib_request,
					       tnode);
			ml_lib_proxy_unlink_conn(req);
			list_del_init(&req->tnode);
			list_add_tail(&req->node, &dead);
			n++;
		}
		raw_spin_unlock_irq(&proxy_lock);
		list_for_each_entry_safe(req, tmp, &dead, node) {
			if (count)
				atomic64_inc(count);
			ml_lib_proxy_fallback(p, req, reason);
			ml_lib_proxy_finish(p, req);
			cond_resched();
		}
		INIT_LIST_HEAD(&dead);	/* its entries may be freed by now */
	} while (n == ML_LIB_DRAIN_BATCH);
}

/*
 * System sleep: before tasks are frozen, every request waiting for a
 * daemon is answered by its fallback (reason -EHOSTDOWN, counted as
 * sleeping), and until the system has resumed new ones are answered so at
 * once: a frozen daemon cannot answer, and a caller waiting for it, such
 * as a work item on a freezable workqueue (its worker does not freeze, the
 * freezer waits for the work), would hold the suspend up to the model's
 * timeout, past the freezer's 20 s.
 */
static int ml_lib_proxy_pm_notify(struct notifier_block *nb,
				  unsigned long action, void *data)
{
	struct ml_lib_proxy *p;
	unsigned int kind;
	bool sleeping;

	switch (action) {
	case PM_SUSPEND_PREPARE:
	case PM_POST_SUSPEND:
		kind = ML_LIB_PM_SUSPEND;
		break;
	case PM_HIBERNATION_PREPARE:
	case PM_POST_HIBERNATION:
		kind = ML_LIB_PM_HIBERNATION;
		break;
	case PM_RESTORE_PREPARE:
	case PM_POST_RESTORE:
		kind = ML_LIB_PM_RESTORE;
		break;
	default:
		return NOTIFY_DONE;
	}
	sleeping = action == PM_SUSPEND_PREPARE ||
		   action == PM_HIBERNATION_PREPARE ||
		   action == PM_RESTORE_PREPARE;
	raw_spin_lock_irq(&proxy_lock);
	if (sleeping)
		proxy_sleeping |= kind;
	else
		proxy_sleeping &= ~kind;
	raw_spin_unlock_irq(&proxy_lock);
	if (sleeping) {
		/* detach takes proxy_mutex to leave the list: @p stays */
		mutex_lock(&proxy_mutex);
		list_for_each_entry(p, &proxy_list, node)
			ml_lib_proxy_drain(p, -EHOSTDOWN, &p->sleeping);
		mutex_unlock(&proxy_mutex);
	}
	return NOTIFY_DONE;
}

static struct notifier_block ml_lib_proxy_pm_nb = {
	.notifier_call = ml_lib_proxy_pm_notify,
};

/**
 * ml_lib_proxy_detach() - undo ml_lib_proxy_attach()
 * @m: a proxy model, already unregistered, with no caller inside
 *     ml_lib_infer(), ml_lib_infer_async() or ml_lib_dataset_publish()
 *     any more (the owning module stops its own callers first, e.g. its
 *     interrupt handler that publishes)
 *
 * Process context. Requests still waiting for the daemon are answered by
 * the fallback (reason -ESHUTDOWN) before this returns; later answers from
 * the daemon for them get -EINVAL. The reference to the fallback model is
 * dropped.
 */
void ml_lib_proxy_detach(struct ml_lib_model *m)
{
	struct ml_lib_proxy *p = m->proxy;

	if (!p)
		return;
	might_sleep();
	mutex_lock(&proxy_mutex);
	list_del(&p->node);
	raw_spin_lock_irq(&proxy_lock);
	WRITE_ONCE(p->detached, true);
	if (p->conn) {
		list_del_init(&p->conn_node);
		p->conn = NULL;
	}
	raw_spin_unlock_irq(&proxy_lock);
	mutex_unlock(&proxy_mutex);

	/* No request joins p->pending now. */
	ml_lib_proxy_drain(p, -ESHUTDOWN, NULL);
	/* a timer, write or release may still be completing one of ours */
	wait_var_event(&p->inflight, !atomic_read(&p->inflight));
	hrtimer_cancel(&p->timer);
	debugfs_remove(p->dir);
	ida_free(&proxy_ida, p->id);
	WRITE_ONCE(m->proxy, NULL);
	ml_lib_proxy_put_fallback(m, p->cfg.fallback);
	kvfree(p->ds_buf);
	kfree(p->fallback_out);
	kref_put(&p->kref, ml_lib_proxy_free);	/* open debugfs files keep it */
}
EXPORT_SYMBOL_GPL(ml_lib_proxy_detach);

int ml_lib_proxy_init(void)
{
	int ret;

	proxy_debugfs = debugfs_create_dir("ml_lib_proxy", NULL);
	ret = register_pm_notifier(&ml_lib_proxy_pm_nb);
	if (ret)
		goto err_debugfs;
	ret = misc_register(&ml_lib_proxy_dev);
	if (ret)
		goto err_pm;
	return 0;

err_pm:
	unregister_pm_notifier(&ml_lib_proxy_pm_nb);
err_debugfs:
	debugfs_remove(proxy_debugfs);
	return ret;
}

void ml_lib_proxy_exit(void)
{
	misc_deregister(&ml_lib_proxy_dev);
	unregister_pm_notifier(&ml_lib_proxy_pm_nb);
	debugfs_remove(proxy_debugfs);
}
