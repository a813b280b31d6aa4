/* test_npy.c - .npy header codec, file round trip, and interchange with
 * numpy itself (/usr/bin/python3; those tests skip when numpy is absent). */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sv/error.h"
#include "sv/npy.h"

static char dir[64];

static void setup(void)
{
	strcpy(dir, "/tmp/sv-test-npy-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}

static int have_numpy(void)
{
	return system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") == 0;
}

/* A v1.0 file with the given dict text and nfloat zero floats. */
static size_t make_raw(unsigned char *buf, size_t cap, const char *dict, size_t nfloat)
{
	size_t n = strlen(dict), total = (10 + n + 1 + 63) / 64 * 64;

	cr_assert_leq(total + nfloat * 4, cap);
	memcpy(buf, "\x93NUMPY\x01\x00", 8);
	buf[8] = (unsigned char)((total - 10) & 0xff);
	buf[9] = (unsigned char)((total - 10) >> 8);
	memcpy(buf + 10, dict, n);
	memset(buf + 10 + n, ' ', total - 10 - n);
	buf[total - 1] = '\n';
	memset(buf + total, 0, nfloat * 4);
	return total + nfloat * 4;
}

TestSuite(npy, .init = setup, .fini = teardown);

Test(npy, header_is_64_byte_aligned_and_parses_back)
{
	static const uint32_t shapes[][2] = {{1, 1}, {3, 4}, {784, 64}, {4294967295u, 4294967295u}};

	for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
		char buf[SV_NPY_HEADER_MAX];
		size_t len = 0, off = 0;
		uint32_t r = 0, c = 0;

		cr_assert_eq(sv_npy_header(buf, sizeof(buf), shapes[i][0], shapes[i][1], &len), 0);
		cr_assert_eq(len % 64, 0);
		cr_assert_eq(buf[len - 1], '\n');
		if ((uint64_t)shapes[i][0] * shapes[i][1] < 1000) {
			char full[SV_NPY_HEADER_MAX + 4096] = {0};

			memcpy(full, buf, len);
			cr_assert_eq(sv_npy_parse(full, len + 4ull * shapes[i][0] * shapes[i][1],
			                          &r, &c, &off),
			             0);
			cr_assert_eq(r, shapes[i][0]);
			cr_assert_eq(c, shapes[i][1]);
			cr_assert_eq(off, len);
		}
	}
}

Test(npy, header_rejects_bad_arguments)
{
	char buf[SV_NPY_HEADER_MAX];
	size_t len = 99;

	cr_assert_eq(sv_npy_header(NULL, 128, 1, 1, &len), -EINVAL);
	cr_assert_eq(sv_npy_header(buf, sizeof(buf), 0, 1, &len), -EINVAL);
	cr_assert_eq(sv_npy_header(buf, sizeof(buf), 1, 0, &len), -EINVAL);
	cr_assert_eq(sv_npy_header(buf, sizeof(buf), 1, 1, NULL), -EINVAL);
	cr_assert_eq(sv_npy_header(buf, 63, 1, 1, &len), SV_ERR_TOOBIG);
	cr_assert_eq(len, 99, "out-param written on failure");
}

Test(npy, save_load_roundtrip_is_bit_exact)
{
	enum { R = 37, C = 13 };
	float *a = malloc(R * C * sizeof(float)), *b = NULL;
	uint32_t r = 0, c = 0;
	char path[128];

	for (int i = 0; i < R * C; i++)
		a[i] = (float)i * 0.37f - 50.0f + (i % 7 ? 0.0f : 1e-30f);
	a[5] = -0.0f;
	snprintf(path, sizeof(path), "%s/w.npy", dir);
	cr_assert_eq(sv_npy_save(path, a, R, C), 0);
	cr_assert_eq(sv_npy_load(path, &b, &r, &c), 0);
	cr_assert_eq(r, R);
	cr_assert_eq(c, C);
	cr_assert_eq(memcmp(a, b, sizeof(float) * R * C), 0);
	free(a);
	free(b);
}

Test(npy, save_replaces_file_and_leaves_no_temporary)
{
	float one = 1.0f, two[2] = {2.0f, 3.0f}, *b = NULL;
	uint32_t r, c;
	char path[128], cmd[192];

	snprintf(path, sizeof(path), "%s/x.npy", dir);
	cr_assert_eq(sv_npy_save(path, &one, 1, 1), 0);
	cr_assert_eq(sv_npy_save(path, two, 2, 1), 0);
	cr_assert_eq(sv_npy_load(path, &b, &r, &c), 0);
	cr_assert_eq(r, 2);
	cr_assert_eq(c, 1);
	cr_assert_eq(b[1], 3.0f);
	free(b);
	snprintf(cmd, sizeof(cmd), "test $(ls '%s' | wc -l) -eq 1", dir);
	cr_assert_eq(system(cmd), 0);
}

Test(npy, save_and_load_report_os_errors)
{
	float one = 1.0f, *b = NULL;
	uint32_t r = 7, c = 7;

	cr_assert_eq(sv_npy_save("/nonexistent-dir/x.npy", &one, 1, 1), -ENOENT);
	cr_assert_eq(sv_npy_load("/nonexistent-dir/x.npy", &b, &r, &c), -ENOENT);
	cr_assert_eq(sv_npy_save(NULL, &one, 1, 1), -EINVAL);
	cr_assert_eq(sv_npy_save("/tmp/x.npy", NULL, 1, 1), -EINVAL);
	cr_assert_eq(sv_npy_load(NULL, &b, &r, &c), -EINVAL);
	cr_assert_null(b);
	cr_assert_eq(r, 7);
}

Test(npy, parse_rejects_what_it_does_not_handle)
{
	unsigned char buf[512];
	uint32_t r = 0, c = 0;
	size_t off = 0, n;

	n = make_raw(buf, sizeof(buf),
	             "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }", 8);
	cr_assert_eq(sv_npy_parse(buf, n, &r, &c, &off), SV_ERR_VERSION);
	n = make_raw(buf, sizeof(buf),
	             "{'descr': '>f4', 'fortran_order': False, 'shape': (2, 2), }", 4);
	cr_assert_eq(sv_npy_parse(buf, n, &r, &c, &off), SV_ERR_VERSION);
	n = make_raw(buf, sizeof(buf), "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }",
	             4);
	cr_assert_eq(sv_npy_parse(buf, n, &r, &c, &off), SV_ERR_VERSION);
	n = make_raw(buf, sizeof(buf),
	             "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2, 2), }", 8);
	cr_assert_eq(sv_npy_parse(buf, n, &r, &c, &off), SV_ERR_VERSION);
	n = make_raw(buf, sizeof(buf), "{'descr': '<f4', 'fortran_order': False, 'shape': (), }",
	             1);
	cr_assert_eq(sv_npy_parse(buf, n, &r, &c, &off), SV_ERR_VERSION);
	n = make_raw(buf, sizeof(buf),
	             "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 3), }", 0);
	cr_assert_eq(sv_npy_parse(buf, n, &r, &c, &off), SV_ERR_SHAPE);
	n = make_raw(buf, sizeof(buf),
	             "{'descr': '<f4', 'fortran_order': False, 'shape': (2, x), }", 4);
	cr_assert_eq(sv_npy_parse(buf, n, &r, &c, &off), SV_ERR_CORRUPT);
	n = make_raw(buf, sizeof(buf), "{'fortran_order': False, 'shape': (2, 2), }", 4);
	cr_assert_eq(sv_npy_parse(buf, n, &r, &c, &off), SV_ERR_CORRUPT);
	n = make_raw(buf, sizeof(buf),
	             "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999, 2), }", 0);
	cr_assert_eq(sv_npy_parse(buf, n, &r, &c, &off), SV_ERR_TOOBIG);
	n = make_raw(buf, sizeof(buf),
	             "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 6);
	cr_assert_eq(sv_npy_parse(buf, n - 1, &r, &c, &off), SV_ERR_TRUNCATED);
	cr_assert_eq(sv_npy_parse(buf, 40, &r, &c, &off), SV_ERR_TRUNCATED);
	cr_assert_eq(sv_npy_parse(buf, 5, &r, &c, &off), SV_ERR_TRUNCATED);
	cr_assert_eq(sv_npy_parse("PK\3\4 this is a zip file", 24, &r, &c, &off), SV_ERR_MAGIC);
	buf[6] = 9;
	cr_assert_eq(sv_npy_parse(buf, n, &r, &c, &off), SV_ERR_VERSION);
	cr_assert_eq(sv_npy_parse(NULL, n, &r, &c, &off), -EINVAL);
	cr_assert_eq(r, 0, "out-param written on failure");
	cr_assert_eq(off, 0);
}

Test(npy, parse_reads_one_dimensional_as_one_row)
{
	unsigned char buf[512];
	uint32_t r = 0, c = 0;
	size_t off = 0, n;

	n = make_raw(buf, sizeof(buf), "{'descr': '<f4', 'fortran_order': False, 'shape': (5,), }",
	             5);
	cr_assert_eq(sv_npy_parse(buf, n, &r, &c, &off), 0);
	cr_assert_eq(r, 1);
	cr_assert_eq(c, 5);
	cr_assert_eq(off, n - 5 * sizeof(float));
}

Test(npy, load_fd_reads_a_pipe)
{
	float a[6] = {1, 2, 3, 4, 5, 6}, *b = NULL;
	char path[128];
	uint32_t r, c;
	int fd;

	snprintf(path, sizeof(path), "%s/p.npy", dir);
	cr_assert_eq(sv_npy_save(path, a, 3, 2), 0);
	fd = open(path, O_RDONLY);
	cr_assert_geq(fd, 0);
	cr_assert_eq(sv_npy_load_fd(fd, &b, &r, &c), 0);
	close(fd);
	cr_assert_eq(r, 3);
	cr_assert_eq(memcmp(a, b, sizeof(a)), 0);
	free(b);
	fd = open("/dev/null", O_RDONLY);
	cr_assert_eq(sv_npy_load_fd(fd, &b, &r, &c), SV_ERR_TRUNCATED);
	close(fd);
}

Test(npy, numpy_loads_what_we_write)
{
	float a[12];
	char path[128], cmd[512];

	if (!have_numpy())
		cr_skip_test("numpy not available in /usr/bin/python3");
	for (int i = 0; i < 12; i++)
		a[i] = (float)i / 3.0f;
	snprintf(path, sizeof(path), "%s/w.npy", dir);
	cr_assert_eq(sv_npy_save(path, a, 3, 4), 0);
	snprintf(
	    cmd, sizeof(cmd),
	    "/usr/bin/python3 -c \"import numpy as np; a = np.load('%s'); "
	    "assert a.shape == (3, 4) and a.dtype == np.float32 and a.flags.c_contiguous; "
	    "assert (a == (np.arange(12, dtype=np.float32) / np.float32(3)).reshape(3, 4)).all()\"",
	    path);
	cr_assert_eq(system(cmd), 0);
}

Test(npy, we_load_what_numpy_writes)
{
	float *b = NULL;
	uint32_t r = 0, c = 0;
	char path[128], cmd[512];

	if (!have_numpy())
		cr_skip_test("numpy not available in /usr/bin/python3");
	snprintf(path, sizeof(path), "%s/n.npy", dir);
	snprintf(cmd, sizeof(cmd),
	         "/usr/bin/python3 -c \"import numpy as np; "
	         "np.save('%s', np.arange(200 * 3, dtype=np.float32).reshape(200, 3) * 0.5)\"",
	         path);
	cr_assert_eq(system(cmd), 0);
	cr_assert_eq(sv_npy_load(path, &b, &r, &c), 0);
	cr_assert_eq(r, 200);
	cr_assert_eq(c, 3);
	for (int i = 0; i < 600; i++)
		cr_assert_eq(b[i], (float)i * 0.5f);
	free(b);
	/* float64 is what np.save writes by default: refused, not misread. */
	snprintf(cmd, sizeof(cmd),
	         "/usr/bin/python3 -c \"import numpy as np; np.save('%s', np.ones((2, 2)))\"",
	         path);
	cr_assert_eq(system(cmd), 0);
	cr_assert_eq(sv_npy_load(path, &b, &r, &c), SV_ERR_VERSION);
}
