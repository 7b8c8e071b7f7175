/* SPDX-License-Identifier: GPL-2.0 */
/*
 * User-space configuration for building lib/ml outside the kernel, the way
 * lib/xz uses xz_config.h. Never part of the kernel build.
 *
 * Two modes:
 * - hosted (default): types and allocation from libc, for libml_lib.so,
 *   the sanitizer build, the fuzzer and the benchmarks;
 * - -DML_LIB_FREESTANDING: no libc header at all, for the kernel-like
 *   compile (-ffreestanding -nostdinc -mgeneral-regs-only) whose only job
 *   is to fail on any floating-point use. It is compiled, never linked.
 */
#ifndef _ML_LIB_COMPAT_H
#define _ML_LIB_COMPAT_H

#ifdef __KERNEL__
#error "ml_lib_compat.h is for user-space builds only"
#endif

/*
 * <stddef.h>, <stdint.h> and <stdbool.h> come with the compiler, also under
 * -ffreestanding (mk/core.mk adds the compiler's own include folder after
 * -nostdinc); the rest of libc only exists in the hosted build.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#ifdef ML_LIB_FREESTANDING
void *malloc(size_t size);
void free(void *p);
void *memcpy(void *dst, const void *src, size_t n);
#else
#include <stdlib.h>
#include <string.h>
#endif

/* Kernel type names; macros rather than typedefs, like the kernel's own. */
#define s8	int8_t
#define s16	int16_t
#define s32	int32_t
#define s64	int64_t
#define u8	uint8_t
#define u16	uint16_t
#define u32	uint32_t
#define u64	uint64_t

/* Linux errno values: the blob format promises the same numbers. */
#define E2BIG		7
#define ENOEXEC		8
#define ENOMEM		12
#define EINVAL		22
#define EDOM		33
#define ERANGE		34
#define EMSGSIZE	90
#define EPROTONOSUPPORT	93
#define EOPNOTSUPP	95
#define EOVERFLOW	75

/* Nothing to export from a shared object built with a version script. */
#define ML_LIB_NO_EXPORT(sym)
#define EXPORT_SYMBOL_GPL	ML_LIB_NO_EXPORT
#define likely(x)	__builtin_expect(!!(x), 1)
#define unlikely(x)	__builtin_expect(!!(x), 0)
#define U64_MAX		UINT64_MAX
#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))
/* what include/linux/compiler_attributes.h gives the kernel build */
#define ML_LIB_ATTRIBUTE(a)	__attribute__((a))
#define __aligned(x)		ML_LIB_ATTRIBUTE(__aligned__(x))
#define check_add_overflow(a, b, d)	__builtin_add_overflow(a, b, d)
#define check_mul_overflow(a, b, d)	__builtin_mul_overflow(a, b, d)

/*
 * <linux/math64.h>: a 32-bit kernel has no libgcc for a 64-bit division.
 * The i386 gate (make core-m32) fails on any libgcc call, so this twin
 * must not make one either: long division, one bit at a time.
 */
static inline u64 div_u64(u64 dividend, u32 divisor)
{
#if __SIZEOF_LONG__ == 8
	return dividend / divisor;
#else
	u64 q = 0, rem = 0;
	int i;

	for (i = 63; i >= 0; i--) {
		rem = rem << 1 | (dividend >> i & 1);
		if (rem >= divisor) {
			rem -= divisor;
			q |= 1ULL << i;
		}
	}
	return q;
#endif
}

static inline u16 get_unaligned_le16(const void *p)
{
	const u8 *b = p;

	return (u16)(b[0] | b[1] << 8);
}

static inline u32 get_unaligned_le32(const void *p)
{
	const u8 *b = p;

	return (u32)b[0] | (u32)b[1] << 8 | (u32)b[2] << 16 | (u32)b[3] << 24;
}

static inline u64 get_unaligned_le64(const void *p)
{
	const u8 *b = p;

	return (u64)get_unaligned_le32(b) | (u64)get_unaligned_le32(b + 4) << 32;
}

/* The blob loader's one allocation; GFP flags have no meaning here. */
#define GFP_KERNEL	0
static inline void *kvmalloc(size_t size, int flags)
{
	(void)flags;
	return malloc(size);
}

static inline void kvfree(const void *p)
{
	free((void *)p);
}

#endif /* _ML_LIB_COMPAT_H */
