// SPDX-License-Identifier: GPL-2.0
/*
 * Test caller for the ml_lib user-space proxy. It plays a kernel subsystem:
 * it declares one proxy model, registers it, and asks it for answers
 * through the one kernel API (ml_lib_model_get() + ml_lib_infer() and
 * ml_lib_infer_async()). The booted tests (tests/test_proxy_boot.py) drive
 * it through /sys/kernel/debug/ml_lib_proxy_test/:
 *
 *   infer    write k rows of n_in s64; read back k rows of
 *            [source, latency ns, out[0..n_out-1]] as s64
 *   stress   write "sync|irqoff|rcu|spin|bh|async|rawlock|burst THREADS
 *            COUNT"; kernel threads send COUNT requests each, input row
 *            (t, i, t * 100000 + i + j, ...), and check the answers of an
 *            identity model; read the verdict. irqoff, rcu, spin and bh
 *            call ml_lib_infer() with interrupts off, inside
 *            rcu_read_lock(), holding a spinlock_t or inside
 *            local_bh_disable(), where it may not wait (on PREEMPT_RT the
 *            last two leave preempt_count() at 0). async keeps ASYNC_WINDOW requests in
 *            flight per thread (submitted with interrupts off), rawlock
 *            too but submitted holding a raw spinlock, burst all COUNT at
 *            once (a daemon then holds them all).
 *            "hold 1 COUNT" submits COUNT async requests from the writer
 *            and returns at once; the verdict says how many went out.
 *            Their completions are counted in module globals, which the
 *            module's exit prints after detaching the model:
 *            "ml_lib_proxy_test: held N: completed C, fallback F, proxy P,
 *            error E" (a daemon may still hold them at rmmod)
 *   publish  write k rows of dataset_features s64, published with
 *            interrupts off (atomic context)
 *   kthread  write anything: a freezable kernel thread makes one
 *            synchronous call (every input 1) and the write returns at
 *            once; read "done D ret R ns NS out O0 O1 ..." (D is 0 while
 *            the call runs). One per module load.
 *   work     the same from a work item on system_freezable_wq, whose
 *            worker does not freeze: the freezer waits for the work. One
 *            per module load.
 *
 * The module's exit, after unregistering the model and before detaching
 * it, calls ml_lib_infer() and ml_lib_infer_async() on it once and prints
 * "ml_lib_proxy_test: after unregister: sync S async A" (-ENOENT expected).
 */

#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/kthread.h>
#include <linux/completion.h>
#include <linux/debugfs.h>
#include <linux/slab.h>
#include <linux/mm.h>
#include <linux/uaccess.h>
#include <linux/ktime.h>
#include <linux/mutex.h>
#include <linux/atomic.h>
#include <linux/wait.h>
#include <linux/spinlock.h>
#include <linux/bottom_half.h>
#include <linux/string.h>
#include <linux/rcupdate.h>
#include <linux/freezer.h>
#include <linux/workqueue.h>
#include <linux/ml_lib.h>

static char *name = "proxy_test";
module_param(name, charp, 0444);
MODULE_PARM_DESC(name, "model name the daemon registers");
static uint n_in = 4;
module_param(n_in, uint, 0444);
static uint n_out = 4;
module_param(n_out, uint, 0444);
static uint timeout_ms = 1000;
module_param(timeout_ms, uint, 0444);
static uint mode = ML_LIB_MODE_RECOMMENDATION;
module_param(mode, uint, 0444);
static bool fallback = true;
module_param(fallback, bool, 0444);
MODULE_PARM_DESC(fallback, "default answer -(i+1) when the daemon cannot");
static char *fallback_model;
module_param(fallback_model, charp, 0444);
MODULE_PARM_DESC(fallback_model, "in-kernel model answering instead");
static uint dataset_records;
module_param(dataset_records, uint, 0444);
static uint dataset_features = 4;
module_param(dataset_features, uint, 0444);

#define STRESS_MAX_THREADS	16
#define ASYNC_WINDOW		16

static struct ml_lib_model model;
static struct ml_lib_model *fb_model;
static s32 *fallback_out;
static struct dentry *dir;

static DEFINE_MUTEX(infer_lock);
static s64 *infer_result;
static size_t infer_result_bytes;

static DEFINE_MUTEX(stress_lock);
static char stress_verdict[256];

