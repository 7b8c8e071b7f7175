// SPDX-License-Identifier: GPL-2.0
/*
 * anomaly_hook - example consumer of the ml_lib model "anomaly": an
 * autoencoder over eight per-second scheduler and syscall counters whose
 * output is its L1 reconstruction error; a second whose error is above a
 * threshold is flagged as anomalous.
 *
 * SIMULATED HOOK: this module reads no real counters. A watchdog would
 * call anomaly_tick() once a second (from a delayed work item) with the
 * deltas of context switches, syscalls, faults, forks, interrupts,
 * runnable tasks and iowait. Here, at load time, it replays a recorded
 * stretch of the simulated counters of models/anomaly/simulate.py
 * (anomaly_trace.h) and prints every second's score and flag next to the
 * score ml_lib's Python reference computed for the same second.
 */
#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/ml_lib.h>
#include "anomaly.h"

struct anomaly_second {
	s64 counters[ANOMALY_N_IN];
	u8 kind;		/* 0 normal, else the injected anomaly */
	s32 expect_score;	/* the Python reference's output */
};

#include "anomaly_trace.h"

/**
 * anomaly_tick() - score one second of counters
 * @m: the "anomaly" model, an in-kernel one (see anomaly_hook_init())
 * @counters: this second's counter deltas, in the model's feature order
 * @score: filled with the L1 reconstruction error (fixed point)
 *
 * Context: any; never sleeps (an in-kernel model).
 * Return: 1 if the second is anomalous, 0 if not, or a negative errno
 * from ml_lib_infer() (the watchdog then flags nothing).
 */
static int anomaly_tick(struct ml_lib_model *m, const s64 *counters, s32 *score)
{
	struct anomaly_output out;
	int ret;

	ret = ml_lib_infer(m, counters, ANOMALY_N_IN, (s32 *)&out, ANOMALY_N_OUT);
	if (ret < 0)
		return ret;
	*score = out.output;
	return out.output > ANOMALY_THRESHOLD;
}

/*
 * Looked up once, in process context (ml_lib_model_get() sleeps), and held
 * until the module is removed; the watchdog only uses this pointer.
 */
static struct ml_lib_model *anomaly_hook_model;

static int __init anomaly_hook_init(void)
{
	u32 i, flagged = 0, anomalous = 0, correct = 0, match = 0;
	const struct anomaly_second *s;
	struct ml_lib_model *m;
	s32 score;
	int ret;

	m = ml_lib_model_get("anomaly");
	if (!m) {
		pr_err("anomaly_hook: model \"anomaly\" is not registered (load anomaly_ml.ko)\n");
		return -ENODEV;
	}
	/* a proxy model may sleep in ml_lib_infer(): refuse it */
	if (!m->graph || m->proxy) {
		pr_err("anomaly_hook: model \"anomaly\" is proxy-served; this hook needs an in-kernel model\n");
		ml_lib_model_put(m);
		return -EOPNOTSUPP;
	}
	for (i = 0; i < ANOMALY_TRACE_SECONDS; i++) {
		s = &anomaly_trace[i];
		ret = anomaly_tick(m, s->counters, &score);
		if (ret < 0) {
			pr_err("anomaly_hook: ml_lib_infer failed: %d\n", ret);
			ml_lib_model_put(m);
			return ret;
		}
		flagged += ret;
		anomalous += s->kind != 0;
		correct += ret == (s->kind != 0);
		match += score == s->expect_score;
		pr_info("anomaly_hook: second %u ctx=%lld forks=%lld runnable=%lld score=%d python=%d flag=%d truth=%s\n",
			i, s->counters[0], s->counters[4], s->counters[6], score,
			s->expect_score, ret, anomaly_kind_name[s->kind]);
	}
	pr_info("anomaly_hook: %u seconds replayed: %u flagged, %u anomalous, %u flags right, %u/%u scores equal to the Python reference\n",
		ANOMALY_TRACE_SECONDS, flagged, anomalous, correct, match,
		ANOMALY_TRACE_SECONDS);
	anomaly_hook_model = m;
	return 0;
}

static void __exit anomaly_hook_exit(void)
{
	ml_lib_model_put(anomaly_hook_model);
}

module_init(anomaly_hook_init);
module_exit(anomaly_hook_exit);

MODULE_DESCRIPTION("ml_lib example: counter autoencoder anomaly flag (simulated hook)");
MODULE_LICENSE("GPL");
