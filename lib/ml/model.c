// SPDX-License-Identifier: GPL-2.0
/*
 * ml_lib model registry and runtime.
 *
 * A model is registered under a unique name, either by a module that owns
 * the generated C tables or from a binary blob. Registration validates the
 * graph once and allocates scratch arenas up front, so that inference
 * (ml_lib_infer()) allocates nothing, takes no lock and may run in any
 * context: task, softirq, hardirq or NMI.
 *
 * Scratch: every possible CPU owns one arena per context level. A context
 * only ever runs on its own CPU with preemption disabled and can be
 * interrupted only by a higher level, so no two inferences ever share an
 * arena.
 *
 * Lookup (ml_lib_model_get()) runs in process context under a mutex and
 * takes a reference; ml_lib_model_unregister() sleeps until all such
 * references are dropped.
 *
 * With CONFIG_DEBUG_FS, /sys/kernel/debug/ml_lib/ is the test interface
 * user space drives the library through:
 *
 *   load                 write a whole blob: parse, validate, register
 *   unload               write a blob-loaded model's name: unregister, free
 *   models/<name>/infer  write k * n_in little-endian s64; the next read
 *                        returns k * n_out little-endian s32
 *   models/<name>/stats  inference counts per context level, errors, sizes
 *
 * Model directories live under models/ so that no model name can clash
 * with load or unload.
 */

#include <linux/debugfs.h>
#include <linux/err.h>
#include <linux/fs.h>
#include <linux/hardirq.h>
#include <linux/irq_work.h>
#include <linux/kref.h>
#include <linux/list.h>
#include <linux/ml_lib.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/percpu.h>
#include <linux/preempt.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/seq_file.h>
#include <linux/sizes.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uaccess.h>
#include <linux/wait.h>
#include <asm/byteorder.h>
#include <asm/unaligned.h>
#include <crypto/sha2.h>

#include "proxy.h"

/* Context levels; each may interrupt only the ones before it. */
enum ml_lib_ctx {
	ML_LIB_CTX_TASK,
	ML_LIB_CTX_SOFTIRQ,
	ML_LIB_CTX_HARDIRQ,
	ML_LIB_CTX_NMI,
	ML_LIB_CTX_LEVELS,
};

static const char * const ml_lib_ctx_names[ML_LIB_CTX_LEVELS] = {
	"task", "softirq", "hardirq", "nmi",
};

/*
 * Per-CPU state of one model. A level's fields are only touched by that
 * level on that CPU with preemption disabled, so plain accesses suffice.
 */
struct ml_lib_scratch {
	void *arena[ML_LIB_CTX_LEVELS];
	u64 calls[ML_LIB_CTX_LEVELS];
	u64 errors[ML_LIB_CTX_LEVELS];
	void *mem;	/* one allocation holding all the arenas */
};

/* Bytes of blob the debugfs load file accepts: all ml_lib_blob_parse() would. */
#define ML_LIB_MAX_BLOB		ML_LIB_MAX_BLOB_LEN
/* Bytes of input one write to an infer file may carry, and of output. */
#define ML_LIB_MAX_INFER_IN	SZ_1M
#define ML_LIB_MAX_INFER_OUT	SZ_4M

static LIST_HEAD(ml_lib_models);
static DEFINE_MUTEX(ml_lib_lock);	/* protects ml_lib_models */
static DECLARE_WAIT_QUEUE_HEAD(ml_lib_release_wq);
/* Both may hold an ERR_PTR(): debugfs ignores an error parent. */
static struct dentry *ml_lib_debugfs;
static struct dentry *ml_lib_debugfs_models;

static inline struct ml_lib_scratch __percpu *
ml_lib_scratch_of(const struct ml_lib_model *m)
{
	return (struct ml_lib_scratch __percpu *)m->scratch;
}

