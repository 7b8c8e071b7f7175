/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * ml_lib user-space proxy ABI: the protocol spoken over /dev/ml_lib between
 * the kernel and the daemon (mlproxyd) that serves models too large for the
 * in-kernel engine. See docs/proxy.md.
 *
 * Every record is a fixed header followed by its payload; every size is a
 * multiple of 8 and every field is naturally aligned, so the layout has no
 * holes and is the same on every 64-bit and 32-bit ABI. Version changes
 * whenever a layout or a meaning changes.
 */
#ifndef _UAPI_LINUX_ML_LIB_H
#define _UAPI_LINUX_ML_LIB_H

#include <linux/types.h>
#include <linux/ioctl.h>

#define ML_LIB_PROXY_VERSION	1
#define ML_LIB_PROXY_NAME_LEN	32
/* Largest input/output vector one request may carry. */
#define ML_LIB_PROXY_MAX_IN	4096
#define ML_LIB_PROXY_MAX_OUT	4096

/**
 * struct ml_lib_proxy_req - one inference request, kernel to daemon
 * @version: %ML_LIB_PROXY_VERSION
 * @size: bytes of this record: sizeof(header) + 8 * @n_in
 * @id: request id, unique while the device is loaded; echo it back
 * @model_id: model id returned by %ML_LIB_IOC_REGISTER
 * @n_in: number of raw input features in @in
 * @in: the raw s64 features
 *
 * read() returns as many whole records as fit in the buffer, back to back.
 */
struct ml_lib_proxy_req {
	__u32 version;
	__u32 size;
	__u64 id;
	__u32 model_id;
	__u32 n_in;
	__s64 in[];
};

/**
 * struct ml_lib_proxy_resp - one answer, daemon to kernel
 * @version: %ML_LIB_PROXY_VERSION
 * @size: bytes of this record: sizeof(header) + 4 * @n_out rounded up to 8
 * @id: the request id being answered
 * @model_id: the model id of that request
 * @n_out: number of outputs; must equal the model's output count
 * @out: the s32 outputs (fixed point, as the model declares); zero padding
 *
 * write() takes one or more records back to back. Each is checked (version,
 * exact size, known pending id, matching model, exact n_out); the first bad
 * one ends the write: -EINVAL if it is the first record, otherwise the byte
 * count of the good records before it. A bad record changes nothing.
 */
struct ml_lib_proxy_resp {
	__u32 version;
	__u32 size;
	__u64 id;
	__u32 model_id;
	__u32 n_out;
	__s32 out[];
};

/**
 * struct ml_lib_proxy_register - the daemon announces a model it serves
 * @version: %ML_LIB_PROXY_VERSION
 * @n_in: input count the daemon expects; must match the kernel's model
 * @n_out: output count the daemon produces; must match too
 * @flags: must be 0
 * @name: model name, NUL-terminated
 *
 * ioctl(fd, ML_LIB_IOC_REGISTER, &reg) returns the model id (>= 0), or -1
 * with errno ENOENT (no such proxy model in the kernel), EINVAL (counts or
 * version differ), EBUSY (another open file serves it).
 */
struct ml_lib_proxy_register {
	__u32 version;
	__u32 n_in;
	__u32 n_out;
	__u32 flags;
	char name[ML_LIB_PROXY_NAME_LEN];
};

/**
 * struct ml_lib_proxy_record - one dataset record as the daemon reads it
 * @seq: position in the model's stream, from 0; a gap means dropped records
 * @n: number of features in @feat
 * @pad: zero
 * @feat: the features as published
 */
struct ml_lib_proxy_record {
	__u64 seq;
	__u32 n;
	__u32 pad;
	__s64 feat[];
};

/**
 * struct ml_lib_proxy_dataset_read - drain a model's dataset ring
 * @version: %ML_LIB_PROXY_VERSION
 * @model_id: model id from %ML_LIB_IOC_REGISTER
 * @buf: user pointer to a buffer for &struct ml_lib_proxy_record items
 * @buf_len: bytes available at @buf; at least one record (-EINVAL otherwise)
 * @n_records: out: whole records written to @buf, oldest first
 * @record_size: out: bytes per record
 * @dropped: out: records dropped so far because the ring was full
 *
 * Never blocks; returns 0 with @n_records = 0 when the ring is empty.
 */
struct ml_lib_proxy_dataset_read {
	__u32 version;
	__u32 model_id;
	__u64 buf;
	__u64 buf_len;
	__u32 n_records;
	__u32 record_size;
	__u64 dropped;
};

/*
 * 0xbd: free in Documentation/userspace-api/ioctl/ioctl-number.rst from 6.1
 * to linux-next (0xb7, used before, belongs to nsfs and remoteproc).
 */
#define ML_LIB_IOC_MAGIC	0xbd
#define ML_LIB_IOC_REGISTER	_IOW(ML_LIB_IOC_MAGIC, 1, struct ml_lib_proxy_register)
#define ML_LIB_IOC_DATASET_READ	_IOWR(ML_LIB_IOC_MAGIC, 2, struct ml_lib_proxy_dataset_read)

#endif /* _UAPI_LINUX_ML_LIB_H */
