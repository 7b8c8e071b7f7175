/* SPDX-License-Identifier: GPL-2.0 */
/*
 * ml_lib: integer-only inference for small learned models in the kernel.
 *
 * The arithmetic every function here implements is specified in
 * docs/arithmetic.md; the binary model format in docs/blob-format.md.
 * The same code builds in the kernel and, through lib/ml/ml_lib_compat.h,
 * as a user-space library (the way lib/xz does).
 */
#ifndef _LINUX_ML_LIB_H
#define _LINUX_ML_LIB_H

#ifdef __KERNEL__
#include <linux/types.h>
#include <linux/list.h>
#include <linux/kref.h>
#include <linux/ktime.h>
#else
#include "ml_lib_compat.h"
#endif

/* Element types of arena tensors. */
enum ml_lib_dtype {
	ML_LIB_S8 = 1,
	ML_LIB_S16 = 2,
	ML_LIB_S32 = 3,
};

/* Operation codes; the numbers are part of the blob format. */
enum ml_lib_opcode {
	ML_OP_INPUT = 1,
	ML_OP_FC = 2,
	ML_OP_CONV1D = 3,
	ML_OP_MAXPOOL1D = 4,
	ML_OP_AVGPOOL1D = 5,
	ML_OP_CLAMP = 6,
	ML_OP_LEAKY_RELU = 7,
	ML_OP_LUT = 8,
	ML_OP_ADD = 9,
	ML_OP_RESCALE = 10,
	ML_OP_CONCAT = 11,
	ML_OP_RESHAPE = 12,
	ML_OP_SOFTMAX = 13,
	ML_OP_ARGMAX = 14,
	ML_OP_OUTPUT = 15,
	ML_OP_MAX_CODE = ML_OP_OUTPUT,
};

/* Tensor index meaning "no tensor" (e.g. the input of ML_OP_INPUT). */
#define ML_LIB_NO_TENSOR 0xffff

/* Limits checked by the validator. */
#define ML_LIB_MAX_ARENA	(1024U * 1024U)	/* 1 MiB */
#define ML_LIB_MAX_TENSORS	1024
#define ML_LIB_MAX_OPS		1024
#define ML_LIB_MAX_IO		65536
#define ML_LIB_MAX_DIM		65535
#define ML_LIB_NAME_LEN		32
/* Bytes of the digest ml_lib_model_sha256() writes. */
#define ML_LIB_SHA256_LEN	32
/*
 * Longest blob ml_lib_blob_parse() takes. A graph within the work budget
 * needs at most about 22 MiB: 10/9 byte of arrays per work unit (FC with
 * n_in = 1) plus 1024 softmax tables of 4 KiB.
 */
#define ML_LIB_MAX_BLOB_LEN	(64U * 1024U * 1024U)

/**
 * struct ml_lib_tensor - one activation buffer in the scratch arena
 * @offset: byte offset in the arena, aligned to the element size
 * @len: number of elements
 * @zero_point: quantization zero point (0 for S16 and S32)
 * @dtype: an &enum ml_lib_dtype
 */
struct ml_lib_tensor {
	u32 offset;
	u32 len;
	s32 zero_point;
	u8 dtype;
};

/*
 * Per-op parameters. Field meanings and the formulas that use them are in
 * docs/arithmetic.md, one section per op; "mult"/"shift" are a requantization
 * multiplier M in [0, 2^31 - 1] and a right shift t in [1, 62] (OUTPUT mode 1
 * ignores them).
 */
struct ml_lib_input_params {
	u32 in_off, n;
	const s64 *off;
	const u8 *pre;
	const s32 *mult;
	const u8 *shift;
};

struct ml_lib_fc_params {
	u32 n_in, n_out;
	s32 lo, hi;
	const s8 *w;		/* row blocks: docs/blob-format.md, ops.h */
	const s32 *bias;	/* [n_out] */
	const s32 *mult;	/* [n_out] */
	const u8 *shift;	/* [n_out] */
};

/*
 * CONV1D dimensions are u16 (every dimension is at most ML_LIB_MAX_DIM), so
 * that this, the largest member, keeps struct ml_lib_op at 64 bytes.
 */
struct ml_lib_conv1d_params {
	u16 c_in, l_in, c_out, l_out;
	u16 k, stride, pad, dil;
	s32 lo, hi;
	const s8 *w;		/* [c_out][c_in][k] */
	const s32 *bias;
	const s32 *mult;
	const u8 *shift;
};

struct ml_lib_pool1d_params {
	u32 c, l_in, l_out, k, stride;
	s32 mult, shift, lo, hi;	/* avgpool only */
};

struct ml_lib_eltwise_params {
	u32 n;
	s32 lo, hi;
	s32 mult, shift;		/* rescale; leaky >= 0 side; add: x side, shared shift */
	s32 mult_b, shift_b;		/* add: mult_b for b; leaky < 0 side */
	const s16 *table;		/* lut: 256 (S8 in) or 513 (S16 in) */
};

struct ml_lib_concat_params {
	u32 outer, a_inner, b_inner;
};