static void ml_lib_free_scratch(struct ml_lib_model *m)
{
	struct ml_lib_scratch __percpu *sc = ml_lib_scratch_of(m);
	int cpu;

	if (!sc)
		return;
	for_each_possible_cpu(cpu)
		kvfree(per_cpu_ptr(sc, cpu)->mem);
	free_percpu(sc);
	m->scratch = NULL;
}

static int ml_lib_alloc_scratch(struct ml_lib_model *m)
{
	size_t arena = ALIGN((size_t)m->graph->arena_bytes, 8);
	struct ml_lib_scratch __percpu *sc;
	int cpu, lvl;

	sc = alloc_percpu(struct ml_lib_scratch);
	if (!sc)
		return -ENOMEM;
	m->scratch = (void __percpu *)sc;
	/* Possible, not online, CPUs: a CPU brought up later needs no setup. */
	for_each_possible_cpu(cpu) {
		struct ml_lib_scratch *s = per_cpu_ptr(sc, cpu);

		s->mem = kvzalloc_node(arena * ML_LIB_CTX_LEVELS, GFP_KERNEL,
				       cpu_to_node(cpu));
		if (!s->mem) {
			ml_lib_free_scratch(m);
			return -ENOMEM;
		}
		for (lvl = 0; lvl < ML_LIB_CTX_LEVELS; lvl++)
			s->arena[lvl] = (u8 *)s->mem + lvl * arena;
	}
	return 0;
}

static struct ml_lib_model *ml_lib_find_locked(const char *name)
{
	struct ml_lib_model *m;

	lockdep_assert_held(&ml_lib_lock);
	list_for_each_entry(m, &ml_lib_models, list)
		if (!strcmp(m->name, name))
			return m;
	return NULL;
}

static bool ml_lib_name_ok(const char *name)
{
	size_t len;

	if (!name)
		return false;
	len = strnlen(name, ML_LIB_NAME_LEN);
	/* The name is also a debugfs directory: no '/' or "." / "..". */
	return len && len < ML_LIB_NAME_LEN && !strchr(name, '/') &&
	       strcmp(name, ".") && strcmp(name, "..");
}

static void ml_lib_debugfs_add(struct ml_lib_model *m);

/* Registers @m; with @get, also takes a reference for the caller. */
static int ml_lib_register(struct ml_lib_model *m, bool get)
{
	int ret = 0;

	if (!m || !ml_lib_name_ok(m->name) || (!m->graph && !m->proxy))
		return -EINVAL;
	/*
	 * Checked before any field of @m is touched: registering a model (or a
	 * name) that is already registered must not reset the live one's
	 * reference count or scratch arenas. All of it under the lock, so two
	 * racing registrations of one @m cannot both pass the check. The
	 * validation it covers is bounded by the work budget (milliseconds).
	 */
	mutex_lock(&ml_lib_lock);
	if (kref_read(&m->ref) || ml_lib_find_locked(m->name)) {
		ret = -EEXIST;
		goto out;
	}
	if (m->graph) {
		ret = ml_lib_graph_validate(m->graph);
		if (!ret)
			ret = ml_lib_alloc_scratch(m);
		if (ret)
			goto out;
	}
	/* only now: a failed registration leaves the count at zero */
	kref_init(&m->ref);
	if (get)
		kref_get(&m->ref);
	list_add_tail(&m->list, &ml_lib_models);
	ml_lib_debugfs_add(m);
out:
	mutex_unlock(&ml_lib_lock);
	return ret;
}

/**
 * ml_lib_model_register() - make a model available by name
 * @m: the model; @m->name and @m->graph (or @m->proxy) filled in, the
 *     private fields zero
 *
 * Validates @m->graph with ml_lib_graph_validate() and allocates one
 * scratch arena per context level on every possible CPU, so that
 * ml_lib_infer() on @m never allocates. The caller keeps ownership of @m
 * and its graph, which must stay valid until ml_lib_model_unregister()
 * returns.
 *
 * Context: process context; sleeps.
 * Return: 0; -EINVAL for a NULL model, a bad name or neither graph nor
 * proxy; the validator's errno for a graph it rejects; -EEXIST if a model
 * of that name is registered; -ENOMEM.
 */