/* rawlock: submissions hold it, as a caller inside a raw lock would */
static DEFINE_RAW_SPINLOCK(stress_raw_lock);
/* spin: sync calls hold it (a sleeping lock on PREEMPT_RT) */
static DEFINE_SPINLOCK(stress_spinlock);
static const char * const stress_kinds[] = {
	"sync", "irqoff", "rcu", "spin", "bh", "async", "rawlock", "burst", "hold",
};

/* "hold" requests: no thread waits for them, the exit reports them */
static atomic_t held, held_completed, held_fallback, held_proxy, held_error;

struct stress_ctx {
	u32 t, count;
	bool async;
	bool irqoff;	/* sync calls with interrupts off */
	bool rcu;	/* sync calls inside rcu_read_lock() */
	bool spin;	/* sync calls holding stress_spinlock */
	bool bh;	/* sync calls inside local_bh_disable() */
	bool rawlock;	/* async submissions under stress_raw_lock */
	u32 window;	/* async: most requests in flight */
	u64 ok, bad, fallbacks, errors;
	/*
	 * Async: completions update the counters and wake the thread under
	 * wq.lock, so once the thread has seen outstanding == 0 under that
	 * lock no callback touches this context any more.
	 */
	u32 outstanding;
	wait_queue_head_t wq;
	struct completion done;
};

struct stress_req {
	struct ml_lib_request req;
	struct stress_ctx *ctx;
	s64 in[8];
	s32 out[8];
};

static void stress_fill(s64 *in, u32 t, u32 i)
{
	u32 j;

	for (j = 0; j < n_in; j++)
		in[j] = j == 0 ? t : j == 1 ? i : (s64)t * 100000 + i + j;
}

static void stress_check(struct stress_ctx *c, const s64 *in, const s32 *out,
			 int status)
{
	u32 j;

	if (status < 0) {
		c->errors++;
		return;
	}
	if (status == ML_LIB_SRC_FALLBACK) {
		c->fallbacks++;
		return;
	}
	for (j = 0; j < n_out; j++) {
		if (out[j] != in[j]) {
			c->bad++;
			return;
		}
	}
	c->ok++;
}

/* Runs in atomic context (timer softirq or the daemon's write). */
static void stress_async_done(struct ml_lib_request *req)
{
	struct stress_req *r = container_of(req, struct stress_req, req);
	struct stress_ctx *c = r->ctx;
	unsigned long flags;

	spin_lock_irqsave(&c->wq.lock, flags);
	stress_check(c, r->in, r->out, req->status);
	c->outstanding--;
	wake_up_locked(&c->wq);
	spin_unlock_irqrestore(&c->wq.lock, flags);
	kfree(r);
}

/*
 * Any context. A held request owns its memory (no thread context to point
 * to) and frees it here; the count comes last, once it is classified.
 */
static void stress_hold_done(struct ml_lib_request *req)
{
	struct stress_req *r = container_of(req, struct stress_req, req);

	if (req->status < 0)
		atomic_inc(&held_error);
	else if (req->status == ML_LIB_SRC_FALLBACK)
		atomic_inc(&held_fallback);
	else if (req->status == ML_LIB_SRC_PROXY)
		atomic_inc(&held_proxy);
	kfree(r);
	atomic_inc(&held_completed);
}

/* Submit @count requests that nobody waits for; stress_lock held. */
static void stress_hold(u32 count)
{
	struct stress_req *r;
	u32 i, sent = 0, errs = 0;

	for (i = 0; i < count; i++) {
		r = kzalloc(sizeof(*r), GFP_KERNEL);
		if (!r) {
			errs++;
			continue;
		}
		stress_fill(r->in, 0, i);
		r->req.in = r->in;
		r->req.n_in = n_in;
		r->req.out = r->out;
		r->req.n_out = n_out;
		r->req.done = stress_hold_done;
		if (ml_lib_infer_async(&model, &r->req)) {
			kfree(r);
			errs++;
			continue;
		}
		atomic_inc(&held);
		sent++;
	}
	snprintf(stress_verdict, sizeof(stress_verdict),
		 "held %u error %u\n", sent, errs);
}