struct ml_lib_softmax_params {
	u32 outer, n, shift, bits, table_len;
	const s32 *table;
};

struct ml_lib_output_params {
	u32 out_off, n, mode;	/* mode: 0 dequantize, 1 copy */
	s32 mult, shift;
};

/**
 * struct ml_lib_op - one step of a model
 * @code: an &enum ml_lib_opcode
 * @in: input tensor indices (%ML_LIB_NO_TENSOR when unused)
 * @out: output tensor index (%ML_LIB_NO_TENSOR for ML_OP_OUTPUT)
 * @u: parameters, by @code
 */
struct ml_lib_op {
	u16 code;
	u16 in[2];
	u16 out;
	union {
		struct ml_lib_input_params input;
		struct ml_lib_fc_params fc;
		struct ml_lib_conv1d_params conv;
		struct ml_lib_pool1d_params pool;
		struct ml_lib_eltwise_params elt;
		struct ml_lib_concat_params concat;
		struct ml_lib_softmax_params softmax;
		struct ml_lib_output_params output;
	} u;
};

/**
 * struct ml_lib_graph - the constant tables of one model
 * @name: model name (NUL-terminated, at most %ML_LIB_NAME_LEN - 1 chars)
 * @n_tensors: number of entries in @tensors
 * @n_ops: number of entries in @ops
 * @n_in: number of raw s64 input features the caller passes
 * @n_out: number of s32 output values the caller receives
 * @arena_bytes: scratch bytes one inference needs
 * @tensors: tensor table
 * @ops: op list, executed in order
 *
 * Generated C (mlexport --target kernel) defines one of these as const
 * data; ml_lib_blob_parse() builds one from a binary blob. Either way it
 * must pass ml_lib_graph_validate() before ml_lib_run() may see it.
 */
struct ml_lib_graph {
	const char *name;
	u32 n_tensors, n_ops, n_in, n_out, arena_bytes;
	const struct ml_lib_tensor *tensors;
	const struct ml_lib_op *ops;
};

int ml_lib_graph_validate(const struct ml_lib_graph *g);
int ml_lib_run(const struct ml_lib_graph *g, void *arena, const s64 *in,
	       u32 n_in, s32 *out, u32 n_out);
int ml_lib_blob_parse(const void *blob, size_t len, struct ml_lib_graph **out);
void ml_lib_graph_free(struct ml_lib_graph *g);
size_t ml_lib_graph_write_blob(const struct ml_lib_graph *g,
			       void (*emit)(void *ctx, const void *p, size_t n), void *ctx);

#ifdef __KERNEL__
struct dentry;
struct ml_lib_proxy;
struct module;

/* Where an answer from ml_lib_infer() came from (see ml_lib_result). */
enum ml_lib_source {
	ML_LIB_SRC_ENGINE = 0,		/* the in-kernel integer engine */
	ML_LIB_SRC_PROXY = 1,		/* the user-space daemon */
	ML_LIB_SRC_FALLBACK = 2,	/* the model's fallback */
};

/**
 * struct ml_lib_model - a model registered with ml_lib
 * @name: unique name callers look the model up by
 * @graph: integer tables run by the in-kernel engine; NULL for a model
 *         served only by the user-space proxy
 * @proxy: proxy state (CONFIG_ML_LIB_PROXY), NULL for in-kernel models
 * @owner: the module holding @name and @graph (THIS_MODULE), or NULL when
 *         they are built in; ml_lib_model_get() pins it, so the module
 *         cannot be removed while a reference is held
 * @list: private, registry link
 * @ref: private, lookup references
 * @scratch: private, per-CPU arenas, one per context level
 * @blob_graph: private, set when the graph was parsed from a blob
 * @debugfs: private, the model's debugfs directory
 *
 * A module that owns a model fills @name and @graph (usually from the
 * code mlexport generated) and calls ml_lib_model_register().
 */
struct ml_lib_model {
	const char *name;
	const struct ml_lib_graph *graph;
	struct ml_lib_proxy *proxy;
	struct module *owner;
	struct list_head list;
	struct kref ref;
	void __percpu *scratch;
	struct ml_lib_graph *blob_graph;
	struct dentry *debugfs;
};