int ml_lib_model_register(struct ml_lib_model *m)
{
	return ml_lib_register(m, false);
}
EXPORT_SYMBOL_GPL(ml_lib_model_register);

static void ml_lib_release_wake(struct irq_work *work)
{
	wake_up_all(&ml_lib_release_wq);
}

/* A final ml_lib_model_put() in NMI must not take the wait queue's lock. */
static DEFINE_IRQ_WORK(ml_lib_release_work, ml_lib_release_wake);

static void ml_lib_model_release(struct kref *ref)
{
	if (in_nmi())
		irq_work_queue(&ml_lib_release_work);
	else
		wake_up_all(&ml_lib_release_wq);
}

/**
 * ml_lib_model_unregister() - remove a model registered with
 * ml_lib_model_register()
 * @m: the model
 *
 * Removes @m from the registry, so that ml_lib_model_get() no longer finds
 * it, then sleeps until every reference taken by ml_lib_model_get() has
 * been dropped with ml_lib_model_put(), and frees the scratch arenas. The
 * owner must make sure none of its own callers is still inside
 * ml_lib_infer() on @m. Afterwards ml_lib_infer() on @m returns -ENOENT
 * and @m may be registered again or freed.
 *
 * Context: process context; sleeps. Must not be called while holding a
 * reference to @m.
 */
void ml_lib_model_unregister(struct ml_lib_model *m)
{
	struct dentry *dir;

	if (!m)
		return;
	mutex_lock(&ml_lib_lock);
	/* never registered (or already unregistered): nothing to undo */
	if (WARN_ON_ONCE(!kref_read(&m->ref))) {
		mutex_unlock(&ml_lib_lock);
		return;
	}
	list_del_init(&m->list);
	dir = m->debugfs;
	/* also tells a running infer write to stop */
	WRITE_ONCE(m->debugfs, NULL);
	mutex_unlock(&ml_lib_lock);
	/*
	 * Waits for running debugfs handlers, which use @m without a ref; not
	 * under ml_lib_lock, which a handler may be waiting for.
	 */
	debugfs_remove(dir);

	kref_put(&m->ref, ml_lib_model_release);
	wait_event(ml_lib_release_wq, !kref_read(&m->ref));
	ml_lib_free_scratch(m);
}
EXPORT_SYMBOL_GPL(ml_lib_model_unregister);

/**
 * ml_lib_model_get() - look a registered model up by name
 * @name: the model's name
 *
 * The reference also pins the module that registered the model
 * (&ml_lib_model.owner): removing that module fails (delete_module()
 * returns -EWOULDBLOCK) until the reference is dropped, instead of blocking
 * in ml_lib_model_unregister().
 * So a module must not keep a reference to a model it registered itself
 * (it could never be removed); it uses its own model directly.
 *
 * Context: process context; may sleep.
 * Return: the model with a reference the caller drops with
 * ml_lib_model_put(), or NULL if no model of that name is registered (or
 * its module is being removed).
 */
struct ml_lib_model *ml_lib_model_get(const char *name)
{
	struct ml_lib_model *m;

	if (!name)
		return NULL;
	mutex_lock(&ml_lib_lock);
	m = ml_lib_find_locked(name);
	if (m && !try_module_get(m->owner))
		m = NULL;
	if (m)
		kref_get(&m->ref);
	mutex_unlock(&ml_lib_lock);
	return m;
}
EXPORT_SYMBOL_GPL(ml_lib_model_get);

/**
 * ml_lib_model_put() - drop a reference taken by ml_lib_model_get()
 * @m: the model, or NULL
 *
 * Context: any context, NMI included (a final put there defers the
 * wake-up of ml_lib_model_unregister() to an irq_work).
 */