/* One synchronous call in the context @c asks for. */
static int stress_sync_call(struct stress_ctx *c, const s64 *in, s32 *out)
{
	unsigned long flags;
	int ret;

	/* may not wait there: the fallback answers at once */
	if (c->irqoff) {
		local_irq_save(flags);
		ret = ml_lib_infer(&model, in, n_in, out, n_out);
		local_irq_restore(flags);
	} else if (c->rcu) {
		rcu_read_lock();
		ret = ml_lib_infer(&model, in, n_in, out, n_out);
		rcu_read_unlock();
	} else if (c->spin) {
		spin_lock(&stress_spinlock);
		ret = ml_lib_infer(&model, in, n_in, out, n_out);
		spin_unlock(&stress_spinlock);
	} else if (c->bh) {
		local_bh_disable();
		ret = ml_lib_infer(&model, in, n_in, out, n_out);
		local_bh_enable();
	} else {
		ret = ml_lib_infer(&model, in, n_in, out, n_out);
	}
	return ret;
}

static int stress_thread(void *arg)
{
	struct stress_ctx *c = arg;
	struct stress_req *r;
	s64 in[8];
	s32 out[8];
	unsigned long flags;
	u32 i;
	int ret;

	for (i = 0; i < c->count; i++) {
		if (!c->async) {
			stress_fill(in, c->t, i);
			ret = stress_sync_call(c, in, out);
			stress_check(c, in, out, ret);
			continue;
		}
		r = kzalloc(sizeof(*r), GFP_KERNEL);
		spin_lock_irq(&c->wq.lock);
		/* kthreads get no signals: this only returns with a free slot */
		wait_event_interruptible_locked_irq(c->wq,
						    c->outstanding < c->window);
		if (!r) {
			c->errors++;
			spin_unlock_irq(&c->wq.lock);
			continue;
		}
		c->outstanding++;
		spin_unlock_irq(&c->wq.lock);
		r->ctx = c;
		stress_fill(r->in, c->t, i);
		r->req.in = r->in;
		r->req.n_in = n_in;
		r->req.out = r->out;
		r->req.n_out = n_out;
		r->req.done = stress_async_done;
		/*
		 * Submit with interrupts off, or holding a raw spinlock: the
		 * async call is safe in any context but NMI.
		 */
		if (c->rawlock) {
			raw_spin_lock_irqsave(&stress_raw_lock, flags);
			ret = ml_lib_infer_async(&model, &r->req);
			raw_spin_unlock_irqrestore(&stress_raw_lock, flags);
		} else {
			local_irq_save(flags);
			ret = ml_lib_infer_async(&model, &r->req);
			local_irq_restore(flags);
		}
		if (ret) {
			kfree(r);
			spin_lock_irq(&c->wq.lock);
			c->outstanding--;
			c->errors++;
			spin_unlock_irq(&c->wq.lock);
		}
	}
	spin_lock_irq(&c->wq.lock);
	wait_event_interruptible_locked_irq(c->wq, !c->outstanding);
	spin_unlock_irq(&c->wq.lock);
	complete(&c->done);
	return 0;
}