int ml_lib_model_register(struct ml_lib_model *m);
void ml_lib_model_unregister(struct ml_lib_model *m);
struct ml_lib_model *ml_lib_model_get(const char *name);
void ml_lib_model_put(struct ml_lib_model *m);
struct ml_lib_model *ml_lib_model_load_blob(const void *blob, size_t len);
int ml_lib_model_unload(const char *name);
int ml_lib_model_sha256(const struct ml_lib_model *m, u8 *out);
/*
 * ml_lib_infer() returns the &enum ml_lib_source of the answer (>= 0) or a
 * negative errno. For an in-kernel model it never sleeps and is safe in any
 * context, NMI included. For a proxy model it waits for the daemon
 * (bounded by the model's timeout) only where sleeping is provably safe:
 * CONFIG_PREEMPT_COUNT, task context, preemptible() (no spinlock, no
 * preempt or bh disable, interrupts on) and outside any RCU read-side
 * critical section (rcu_preempt_depth() == 0; with PREEMPT_RCU
 * rcu_read_lock() does not raise preempt_count(), on PREEMPT_RT neither do
 * spin_lock() and local_bh_disable()). Anywhere else it never waits: the
 * mode still applies, and a request that would have gone to the daemon is
 * answered by the fallback at once (counted as no_wait). A signal, or a
 * freeze that comes without a PM notifier (for a freezable kernel thread
 * too), ends a wait, or prevents one, with the fallback's answer (counted
 * as interrupted). A system sleep (suspend, hibernation) does the same
 * from its PM notifier, before any task is frozen, for every waiting
 * request, and answers new ones at once until the resume (counted as
 * sleeping). Without a fallback these cases return -EWOULDBLOCK, -EINTR
 * and -EHOSTDOWN. In NMI it returns -EBUSY; for a proxy model that is not
 * registered, -ENOENT.
 */
int ml_lib_infer(struct ml_lib_model *m, const s64 *in, u32 n_in,
		 s32 *out, u32 n_out);

/* user-space proxy (CONFIG_ML_LIB_PROXY); see docs/proxy.md */

/* How a proxy model's answers are used, after the RFC. */
enum ml_lib_mode {
	ML_LIB_MODE_EMERGENCY = 0,	/* never ask the model: always fallback */
	ML_LIB_MODE_LEARNING = 1,	/* fallback answers; inputs feed the dataset */
	ML_LIB_MODE_COLLABORATION = 2,	/* the model answers a share of requests */
	ML_LIB_MODE_RECOMMENDATION = 3,	/* the model answers every request */
};

/**
 * struct ml_lib_proxy_config - how a proxy model is served
 * @n_in: raw s64 input features per request, 1..%ML_LIB_PROXY_MAX_IN
 * @n_out: s32 outputs per answer, 1..%ML_LIB_PROXY_MAX_OUT
 * @timeout_us: longest wait for the daemon, in microseconds (1..60,000,000)
 * @mode: an &enum ml_lib_mode
 * @collab_percent: share of requests sent to the daemon in COLLABORATION
 *                  (0..100)
 * @fallback: a registered in-kernel model (graph run by the engine) with
 *            the same @n_in and @n_out that answers when the daemon cannot;
 *            or NULL. The proxy holds a reference to it until detached
 * @fallback_out: the caller's default answer (@n_out values) used when
 *                @fallback is NULL; with both NULL, failures return an errno
 * @dataset_records: capacity of the dataset ring (0: no dataset; at most
 *                   65,536)
 * @dataset_features: features per dataset record (1..%ML_LIB_PROXY_MAX_IN
 *                    with a ring); the ring (@dataset_records *
 *                    @dataset_features * 8 bytes) is at most 64 MiB
 */
struct ml_lib_proxy_config {
	u32 n_in, n_out;
	u32 timeout_us;
	u32 mode;
	u32 collab_percent;
	struct ml_lib_model *fallback;
	const s32 *fallback_out;
	u32 dataset_records, dataset_features;
};

/**
 * struct ml_lib_request - an asynchronous inference, memory owned by the caller
 * @in: @n_in raw input features; must stay valid until @done runs
 * @n_in: must equal the model's input count
 * @out: @n_out outputs, written before @done runs
 * @n_out: must equal the model's output count
 * @done: called exactly once with @status set, possibly in atomic context
 *        (softirq, or the submitter's own context with whatever locks it
 *        holds when answered at once); must not sleep
 * @priv: for the caller
 * @status: an &enum ml_lib_source (>= 0) or a negative errno
 * @reason: why the fallback answered: 0, -ETIMEDOUT (daemon slow),
 *          -EPIPE (daemon died or closed the device), -ENOTCONN (no daemon),
 *          -ESHUTDOWN (model detached), -ECANCELED (mode), -EHOSTDOWN (system
 *          sleep under way); for ml_lib_infer() also -EWOULDBLOCK (may not
 *          wait there) and -EINTR (signal or freezer)
 * @node: private
 * @tnode: private
 * @hnode: private
 * @id: private
 * @deadline: private
 * @start: private
 * @m: private
 */
struct ml_lib_request {
	const s64 *in;
	u32 n_in;
	s32 *out;
	u32 n_out;
	void (*done)(struct ml_lib_request *req);
	void *priv;
	int status;
	int reason;
	struct list_head node, tnode;
	struct hlist_node hnode;
	u64 id;
	ktime_t deadline, start;
	struct ml_lib_model *m;
};

int ml_lib_proxy_attach(struct ml_lib_model *m,
			const struct ml_lib_proxy_config *cfg);
void ml_lib_proxy_detach(struct ml_lib_model *m);
int ml_lib_proxy_set_mode(struct ml_lib_model *m, u32 mode);
int ml_lib_infer_async(struct ml_lib_model *m, struct ml_lib_request *req);
int ml_lib_dataset_publish(struct ml_lib_model *m, const s64 *feat, u32 n);
#endif /* __KERNEL__ */

#endif /* _LINUX_ML_LIB_H */
