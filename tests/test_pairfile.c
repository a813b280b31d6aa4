/* test_pairfile.c - .vec / .pairs reader and writer: round trips, every
 * header check with its exact code, and files made by the reference
 * generator ../shared/data/make_pairs.py (small t10k set in a temp dir). */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tmpdir.h"
#include "sv/error.h"
#include "sv/pairfile.h"

static char dir[64];
static char err[SV_PAIRFILE_ERRLEN];

static void setup(void)
{
	tmpdir_make(dir, sizeof dir, "pairfile");
	err[0] = 0;
}

static void teardown(void)
{
	tmpdir_remove(dir);
}

TestSuite(pairfile, .init = setup, .fini = teardown);

static void path_in(char *buf, size_t n, const char *name)
{
	snprintf(buf, n, "%s/%s", dir, name);
}

/* A small consistent pair of files: 6 rows of dim 3 with ids 100..105,
 * classes 0,0,1,1,2,2, and 4 pairs. */
static const uint8_t CLS[6] = {0, 0, 1, 1, 2, 2};
static const struct sv_pair_rec REC[4] = {
    {100, 101, 1, 0, 0, 0},
    {100, 102, 0, 0, 1, 0},
    {105, 104, 1, 2, 2, 0},
    {103, 105, 0, 1, 2, 0},
};

static void write_small(char *vp, char *pp, size_t n)
{
	float data[18];

	for (int i = 0; i < 18; i++)
		data[i] = (float)i * 0.5f - 1.0f;
	path_in(vp, n, "s.vec");
	path_in(pp, n, "s.pairs");
	cr_assert_eq(sv_vecfile_write(vp, data, 6, 3, 100, SV_PAIRFILE_FEATURE_RAW, CLS, 3), 0);
	cr_assert_eq(sv_pairfile_write(pp, REC, 4, 3, 7, 1, 100, 106), 0);
}

/* Read the whole file, let edit() change it, write it back. */
static void patch_file(const char *p, size_t off, const void *bytes, size_t n)
{
	int fd = open(p, O_WRONLY);

	cr_assert_geq(fd, 0);
	cr_assert_eq(pwrite(fd, bytes, n, (off_t)off), (ssize_t)n);
	close(fd);
}

static void patch32(const char *p, size_t off, uint32_t v)
{
	patch_file(p, off, &v, 4);
}

static int open_vec(const char *p)
{
	struct sv_vecfile *vf = NULL;
	int rc = sv_vecfile_open(&vf, p, err, sizeof err);

	if (rc == 0)
		sv_vecfile_close(vf);
	else
		cr_assert_null(vf, "out-param written on failure");
	return rc;
}

static int open_pairs(const char *p)
{
	struct sv_pairfile *pf = NULL;
	int rc = sv_pairfile_open(&pf, p, err, sizeof err);

	if (rc == 0)
		sv_pairfile_close(pf);
	else
		cr_assert_null(pf, "out-param written on failure");
	return rc;
}

Test(pairfile, roundtrip_vec_and_pairs)
{
	char vp[128], pp[128];
	struct sv_vecfile *vf = NULL;
	struct sv_pairfile *pf = NULL;
	struct stat st;

	write_small(vp, pp, sizeof vp);
	cr_assert_eq(stat(vp, &st), 0);
	cr_assert_eq(st.st_size, 64 + 6 * 3 * 4 + 6);
	cr_assert_eq(stat(pp, &st), 0);
	cr_assert_eq(st.st_size, 64 + 4 * 12);

	cr_assert_eq(sv_vecfile_open(&vf, vp, err, sizeof err), 0, "%s", err);
	const struct sv_vec_header *vh = sv_vecfile_header(vf);
	cr_assert_eq(vh->n_rows, 6);
	cr_assert_eq(vh->dim, 3);
	cr_assert_eq(vh->id_base, 100);
	cr_assert_eq(vh->n_classes, 3);
	cr_assert_eq(vh->dtype, 1);
	cr_assert_null(sv_vecfile_row(vf, 99));
	cr_assert_null(sv_vecfile_row(vf, 106));
	const float *r = sv_vecfile_row(vf, 104);
	cr_assert_not_null(r);
	cr_assert_float_eq(r[0], 12 * 0.5f - 1.0f, 0.0f);
	cr_assert_float_eq(r[2], 14 * 0.5f - 1.0f, 0.0f);
	cr_assert_eq(sv_vecfile_row(vf, 100), sv_vecfile_data(vf));
	cr_assert_eq(sv_vecfile_classes(vf)[3], 1);

	cr_assert_eq(sv_pairfile_open(&pf, pp, err, sizeof err), 0, "%s", err);
	const struct sv_pair_header *ph = sv_pairfile_header(pf);
	cr_assert_eq(ph->n_pairs, 4);
	cr_assert_eq(ph->n_pos, 2);
	cr_assert_eq(ph->dim, 3);
	cr_assert_eq(ph->record_bytes, 12);
	cr_assert_eq(ph->seed, 7);
	cr_assert_eq(ph->split, 1);
	cr_assert_eq(ph->id_lo, 100);
	cr_assert_eq(ph->id_hi, 106);
	cr_assert_eq(memcmp(sv_pairfile_records(pf), REC, sizeof REC), 0);
	cr_assert_eq(sv_pairfile_check_vec(pf, vf, err, sizeof err), 0, "%s", err);
	sv_pairfile_close(pf);
	sv_vecfile_close(vf);
}