static ssize_t stress_write(struct file *f, const char __user *ubuf,
			    size_t len, loff_t *ppos)
{
	struct stress_ctx *ctx;
	struct task_struct *tsk;
	u64 ok = 0, bad = 0, fbs = 0, errs = 0;
	char buf[64], kind[16];
	u32 threads, count, t, started = 0;
	ktime_t t0;

	if (n_in > 8 || n_out > 8 || n_out > n_in || !len || len >= sizeof(buf))
		return -EINVAL;
	if (copy_from_user(buf, ubuf, len))
		return -EFAULT;
	buf[len] = '\0';
	if (sscanf(buf, "%15s %u %u", kind, &threads, &count) != 3 ||
	    !threads || threads > STRESS_MAX_THREADS)
		return -EINVAL;
	/* an unknown kind must fail, not quietly run as plain sync */
	if (match_string(stress_kinds, ARRAY_SIZE(stress_kinds), kind) < 0)
		return -EINVAL;
	if (!strcmp(kind, "hold")) {
		if (threads != 1)
			return -EINVAL;
		mutex_lock(&stress_lock);
		stress_hold(count);
		mutex_unlock(&stress_lock);
		return len;
	}
	ctx = kcalloc(threads, sizeof(*ctx), GFP_KERNEL);
	if (!ctx)
		return -ENOMEM;
	mutex_lock(&stress_lock);
	t0 = ktime_get();
	for (t = 0; t < threads; t++) {
		ctx[t].t = t;
		ctx[t].count = count;
		ctx[t].async = !strcmp(kind, "async") || !strcmp(kind, "burst") ||
			       !strcmp(kind, "rawlock");
		ctx[t].window = strcmp(kind, "burst") ? ASYNC_WINDOW : U32_MAX;
		ctx[t].irqoff = !strcmp(kind, "irqoff");
		ctx[t].rcu = !strcmp(kind, "rcu");
		ctx[t].spin = !strcmp(kind, "spin");
		ctx[t].bh = !strcmp(kind, "bh");
		ctx[t].rawlock = !strcmp(kind, "rawlock");
		init_waitqueue_head(&ctx[t].wq);
		init_completion(&ctx[t].done);
		tsk = kthread_run(stress_thread, &ctx[t], "mlproxy_t%u", t);
		if (IS_ERR(tsk))
			break;
		started++;
	}
	for (t = 0; t < started; t++) {
		wait_for_completion(&ctx[t].done);
		ok += ctx[t].ok;
		bad += ctx[t].bad;
		fbs += ctx[t].fallbacks;
		errs += ctx[t].errors;
	}
	snprintf(stress_verdict, sizeof(stress_verdict),
		 "threads %u sent %llu ok %llu bad %llu fallback %llu error %llu lost %llu ns %lld\n",
		 started, (u64)started * count, ok, bad, fbs, errs,
		 (u64)started * count - ok - bad - fbs - errs,
		 ktime_to_ns(ktime_sub(ktime_get(), t0)));
	mutex_unlock(&stress_lock);
	kfree(ctx);
	return started == threads ? len : -ENOMEM;
}

static ssize_t stress_read(struct file *f, char __user *ubuf, size_t len,
			   loff_t *ppos)
{
	ssize_t ret;

	mutex_lock(&stress_lock);
	ret = simple_read_from_buffer(ubuf, len, ppos, stress_verdict,
				      strlen(stress_verdict));
	mutex_unlock(&stress_lock);
	return ret;
}

static const struct file_operations stress_fops = {
	.owner = THIS_MODULE,
	.write = stress_write,
	.read = stress_read,
};

static ssize_t infer_write(struct file *f, const char __user *ubuf,
			   size_t len, loff_t *ppos)
{
	size_t row_in = n_in * sizeof(s64), rows, r, j, stride = 2 + n_out;
	s64 *in, *res;
	s32 *out;
	ktime_t t0;
	int ret;

	if (!len || len % row_in || len > (1U << 22))
		return -EINVAL;
	rows = len / row_in;
	in = vmemdup_user(ubuf, len);
	if (IS_ERR(in))
		return PTR_ERR(in);
	res = kvcalloc(rows * stride, sizeof(s64), GFP_KERNEL);
	out = kcalloc(n_out, sizeof(s32), GFP_KERNEL);
	if (!res || !out) {
		kvfree(in);
		kvfree(res);
		kfree(out);
		return -ENOMEM;
	}
	for (r = 0; r < rows; r++) {
		t0 = ktime_get();
		ret = ml_lib_infer(&model, in + r * n_in, n_in, out, n_out);
		res[r * stride] = ret;
		res[r * stride + 1] = ktime_to_ns(ktime_sub(ktime_get(), t0));
		for (j = 0; j < n_out; j++)
			res[r * stride + 2 + j] = ret < 0 ? 0 : out[j];
	}
	kvfree(in);
	kfree(out);
	mutex_lock(&infer_lock);
	kvfree(infer_result);
	infer_result = res;
	infer_result_bytes = rows * stride * sizeof(s64);
	mutex_unlock(&infer_lock);
	return len;
}

static ssize_t infer_read(struct file *f, char __user *ubuf, size_t len,
			  loff_t *ppos)
{
	ssize_t ret;

	mutex_lock(&infer_lock);
	ret = simple_read_from_buffer(ubuf, len, ppos, infer_result,
				      infer_result_bytes);
	mutex_unlock(&infer_lock);
	return ret;
}

static const struct file_operations infer_fops = {
	.owner = THIS_MODULE,
	.write = infer_write,
	.read = infer_read,
};

