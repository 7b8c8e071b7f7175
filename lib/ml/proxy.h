/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Internal interface between the model registry (model.c) and the
 * user-space proxy (proxy.c, CONFIG_ML_LIB_PROXY).
 */
#ifndef _ML_LIB_PROXY_H
#define _ML_LIB_PROXY_H

#include <linux/ml_lib.h>

#if IS_ENABLED(CONFIG_ML_LIB_PROXY)
int ml_lib_proxy_infer(struct ml_lib_model *m, const s64 *in, u32 n_in,
		       s32 *out, u32 n_out);
int ml_lib_proxy_init(void);
void ml_lib_proxy_exit(void);
#else
static inline int ml_lib_proxy_infer(struct ml_lib_model *m, const s64 *in,
				     u32 n_in, s32 *out, u32 n_out)
{
	return -EOPNOTSUPP;
}

static inline int ml_lib_proxy_init(void)
{
	return 0;
}

static inline void ml_lib_proxy_exit(void)
{
}
#endif

#endif /* _ML_LIB_PROXY_H */