Test(pairfile, vec_without_class_block)
{
	char vp[128];
	float data[4] = {1, 2, 3, 4};
	struct sv_vecfile *vf = NULL;

	path_in(vp, sizeof vp, "n.vec");
	cr_assert_eq(sv_vecfile_write(vp, data, 2, 2, 0, 0, NULL, 0), 0);
	cr_assert_eq(sv_vecfile_open(&vf, vp, err, sizeof err), 0, "%s", err);
	cr_assert_null(sv_vecfile_classes(vf));
	cr_assert_float_eq(sv_vecfile_row(vf, 1)[1], 4.0f, 0.0f);
	sv_vecfile_close(vf);
}

Test(pairfile, null_and_invalid_arguments)
{
	struct sv_vecfile *vf = NULL;
	struct sv_pairfile *pf = NULL;
	float d = 0;
	uint8_t bad_cls = 3;
	char p[128];

	path_in(p, sizeof p, "x");
	cr_assert_eq(sv_vecfile_open(NULL, p, err, sizeof err), -EINVAL);
	cr_assert_eq(sv_vecfile_open(&vf, NULL, NULL, 0), -EINVAL);
	cr_assert_eq(sv_pairfile_open(&pf, NULL, err, sizeof err), -EINVAL);
	cr_assert_eq(sv_pairfile_check_vec(NULL, NULL, err, sizeof err), -EINVAL);
	cr_assert_eq(sv_vecfile_write(p, NULL, 1, 1, 0, 0, NULL, 0), -EINVAL);
	cr_assert_eq(sv_vecfile_write(p, &d, 0, 1, 0, 0, NULL, 0), -EINVAL);
	cr_assert_eq(sv_vecfile_write(p, &d, 1, 1, 0, 0, &bad_cls, 3), -EINVAL);
	cr_assert_eq(sv_pairfile_write(p, NULL, 1, 1, 0, 0, 0, 10), -EINVAL);
	cr_assert_eq(sv_pairfile_write(p, REC, 4, 3, 0, 0, 100, 100), -EINVAL);
	cr_assert_eq(sv_pairfile_write(p, REC, 4, 3, 0, 0, 100, 105), SV_ERR_CORRUPT);
	cr_assert_eq(access(p, F_OK), -1, "a refused write left a file");
	sv_vecfile_close(NULL);
	sv_pairfile_close(NULL);
	cr_assert_eq(open_vec("/nonexistent/x.vec"), -ENOENT);
	cr_assert(strstr(err, "/nonexistent/x.vec"), "%s", err);
}

Test(pairfile, empty_pairs_file_is_valid)
{
	char pp[128];

	path_in(pp, sizeof pp, "e.pairs");
	cr_assert_eq(sv_pairfile_write(pp, NULL, 0, 5, 0, 0, 0, 10), 0);
	cr_assert_eq(open_pairs(pp), 0, "%s", err);
}

Test(pairfile, truncated_files)
{
	char vp[128], pp[128];

	write_small(vp, pp, sizeof vp);
	cr_assert_eq(truncate(pp, 64 + 3 * 12 + 5), 0);
	cr_assert_eq(open_pairs(pp), SV_ERR_TRUNCATED);
	cr_assert(strstr(err, "s.pairs") && strstr(err, "105") && strstr(err, "112"), "%s", err);
	cr_assert_eq(truncate(pp, 10), 0);
	cr_assert_eq(open_pairs(pp), SV_ERR_TRUNCATED);
	cr_assert_eq(truncate(pp, 0), 0);
	cr_assert_eq(open_pairs(pp), SV_ERR_TRUNCATED);
	/* vec: drop the last class byte */
	cr_assert_eq(truncate(vp, 64 + 72 + 5), 0);
	cr_assert_eq(open_vec(vp), SV_ERR_TRUNCATED);
}