void ml_lib_model_put(struct ml_lib_model *m)
{
	struct module *owner;

	if (!m)
		return;
	/* @m may be freed once the reference is gone: read its owner first */
	owner = m->owner;
	kref_put(&m->ref, ml_lib_model_release);
	module_put(owner);
}
EXPORT_SYMBOL_GPL(ml_lib_model_put);

/* Pieces of the canonical blob into SHA-256; a model of many MiB yields. */
static void ml_lib_sha256_emit(void *ctx, const void *p, size_t n)
{
	sha256_update(ctx, p, n);
	cond_resched();
}

/**
 * ml_lib_model_sha256() - identify the model an engine model runs
 * @m: a registered model, or one the caller holds a reference to
 * @out: %ML_LIB_SHA256_LEN bytes for the digest
 *
 * Hashes the tables the engine runs, written as their canonical blob by
 * ml_lib_graph_write_blob(): for a model from mlexport the result is the
 * SHA-256 of the exported ``<name>.mlb`` (the manifest's blob_sha256),
 * whether the model came from the generated C tables or from that blob.
 * A caller may log it, or expose it, to show which model a kernel runs.
 *
 * Context: Process context; may sleep (yields between pieces). The time
 * is linear in the size of the model's tables.
 * Return: 0, or -EINVAL for a model without in-kernel tables (a proxy
 * model) or a NULL argument.
 */
int ml_lib_model_sha256(const struct ml_lib_model *m, u8 *out)
{
	struct sha256_state sha;

	static_assert(ML_LIB_SHA256_LEN == SHA256_DIGEST_SIZE);
	if (!m || !m->graph || !out)
		return -EINVAL;
	sha256_init(&sha);
	ml_lib_graph_write_blob(m->graph, ml_lib_sha256_emit, &sha);
	sha256_final(&sha, out);
	return 0;
}
EXPORT_SYMBOL_GPL(ml_lib_model_sha256);

static enum ml_lib_ctx ml_lib_ctx_level(void)
{
	if (in_nmi())
		return ML_LIB_CTX_NMI;
	if (in_hardirq())
		return ML_LIB_CTX_HARDIRQ;
	if (in_serving_softirq())
		return ML_LIB_CTX_SOFTIRQ;
	return ML_LIB_CTX_TASK;
}

/**
 * ml_lib_infer() - run one inference
 * @m: a registered model
 * @in: @n_in raw input features
 * @n_in: must equal the graph's n_in
 * @out: receives @n_out outputs
 * @n_out: must equal the graph's n_out
 *
 * For an in-kernel model this runs the integer engine on this CPU's arena
 * for the current context level with preemption disabled: no allocation,
 * no lock, no sleep, so it is safe in any context including NMI. A proxy
 * model is handed to the user-space proxy (CONFIG_ML_LIB_PROXY).
 *
 * Context: any context for an in-kernel model; see the proxy for others.
 * Return: an &enum ml_lib_source (>= 0) saying where the answer came from;
 * -EINVAL for NULL pointers or wrong lengths; -ENOENT for a model that is
 * not registered; another negative errno from the engine or the proxy.
 */
int ml_lib_infer(struct ml_lib_model *m, const s64 *in, u32 n_in,
		 s32 *out, u32 n_out)
{
	struct ml_lib_scratch *s;
	enum ml_lib_ctx lvl;
	int ret;

	if (!m || !in || !out)
		return -EINVAL;
	/* it answers -ENOENT itself once @m is unregistered, before detach */
	if (m->proxy)
		return ml_lib_proxy_infer(m, in, n_in, out, n_out);
	if (!m->graph || !m->scratch)
		return -ENOENT;
	if (n_in != m->graph->n_in || n_out != m->graph->n_out)
		return -EINVAL;

	preempt_disable();
	lvl = ml_lib_ctx_level();
	s = this_cpu_ptr(ml_lib_scratch_of(m));
	ret = ml_lib_run(m->graph, s->arena[lvl], in, n_in, out, n_out);
	s->calls[lvl]++;
	if (ret < 0)
		s->errors[lvl]++;
	preempt_enable();
	return ret < 0 ? ret : ML_LIB_SRC_ENGINE;
}
EXPORT_SYMBOL_GPL(ml_lib_infer);

