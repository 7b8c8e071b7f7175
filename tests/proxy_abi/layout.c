// SPDX-License-Identifier: GPL-2.0
/*
 * The proxy ABI as a C compiler lays it out (tests/test_proxy.py on the
 * host with -m64 and -m32, tests/test_big_endian.py on s390x).
 *
 *   layout         sizes, offsets, ioctl numbers and constants, one per line
 *   layout bytes   example records filled in C, one "name hex" per line,
 *                  so the test can check what toolchain/ml_lib/proxy/abi.py
 *                  packs and parses against the CPU's own byte order
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/ml_lib.h>

#define S(t) printf(#t " %zu\n", sizeof(struct t))
#define O(t, f) printf(#t "." #f " %zu\n", offsetof(struct t, f))

static void print_layout(void)
{
	S(ml_lib_proxy_req); O(ml_lib_proxy_req, size); O(ml_lib_proxy_req, id);
	O(ml_lib_proxy_req, model_id); O(ml_lib_proxy_req, n_in); O(ml_lib_proxy_req, in);
	S(ml_lib_proxy_resp); O(ml_lib_proxy_resp, id); O(ml_lib_proxy_resp, n_out);
	O(ml_lib_proxy_resp, out);
	S(ml_lib_proxy_register); O(ml_lib_proxy_register, name);
	S(ml_lib_proxy_record); O(ml_lib_proxy_record, feat);
	S(ml_lib_proxy_dataset_read); O(ml_lib_proxy_dataset_read, buf);
	O(ml_lib_proxy_dataset_read, n_records); O(ml_lib_proxy_dataset_read, dropped);
	printf("IOC_REGISTER %lu\nIOC_DATASET_READ %lu\n",
	       (unsigned long)ML_LIB_IOC_REGISTER, (unsigned long)ML_LIB_IOC_DATASET_READ);
	printf("VERSION %d\nNAME_LEN %d\nMAX_IN %d\nMAX_OUT %d\n", ML_LIB_PROXY_VERSION,
	       ML_LIB_PROXY_NAME_LEN, ML_LIB_PROXY_MAX_IN, ML_LIB_PROXY_MAX_OUT);
}

static void print_hex(const char *name, const void *p, size_t n)
{
	const unsigned char *b = p;
	size_t i;

	printf("%s ", name);
	for (i = 0; i < n; i++)
		printf("%02x", b[i]);
	printf("\n");
}

/* Values with distinct bytes, so any byte-order or offset slip shows. */
static void print_bytes(void)
{
	union { struct ml_lib_proxy_req r; char b[24 + 3 * 8]; } req;
	union { struct ml_lib_proxy_resp r; char b[24 + 4 * 4]; } resp;
	union { struct ml_lib_proxy_record r; char b[16 + 2 * 8]; } rec;
	struct ml_lib_proxy_register reg;
	struct ml_lib_proxy_dataset_read dr;

	memset(&req, 0, sizeof(req));
	req.r.version = ML_LIB_PROXY_VERSION;
	req.r.size = sizeof(req);
	req.r.id = 0x0102030405060708ULL;
	req.r.model_id = 0x0a0b0c0d;
	req.r.n_in = 3;
	req.r.in[0] = -2;
	req.r.in[1] = 0x1122334455667788LL;
	req.r.in[2] = INT64_MIN;
	print_hex("req", &req, sizeof(req));

	/* three outputs: 12 bytes, padded to 16 with zeros */
	memset(&resp, 0, sizeof(resp));
	resp.r.version = ML_LIB_PROXY_VERSION;
	resp.r.size = sizeof(resp);
	resp.r.id = 0x8877665544332211ULL;
	resp.r.model_id = 0x01020304;
	resp.r.n_out = 3;
	resp.r.out[0] = -1;
	resp.r.out[1] = 7;
	resp.r.out[2] = 0x12345678;
	print_hex("resp", &resp, sizeof(resp));

	memset(&reg, 0, sizeof(reg));
	reg.version = ML_LIB_PROXY_VERSION;
	reg.n_in = 0x01020304;
	reg.n_out = 2;
	strcpy(reg.name, "be-model");
	print_hex("register", &reg, sizeof(reg));

	memset(&rec, 0, sizeof(rec));
	rec.r.seq = 0x0102030405060708ULL;
	rec.r.n = 2;
	rec.r.feat[0] = 5;
	rec.r.feat[1] = -0x0102030405060708LL;
	print_hex("record", &rec, sizeof(rec));

	memset(&dr, 0, sizeof(dr));
	dr.version = ML_LIB_PROXY_VERSION;
	dr.model_id = 3;
	dr.buf = 0x1122334455667788ULL;
	dr.buf_len = 4096;
	dr.n_records = 7;
	dr.record_size = 32;
	dr.dropped = 0x0000000100000002ULL;
	print_hex("dataset_read", &dr, sizeof(dr));
}

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "bytes"))
		print_bytes();
	else
		print_layout();
	return 0;
}