Test(pairfile, trailing_bytes)
{
	char vp[128], pp[128];

	write_small(vp, pp, sizeof vp);
	cr_assert_eq(truncate(pp, 64 + 4 * 12 + 1), 0);
	cr_assert_eq(open_pairs(pp), SV_ERR_SHAPE);
	cr_assert_eq(truncate(vp, 64 + 72 + 6 + 3), 0);
	cr_assert_eq(open_vec(vp), SV_ERR_SHAPE);
}

Test(pairfile, bad_magic)
{
	char vp[128], pp[128];

	write_small(vp, pp, sizeof vp);
	patch_file(pp, 0, "SIMPAIR2", 8);
	cr_assert_eq(open_pairs(pp), SV_ERR_MAGIC);
	cr_assert(strstr(err, "'magic'") && strstr(err, "SIMPAIR1"), "%s", err);
	/* a .vec is not a .pairs and the reverse */
	cr_assert_eq(open_pairs(vp), SV_ERR_MAGIC);
	patch_file(pp, 0, "SIMPAIR1", 8);
	cr_assert_eq(open_vec(pp), SV_ERR_MAGIC);
}

Test(pairfile, bad_header_fields_give_exact_codes)
{
	char vp[128], pp[128];

	write_small(vp, pp, sizeof vp);
	patch32(pp, 8, 2);
	cr_assert_eq(open_pairs(pp), SV_ERR_VERSION);
	cr_assert(strstr(err, "'version': found 2, expected 1"), "%s", err);
	patch32(pp, 8, 1);
	patch32(pp, 12, 128);
	cr_assert_eq(open_pairs(pp), SV_ERR_VERSION);
	cr_assert(strstr(err, "'header_bytes'"), "%s", err);
	patch32(pp, 12, 64);
	patch32(pp, 28, 16);
	cr_assert_eq(open_pairs(pp), SV_ERR_VERSION);
	cr_assert(strstr(err, "'record_bytes': found 16, expected 12"), "%s", err);
	patch32(pp, 28, 12);
	patch32(pp, 60, 1);
	cr_assert_eq(open_pairs(pp), SV_ERR_CORRUPT);
	patch32(pp, 60, 0);
	patch32(pp, 20, 3); /* n_pos */
	cr_assert_eq(open_pairs(pp), SV_ERR_CORRUPT);
	cr_assert(strstr(err, "'n_pos': found 3, expected 2"), "%s", err);
	patch32(pp, 20, 5);
	cr_assert_eq(open_pairs(pp), SV_ERR_SHAPE);
	patch32(pp, 20, 2);
	patch32(pp, 44, 100); /* id_hi == id_lo */
	cr_assert_eq(open_pairs(pp), SV_ERR_SHAPE);
	patch32(pp, 44, 105); /* record 2 uses id 105 */
	cr_assert_eq(open_pairs(pp), SV_ERR_CORRUPT);
	cr_assert(strstr(err, "record 2") && strstr(err, "found 105"), "%s", err);
	patch32(pp, 44, 106);
	cr_assert_eq(open_pairs(pp), 0, "%s", err);

	patch32(vp, 24, 2);
	cr_assert_eq(open_vec(vp), SV_ERR_VERSION);
	cr_assert(strstr(err, "'dtype'"), "%s", err);
	patch32(vp, 24, 1);
	patch32(vp, 20, 4); /* dim: sizes no longer match the length */
	cr_assert_eq(open_vec(vp), SV_ERR_TRUNCATED);
	patch32(vp, 20, 0);
	cr_assert_eq(open_vec(vp), SV_ERR_SHAPE);
	patch32(vp, 20, 3);
	patch32(vp, 36, 2); /* class 2 >= n_classes */
	cr_assert_eq(open_vec(vp), SV_ERR_CORRUPT);
	patch32(vp, 36, 3);
	patch32(vp, 28, UINT32_MAX - 2); /* id_base + n_rows overflows */
	cr_assert_eq(open_vec(vp), SV_ERR_SHAPE);
	patch32(vp, 28, 100);
	cr_assert_eq(open_vec(vp), 0, "%s", err);
}