/**
 * ml_lib_model_load_blob() - parse a blob and register it under its name
 * @blob: the blob (docs/blob-format.md)
 * @len: its length in bytes
 *
 * The blob is parsed with ml_lib_blob_parse(), which copies what it needs,
 * so @blob may be freed afterwards. The model belongs to ml_lib: remove it
 * with ml_lib_model_unload(), which refuses while references are held, so
 * drop the returned one with ml_lib_model_put() first.
 *
 * Context: process context; sleeps.
 * Return: the registered model with a reference the caller drops with
 * ml_lib_model_put(), or an ERR_PTR(): the parser's or the validator's
 * errno for a rejected blob, -EEXIST if a model of that name exists,
 * -ENOMEM.
 */
struct ml_lib_model *ml_lib_model_load_blob(const void *blob, size_t len)
{
	struct ml_lib_graph *g = NULL;
	struct ml_lib_model *m;
	int ret;

	if (!blob)
		return ERR_PTR(-EINVAL);
	ret = ml_lib_blob_parse(blob, len, &g);
	if (ret)
		return ERR_PTR(ret);
	m = kzalloc(sizeof(*m), GFP_KERNEL);
	if (!m) {
		ml_lib_graph_free(g);
		return ERR_PTR(-ENOMEM);
	}
	m->name = g->name;
	m->graph = g;
	m->blob_graph = g;
	ret = ml_lib_register(m, true);
	if (ret) {
		kfree(m);
		ml_lib_graph_free(g);
		return ERR_PTR(ret);
	}
	return m;
}
EXPORT_SYMBOL_GPL(ml_lib_model_load_blob);

/**
 * ml_lib_model_unload() - unregister and free a model loaded from a blob
 * @name: the model's name
 *
 * Only a model nobody holds a reference to is unloaded: one that is the
 * fallback of a proxy model, or that a caller got with ml_lib_model_get(),
 * stays registered.
 *
 * Context: process context; sleeps until running debugfs handlers of the
 * model are gone (see ml_lib_model_unregister()).
 * Return: 0; -ENOENT if no model of that name is registered; -EPERM if it
 * was registered by a module (which must unregister it itself); -EBUSY if
 * references to it are held.
 */
int ml_lib_model_unload(const char *name)
{
	struct ml_lib_model *m;
	int ret = 0;

	if (!name)
		return -ENOENT;
	/*
	 * Looked up, checked and unlinked under one hold of ml_lib_lock,
	 * without a reference of our own: of two concurrent unloads one
	 * unlinks and frees it, the other finds nothing (-ENOENT); each used
	 * to see the other's reference and both failed with -EBUSY.
	 */
	mutex_lock(&ml_lib_lock);
	m = ml_lib_find_locked(name);
	if (!m)
		ret = -ENOENT;
	else if (!m->blob_graph)
		ret = -EPERM;
	/*
	 * The registration's only. References are taken under ml_lib_lock,
	 * so once @m is unlinked no new one appears.
	 */
	else if (kref_read(&m->ref) > 1)
		ret = -EBUSY;
	else
		list_del_init(&m->list);
	mutex_unlock(&ml_lib_lock);
	if (ret)
		return ret;

	ml_lib_model_unregister(m);
	ml_lib_graph_free(m->blob_graph);
	kfree(m);
	return 0;
}
EXPORT_SYMBOL_GPL(ml_lib_model_unload);

/* debugfs test interface */

/*
 * Per-open-file state of the debugfs files: the infer file keeps the
 * outputs of the last write for reading (@pos), the load file gathers a
 * blob over several writes (@cap bytes allocated).
 */