static ssize_t publish_write(struct file *f, const char __user *ubuf,
			     size_t len, loff_t *ppos)
{
	size_t row = dataset_features * sizeof(s64), r;
	unsigned long flags;
	s64 *feat;
	int ret = 0;

	/* dataset_features=0 is a valid parameter when there is no ring */
	if (!row || !len || len % row || len > (1U << 22))
		return -EINVAL;
	feat = vmemdup_user(ubuf, len);
	if (IS_ERR(feat))
		return PTR_ERR(feat);
	for (r = 0; r < len / row && !ret; r++) {
		local_irq_save(flags);
		ret = ml_lib_dataset_publish(&model, feat + r * dataset_features,
					     dataset_features);
		local_irq_restore(flags);
	}
	kvfree(feat);
	return ret ? ret : len;
}

static const struct file_operations publish_fops = {
	.owner = THIS_MODULE,
	.write = publish_write,
};

/* One synchronous call (every input 1) made in the background, its result. */
struct bg_call {
	atomic_t done;
	int ret;
	s64 ns;
	s32 out[8];
};

static void bg_call_run(struct bg_call *c)
{
	s64 in[8] = { 1, 1, 1, 1, 1, 1, 1, 1 };
	ktime_t t0 = ktime_get();

	c->ret = ml_lib_infer(&model, in, n_in, c->out, n_out);
	c->ns = ktime_to_ns(ktime_sub(ktime_get(), t0));
	atomic_set_release(&c->done, 1);
}

/* "done D ret R ns NS out O0 O1 ..." (D is 0 while the call runs) */
static ssize_t bg_call_read(struct bg_call *c, char __user *ubuf, size_t len,
			    loff_t *ppos)
{
	char buf[160];
	int n, done = atomic_read_acquire(&c->done);
	u32 i;

	n = scnprintf(buf, sizeof(buf), "done %d ret %d ns %lld out", done,
		      done ? c->ret : 0, done ? c->ns : 0);
	for (i = 0; done && i < n_out; i++)
		n += scnprintf(buf + n, sizeof(buf) - n, " %d", c->out[i]);
	n += scnprintf(buf + n, sizeof(buf) - n, "\n");
	return simple_read_from_buffer(ubuf, len, ppos, buf, n);
}

static DECLARE_COMPLETION(kthr_exited);
static bool kthr_started;	/* under stress_lock */
static struct bg_call kthr_call;

static int kthr_fn(void *unused)
{
	set_freezable();
	bg_call_run(&kthr_call);
	try_to_freeze();	/* where a freezable thread's loop would */
	kthread_complete_and_exit(&kthr_exited, 0);
}

static ssize_t kthread_write(struct file *f, const char __user *ubuf,
			     size_t len, loff_t *ppos)
{
	struct task_struct *tsk;
	ssize_t ret = len;

	if (n_in > ARRAY_SIZE(kthr_call.out) || n_out > ARRAY_SIZE(kthr_call.out))
		return -EINVAL;
	mutex_lock(&stress_lock);
	if (kthr_started) {
		ret = -EBUSY;
	} else {
		tsk = kthread_run(kthr_fn, NULL, "mlproxy_freezable");
		if (IS_ERR(tsk))
			ret = PTR_ERR(tsk);
		else
			kthr_started = true;
	}
	mutex_unlock(&stress_lock);
	return ret;
}

static ssize_t kthread_read(struct file *f, char __user *ubuf, size_t len,
			    loff_t *ppos)
{
	return bg_call_read(&kthr_call, ubuf, len, ppos);
}

static const struct file_operations kthread_fops = {
	.owner = THIS_MODULE,
	.write = kthread_write,
	.read = kthread_read,
};

static bool work_started;	/* under stress_lock */
static struct bg_call work_call;

static void work_fn(struct work_struct *w)
{
	bg_call_run(&work_call);
}

static DECLARE_WORK(work, work_fn);

static ssize_t work_write(struct file *f, const char __user *ubuf,
			  size_t len, loff_t *ppos)
{
	ssize_t ret = len;

	if (n_in > ARRAY_SIZE(work_call.out) || n_out > ARRAY_SIZE(work_call.out))
		return -EINVAL;
	mutex_lock(&stress_lock);
	if (work_started)
		ret = -EBUSY;
	else
		work_started = queue_work(system_freezable_wq, &work);
	mutex_unlock(&stress_lock);
	return ret;
}