Test(pairfile, bad_records)
{
	char vp[128], pp[128];
	uint8_t two = 2;

	write_small(vp, pp, sizeof vp);
	patch32(pp, 64 + 12 + 4, 100); /* record 1: b = a */
	cr_assert_eq(open_pairs(pp), SV_ERR_CORRUPT);
	cr_assert(strstr(err, "record 1"), "%s", err);
	patch32(pp, 64 + 12 + 4, 102);
	patch_file(pp, 64 + 3 * 12 + 8, &two, 1); /* label 2 */
	cr_assert_eq(open_pairs(pp), SV_ERR_CORRUPT);
	cr_assert(strstr(err, "'label'"), "%s", err);
}

Test(pairfile, check_vec_mismatches)
{
	char vp[128], pp[128], p2[128];
	struct sv_vecfile *vf = NULL;
	struct sv_pairfile *pf = NULL;
	struct sv_pair_rec bad[4];
	float data[8] = {0};

	write_small(vp, pp, sizeof vp);
	cr_assert_eq(sv_vecfile_open(&vf, vp, err, sizeof err), 0);

	memcpy(bad, REC, sizeof bad);
	bad[3].class_b = 1; /* row 105 is class 2 */
	path_in(p2, sizeof p2, "b.pairs");
	cr_assert_eq(sv_pairfile_write(p2, bad, 4, 3, 7, 1, 100, 106), 0);
	cr_assert_eq(sv_pairfile_open(&pf, p2, err, sizeof err), 0);
	cr_assert_eq(sv_pairfile_check_vec(pf, vf, err, sizeof err), SV_ERR_CORRUPT);
	cr_assert(strstr(err, "record 3"), "%s", err);
	sv_pairfile_close(pf);

	memcpy(bad, REC, sizeof bad);
	bad[1].label = 1; /* classes 0,1 */
	cr_assert_eq(sv_pairfile_write(p2, bad, 4, 3, 7, 1, 100, 106), 0);
	cr_assert_eq(sv_pairfile_open(&pf, p2, err, sizeof err), 0);
	cr_assert_eq(sv_pairfile_check_vec(pf, vf, err, sizeof err), SV_ERR_CORRUPT);
	sv_pairfile_close(pf);

	cr_assert_eq(sv_pairfile_write(p2, REC, 4, 4, 7, 1, 100, 106), 0);
	cr_assert_eq(sv_pairfile_open(&pf, p2, err, sizeof err), 0);
	cr_assert_eq(sv_pairfile_check_vec(pf, vf, err, sizeof err), SV_ERR_SHAPE);
	cr_assert(strstr(err, "'dim': found 4, expected 3"), "%s", err);
	sv_pairfile_close(pf);

	cr_assert_eq(sv_pairfile_write(p2, REC, 4, 3, 7, 1, 100, 107), 0);
	cr_assert_eq(sv_pairfile_open(&pf, p2, err, sizeof err), 0);
	cr_assert_eq(sv_pairfile_check_vec(pf, vf, err, sizeof err), SV_ERR_RANGE);
	sv_pairfile_close(pf);
	sv_vecfile_close(vf);

	/* a .vec without classes checks dims and ranges only */
	path_in(p2, sizeof p2, "nc.vec");
	cr_assert_eq(sv_vecfile_write(p2, data, 2, 4, 0, 0, NULL, 0), 0);
	cr_assert_eq(sv_vecfile_open(&vf, p2, err, sizeof err), 0);
	cr_assert_eq(sv_pairfile_open(&pf, pp, err, sizeof err), 0);
	cr_assert_eq(sv_pairfile_check_vec(pf, vf, err, sizeof err), SV_ERR_SHAPE);
	sv_pairfile_close(pf);
	sv_vecfile_close(vf);
}

Test(pairfile, from_buffer_matches_file)
{
	static const uint8_t junk[70] = "SIMPAIR1";
	struct sv_pairfile *pf = NULL;

	cr_assert_eq(sv_pairfile_from_buffer(&pf, junk, sizeof junk, NULL, err, sizeof err),
	             SV_ERR_VERSION);
	cr_assert(strstr(err, "<buffer>"), "%s", err);
	cr_assert_eq(sv_pairfile_from_buffer(&pf, NULL, 0, "z", err, sizeof err), SV_ERR_TRUNCATED);
	cr_assert_null(pf);
}

/* Files from the reference generator parse, and their records agree with
 * the header and with the class block of the .vec file. */
