// SPDX-License-Identifier: GPL-2.0
/*
 * ml_lib engine: runs a validated graph, op by op, in the caller's arena.
 *
 * No allocation, no locks, no mutable global state: every byte written is
 * in @arena or @out, so any number of CPUs may run the same graph at once,
 * each with its own arena, in any context (including hard IRQ).
 */
#ifdef __KERNEL__
#include <linux/errno.h>
#include <linux/export.h>
#endif
#include "ops.h"

/**
 * ml_lib_run() - run one inference of a graph
 * @g: graph accepted by ml_lib_graph_validate()
 * @arena: scratch memory of at least @g->arena_bytes bytes, 8-byte aligned,
 *         owned by the caller for the duration of the call
 * @in: raw input features, @n_in of them
 * @n_in: must equal @g->n_in
 * @out: output vector, @n_out entries, all written on success
 * @n_out: must equal @g->n_out
 *
 * Only the cheap things are re-checked here (NULL pointers and vector
 * lengths); everything else is the validator's job, so never pass a graph
 * that did not pass ml_lib_graph_validate().
 *
 * Context: Any context. Does not sleep, allocate or take locks.
 * Return: 0, or -EINVAL on a NULL pointer, a misaligned @arena or a length
 * mismatch; -EOPNOTSUPP on an unknown op code, which only a graph that
 * skipped validation can hold.
 */
int ml_lib_run(const struct ml_lib_graph *g, void *arena, const s64 *in,
	       u32 n_in, s32 *out, u32 n_out)
{
	const struct ml_lib_tensor *t;
	const struct ml_lib_op *op, *end;
	u8 *a = arena;

	if (!g || !arena || !in || !out || !g->ops || !g->tensors)
		return -EINVAL;
	/* tensor offsets are aligned relative to the arena's start */
	if ((uintptr_t)arena % 8)
		return -EINVAL;
	if (n_in != g->n_in || n_out != g->n_out)
		return -EINVAL;

	t = g->tensors;
	end = g->ops + g->n_ops;
	/* A switch, not a function table: direct calls, no retpolines. */
	for (op = g->ops; op < end; op++) {
		switch (op->code) {
		case ML_OP_INPUT:
			ml_lib_op_input(op, t, a, in);
			break;
		case ML_OP_FC:
			ml_lib_op_fc(op, t, a);
			break;
		case ML_OP_CONV1D:
			ml_lib_op_conv1d(op, t, a);
			break;
		case ML_OP_MAXPOOL1D:
			ml_lib_op_maxpool1d(op, t, a);
			break;
		case ML_OP_AVGPOOL1D:
			ml_lib_op_avgpool1d(op, t, a);
			break;
		case ML_OP_CLAMP:
			ml_lib_op_clamp(op, t, a);
			break;
		case ML_OP_LEAKY_RELU:
			ml_lib_op_leaky_relu(op, t, a);
			break;
		case ML_OP_LUT:
			ml_lib_op_lut(op, t, a);
			break;
		case ML_OP_ADD:
			ml_lib_op_add(op, t, a);
			break;
		case ML_OP_RESCALE:
			ml_lib_op_rescale(op, t, a);
			break;
		case ML_OP_CONCAT:
			ml_lib_op_concat(op, t, a);
			break;
		case ML_OP_RESHAPE:
			ml_lib_op_reshape(op, t, a);
			break;
		case ML_OP_SOFTMAX:
			ml_lib_op_softmax(op, t, a);
			break;
		case ML_OP_ARGMAX:
			ml_lib_op_argmax(op, t, a);
			break;
		case ML_OP_OUTPUT:
			ml_lib_op_output(op, t, a, out);
			break;
		default:
			return -EOPNOTSUPP;
		}
	}
	return 0;
}
EXPORT_SYMBOL_GPL(ml_lib_run);