struct ml_lib_dbg_file {
	struct mutex lock;	/* serialises users of one open file */
	u8 *buf;
	size_t len, cap;
	loff_t pos;
};

static int ml_lib_dbg_open(struct inode *inode, struct file *file)
{
	struct ml_lib_dbg_file *f;

	f = kzalloc(sizeof(*f), GFP_KERNEL);
	if (!f)
		return -ENOMEM;
	mutex_init(&f->lock);
	file->private_data = f;
	return nonseekable_open(inode, file);
}

static int ml_lib_dbg_release(struct inode *inode, struct file *file)
{
	struct ml_lib_dbg_file *f = file->private_data;

	kvfree(f->buf);
	mutex_destroy(&f->lock);
	kfree(f);
	return 0;
}

/* Runs each of the rows written and keeps the outputs for the next read. */
static ssize_t ml_lib_infer_write(struct file *file, const char __user *buf,
				  size_t count, loff_t *ppos)
{
	struct dentry *dentry = file->f_path.dentry;
	struct ml_lib_model *m = file_inode(file)->i_private;
	struct ml_lib_dbg_file *f = file->private_data;
	size_t row_bytes, rows, r, i;
	__le32 *result = NULL;
	u32 n_in, n_out;
	__le64 *raw;
	s64 *in = NULL;
	s32 *out = NULL;
	ssize_t ret;

	/*
	 * An _unsafe debugfs file: @m is alive only between debugfs_file_get()
	 * and debugfs_file_put() (unregistering waits for those), and no user
	 * copy happens in between, so unregistering never waits for user space.
	 */
	ret = debugfs_file_get(dentry);
	if (ret)
		return ret;
	n_in = m->graph->n_in;
	n_out = m->graph->n_out;
	debugfs_file_put(dentry);

	row_bytes = (size_t)n_in * sizeof(s64);
	if (!count || count % row_bytes)
		return -EINVAL;
	rows = count / row_bytes;
	/* a division, not rows * n_out, which may wrap where size_t is 32-bit */
	if (count > ML_LIB_MAX_INFER_IN ||
	    rows > ML_LIB_MAX_INFER_OUT / sizeof(*result) / n_out)
		return -E2BIG;

	raw = vmemdup_user(buf, count);
	if (IS_ERR(raw))
		return PTR_ERR(raw);
	in = kvmalloc_array(n_in, sizeof(*in), GFP_KERNEL);
	out = kvmalloc_array(n_out, sizeof(*out), GFP_KERNEL);
	/* Zeroed: nothing uninitialised ever reaches user space. */
	result = kvcalloc(rows * n_out, sizeof(*result), GFP_KERNEL);
	if (!in || !out || !result) {
		ret = -ENOMEM;
		goto out_free;
	}
	ret = debugfs_file_get(dentry);
	if (ret)
		goto out_free;
	for (r = 0; r < rows; r++) {
		/*
		 * Each row may cost the whole work budget (milliseconds), and
		 * one write may carry 2^17 rows: yield, stop when killed, and
		 * stop when the model is being unregistered (which waits).
		 */
		cond_resched();
		if (fatal_signal_pending(current)) {
			ret = -EINTR;
			break;
		}
		if (!READ_ONCE(m->debugfs)) {
			ret = -ENODEV;
			break;
		}
		for (i = 0; i < n_in; i++)
			in[i] = le64_to_cpu(raw[r * n_in + i]);
		ret = ml_lib_infer(m, in, n_in, out, n_out);
		if (ret < 0)
			break;
		for (i = 0; i < n_out; i++)
			result[r * n_out + i] = cpu_to_le32(out[i]);
	}
	debugfs_file_put(dentry);
	if (ret < 0)
		goto out_free;

	mutex_lock(&f->lock);
	kvfree(f->buf);
	f->buf = (u8 *)result;
	f->len = rows * n_out * sizeof(*result);
	result = NULL;
	f->pos = 0;
	mutex_unlock(&f->lock);
	ret = count;
out_free:
	kvfree(result);
	kvfree(out);
	kvfree(in);
	kvfree(raw);
	return ret;
}