Test(pairfile, reference_generator_files, .timeout = 120)
{
	const char *shared = getenv("SV_SHARED_DIR");
	char cmd[512], vp[128], pp[128];
	struct sv_vecfile *vf = NULL;
	struct sv_pairfile *pf = NULL;

	cr_assert_not_null(shared, "SV_SHARED_DIR not set (run through meson test)");
	snprintf(cmd, sizeof cmd,
	         "/usr/bin/python3 %s/data/make_pairs.py --split t10k --n-pairs 500 "
	         "--out-dir %s >/dev/null",
	         shared, dir);
	cr_assert_eq(system(cmd), 0, "%s", cmd);
	path_in(vp, sizeof vp, "fmnist_t10k.vec");
	path_in(pp, sizeof pp, "fmnist_t10k_n500_p50_s1.pairs");
	cr_assert_eq(sv_vecfile_open(&vf, vp, err, sizeof err), 0, "%s", err);
	cr_assert_eq(sv_pairfile_open(&pf, pp, err, sizeof err), 0, "%s", err);
	const struct sv_vec_header *vh = sv_vecfile_header(vf);
	const struct sv_pair_header *ph = sv_pairfile_header(pf);
	cr_assert_eq(vh->n_rows, 10000);
	cr_assert_eq(vh->dim, 784);
	cr_assert_eq(vh->id_base, 60000);
	cr_assert_eq(vh->feature, SV_PAIRFILE_FEATURE_ZL2);
	cr_assert_eq(vh->n_classes, 10);
	cr_assert_eq(ph->n_pairs, 500);
	cr_assert_eq(ph->n_pos, 250);
	cr_assert_eq(ph->seed, 1);
	cr_assert_eq(ph->split, 1);
	cr_assert_eq(ph->id_lo, 60000);
	cr_assert_eq(ph->id_hi, 70000);
	cr_assert_eq(sv_pairfile_check_vec(pf, vf, err, sizeof err), 0, "%s", err);

	const struct sv_pair_rec *rec = sv_pairfile_records(pf);
	const uint8_t *cls = sv_vecfile_classes(vf);
	for (uint32_t i = 0; i < 5; i++) {
		const float *x = sv_vecfile_row(vf, rec[i].a);
		double n2 = 0;

		cr_assert_not_null(x);
		for (uint32_t k = 0; k < vh->dim; k++)
			n2 += (double)x[k] * x[k];
		cr_assert_float_eq(n2, 1.0, 1e-5, "row %u norm^2 %g", rec[i].a, n2);
		cr_assert_eq(cls[rec[i].a - 60000], rec[i].class_a);
		cr_assert_eq(rec[i].label, rec[i].class_a == rec[i].class_b);
	}
	sv_pairfile_close(pf);
	sv_vecfile_close(vf);
}

Test(pairfile, fingerprint_covers_vectors_and_records)
{
	char vp[128], pp[128];
	struct sv_vecfile *vf = NULL, *vf2 = NULL;
	struct sv_pairfile *pf = NULL;
	uint64_t a, b;
	float one = 42.0f;

	write_small(vp, pp, sizeof vp);
	cr_assert_eq(sv_vecfile_open(&vf, vp, err, sizeof err), 0);
	cr_assert_eq(sv_pairfile_open(&pf, pp, err, sizeof err), 0);
	a = sv_pairfile_fingerprint(pf, vf);
	cr_assert_neq(a, 0);
	cr_assert_eq(sv_pairfile_fingerprint(pf, vf), a);
	/* same header, one vector changed: another fingerprint (issue 13.13) */
	patch_file(vp, 64 + 5 * sizeof(float), &one, sizeof(one));
	cr_assert_eq(sv_vecfile_open(&vf2, vp, err, sizeof err), 0);
	b = sv_pairfile_fingerprint(pf, vf2);
	cr_assert_neq(a, b);
	cr_assert_eq(sv_pairfile_fingerprint(NULL, vf), 0);
	sv_vecfile_close(vf);
	sv_vecfile_close(vf2);
	sv_pairfile_close(pf);
}

Test(pairfile, a_directory_is_refused_by_name)
{
	struct sv_pairfile *pf = NULL;
	struct sv_vecfile *vf = NULL;

	cr_assert_eq(sv_pairfile_open(&pf, dir, err, sizeof err), -EINVAL);
	cr_assert(strstr(err, "not a regular file (a directory)"), "%s", err);
	cr_assert_null(pf);
	cr_assert_eq(sv_vecfile_open(&vf, "/dev/null", err, sizeof err), -EINVAL);
	cr_assert(strstr(err, "not a regular file"), "%s", err);
}