static ssize_t work_read(struct file *f, char __user *ubuf, size_t len,
			 loff_t *ppos)
{
	return bg_call_read(&work_call, ubuf, len, ppos);
}

static const struct file_operations work_fops = {
	.owner = THIS_MODULE,
	.write = work_write,
	.read = work_read,
};

static int __init proxy_test_init(void)
{
	struct ml_lib_proxy_config cfg = {
		.n_in = n_in, .n_out = n_out,
		.timeout_us = timeout_ms * USEC_PER_MSEC,
		.mode = mode, .collab_percent = 50,
		.dataset_records = dataset_records,
		.dataset_features = dataset_features,
	};
	u32 i;
	int ret;

	if (fallback) {
		fallback_out = kcalloc(n_out, sizeof(s32), GFP_KERNEL);
		if (!fallback_out)
			return -ENOMEM;
		for (i = 0; i < n_out; i++)
			fallback_out[i] = -(s32)(i + 1);
		cfg.fallback_out = fallback_out;
	}
	if (fallback_model) {
		fb_model = ml_lib_model_get(fallback_model);
		if (!fb_model) {
			ret = -ENOENT;
			goto err;
		}
		cfg.fallback = fb_model;
	}
	model.name = name;
	ret = ml_lib_proxy_attach(&model, &cfg);
	if (ret)
		goto err;
	ret = ml_lib_model_register(&model);
	if (ret) {
		ml_lib_proxy_detach(&model);
		goto err;
	}
	dir = debugfs_create_dir("ml_lib_proxy_test", NULL);
	debugfs_create_file("infer", 0600, dir, NULL, &infer_fops);
	debugfs_create_file("stress", 0600, dir, NULL, &stress_fops);
	debugfs_create_file("publish", 0200, dir, NULL, &publish_fops);
	debugfs_create_file("kthread", 0600, dir, NULL, &kthread_fops);
	debugfs_create_file("work", 0600, dir, NULL, &work_fops);
	return 0;
err:
	ml_lib_model_put(fb_model);
	kfree(fallback_out);
	return ret;
}

/* Only runs if ml_lib_infer_async() wrongly accepts an unregistered model. */
static void unregistered_done(struct ml_lib_request *req)
{
}

/*
 * The model is unregistered, not detached: both calls must say -ENOENT.
 * Static: a request wrongly accepted lives until the detach completes it.
 */
static s64 unreg_in[8];
static s32 unreg_out[8];
static struct ml_lib_request unreg_req;

static void proxy_test_unregistered(void)
{
	int sync = -EINVAL, async = -EINVAL;

	if (n_in <= ARRAY_SIZE(unreg_in) && n_out <= ARRAY_SIZE(unreg_out)) {
		sync = ml_lib_infer(&model, unreg_in, n_in, unreg_out, n_out);
		unreg_req.in = unreg_in;
		unreg_req.n_in = n_in;
		unreg_req.out = unreg_out;
		unreg_req.n_out = n_out;
		unreg_req.done = unregistered_done;
		async = ml_lib_infer_async(&model, &unreg_req);
	}
	pr_info("ml_lib_proxy_test: after unregister: sync %d async %d\n",
		sync, async);
}

static void __exit proxy_test_exit(void)
{
	debugfs_remove(dir);
	/*
	 * No caller may be inside ml_lib_infer() at detach; the thread's and
	 * the work item's calls end by the model's timeout at the latest.
	 */
	if (kthr_started)
		wait_for_completion(&kthr_exited);
	flush_work(&work);
	ml_lib_model_unregister(&model);
	proxy_test_unregistered();
	/* every request is completed (held ones freed) when this returns */
	ml_lib_proxy_detach(&model);
	if (atomic_read(&held))
		pr_info("ml_lib_proxy_test: held %d: completed %d, fallback %d, proxy %d, error %d\n",
			atomic_read(&held), atomic_read(&held_completed),
			atomic_read(&held_fallback), atomic_read(&held_proxy),
			atomic_read(&held_error));
	ml_lib_model_put(fb_model);
	kfree(fallback_out);
	kvfree(infer_result);
}

module_init(proxy_test_init);
module_exit(proxy_test_exit);
MODULE_DESCRIPTION("ml_lib proxy test caller");
MODULE_LICENSE("GPL");