static ssize_t ml_lib_infer_read(struct file *file, char __user *buf,
				 size_t count, loff_t *ppos)
{
	struct ml_lib_dbg_file *f = file->private_data;
	ssize_t ret;

	mutex_lock(&f->lock);
	/* Own position, not *ppos: every write restarts the result. */
	ret = simple_read_from_buffer(buf, count, &f->pos, f->buf,
				      f->len);
	mutex_unlock(&f->lock);
	return ret;
}

static const struct file_operations ml_lib_infer_fops = {
	.owner = THIS_MODULE,
	.open = ml_lib_dbg_open,
	.release = ml_lib_dbg_release,
	.read = ml_lib_infer_read,
	.write = ml_lib_infer_write,
};

static int ml_lib_stats_show(struct seq_file *sf, void *unused)
{
	struct ml_lib_model *m = sf->private;
	struct ml_lib_scratch __percpu *sc = ml_lib_scratch_of(m);
	u64 calls[ML_LIB_CTX_LEVELS] = {}, errors = 0, total = 0;
	u8 digest[ML_LIB_SHA256_LEN];
	int cpu, lvl;

	for_each_possible_cpu(cpu) {
		struct ml_lib_scratch *s = per_cpu_ptr(sc, cpu);

		for (lvl = 0; lvl < ML_LIB_CTX_LEVELS; lvl++) {
			/* Racy snapshot of counters other CPUs may bump. */
			calls[lvl] += READ_ONCE(s->calls[lvl]);
			errors += READ_ONCE(s->errors[lvl]);
		}
	}
	for (lvl = 0; lvl < ML_LIB_CTX_LEVELS; lvl++)
		total += calls[lvl];
	seq_printf(sf, "inferences: %llu\nerrors: %llu\n", total, errors);
	for (lvl = 0; lvl < ML_LIB_CTX_LEVELS; lvl++)
		seq_printf(sf, "%s: %llu\n", ml_lib_ctx_names[lvl], calls[lvl]);
	seq_printf(sf, "n_in: %u\nn_out: %u\narena_bytes: %u\nops: %u\nsource: %s\n",
		   m->graph->n_in, m->graph->n_out, m->graph->arena_bytes,
		   m->graph->n_ops, m->blob_graph ? "blob" : "module");
	/* equal to sha256sum of the blob mlexport wrote beside the C tables */
	if (!ml_lib_model_sha256(m, digest))
		seq_printf(sf, "sha256: %*phN\n", ML_LIB_SHA256_LEN, digest);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(ml_lib_stats);

/*
 * Called with ml_lib_lock held. The directory is removed by its dentry,
 * never by name: if it could not be created (a directory of that name is
 * still being removed), @m->debugfs holds an ERR_PTR and @m has none.
 */
static void ml_lib_debugfs_add(struct ml_lib_model *m)
{
	struct dentry *dir;

	/* Proxy models have their own interface: /dev/ml_lib. */
	if (!m->graph)
		return;
	dir = debugfs_create_dir(m->name, ml_lib_debugfs_models);
	debugfs_create_file_unsafe("infer", 0600, dir, m, &ml_lib_infer_fops);
	debugfs_create_file("stats", 0400, dir, m, &ml_lib_stats_fops);
	m->debugfs = dir;
}

/* Length the blob's header announces, or 0 when it cannot be trusted. */
static size_t ml_lib_blob_announced_len(const u8 *buf, size_t len)
{
	if (len < 16 || memcmp(buf, "MLLB", 4))
		return 0;
	return get_unaligned_le32(buf + 12);
}

/*
 * A blob may arrive in several writes (cat splits it): collect bytes until
 * the length its header announces, then parse and register. The write that
 * completes the blob returns the loader's errno.
 */
static ssize_t ml_lib_load_write(struct file *file, const char __user *ubuf,
				 size_t count, loff_t *ppos)
{
	struct ml_lib_dbg_file *f = file->private_data;
	struct ml_lib_model *m;
	size_t want;
	ssize_t ret;

	if (!count)
		return 0;
	mutex_lock(&f->lock);
	if (count > ML_LIB_MAX_BLOB - f->len) {
		ret = -E2BIG;
		goto out;
	}
	if (f->len + count > f->cap) {
		size_t cap = min_t(size_t, max(f->len + count, 2 * f->cap),
				   ML_LIB_MAX_BLOB);
		u8 *buf = kvmalloc(cap, GFP_KERNEL);

		if (!buf) {
			ret = -ENOMEM;
			goto out;
		}
		if (f->len)
			memcpy(buf, f->buf, f->len);
		kvfree(f->buf);
		f->buf = buf;
		f->cap = cap;
	}
	if (copy_from_user(f->buf + f->len, ubuf, count)) {
		ret = -EFAULT;
		goto out;
	}
	f->len += count;

	want = ml_lib_blob_announced_len(f->buf, f->len);
	if (want > f->len && want <= ML_LIB_MAX_BLOB) {
		ret = count;	/* wait for the rest */
		goto out;
	}
	m = ml_lib_model_load_blob(f->buf, f->len);
	f->len = 0;
	if (IS_ERR(m)) {
		ret = PTR_ERR(m);
		goto out;
	}
	ml_lib_model_put(m);
	ret = count;
out:
	mutex_unlock(&f->lock);
	return ret;
}

static const struct file_operations ml_lib_load_fops = {
	.owner = THIS_MODULE,
	.open = ml_lib_dbg_open,
	.release = ml_lib_dbg_release,
	.write = ml_lib_load_write,
};

static ssize_t ml_lib_unload_write(struct file *file, const char __user *ubuf,
				   size_t count, loff_t *ppos)
{
	char name[ML_LIB_NAME_LEN];
	int ret;

	if (!count || count >= sizeof(name))
		return -EINVAL;
	if (copy_from_user(name, ubuf, count))
		return -EFAULT;
	name[count] = '\0';
	strim(name);
	ret = ml_lib_model_unload(name);
	return ret ? ret : count;
}

static const struct file_operations ml_lib_unload_fops = {
	.owner = THIS_MODULE,
	.open = nonseekable_open,
	.write = ml_lib_unload_write,
};

static int __init ml_lib_init(void)
{
	int ret;

	/* Without debugfs these are ERR_PTRs and the API still works. */
	ml_lib_debugfs = debugfs_create_dir("ml_lib", NULL);
	ml_lib_debugfs_models = debugfs_create_dir("models", ml_lib_debugfs);
	debugfs_create_file("load", 0200, ml_lib_debugfs, NULL,
			    &ml_lib_load_fops);
	debugfs_create_file("unload", 0200, ml_lib_debugfs, NULL,
			    &ml_lib_unload_fops);

	ret = ml_lib_proxy_init();
	if (ret)
		debugfs_remove_recursive(ml_lib_debugfs);
	return ret;
}

static void __exit ml_lib_exit(void)
{
	struct ml_lib_model *m;

	ml_lib_proxy_exit();
	/* Modules that registered models hold a reference on this one. */
	for (;;) {
		mutex_lock(&ml_lib_lock);
		m = list_first_entry_or_null(&ml_lib_models,
					     struct ml_lib_model, list);
		mutex_unlock(&ml_lib_lock);
		if (!m)
			break;
		if (WARN_ON(ml_lib_model_unload(m->name)))
			break;
	}
	irq_work_sync(&ml_lib_release_work);
	debugfs_remove_recursive(ml_lib_debugfs);
}

module_init(ml_lib_init);
module_exit(ml_lib_exit);

MODULE_DESCRIPTION("Integer-only inference for small learned models");
MODULE_LICENSE("GPL");
