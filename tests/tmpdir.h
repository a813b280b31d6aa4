/* tmpdir.h - a scratch directory per Criterion test (tests only).
 *
 * tmpdir_make fills dir (at least 64 bytes) with a new directory
 * /tmp/sv-NAME-XXXXXX, failing the test when it cannot; tmpdir_remove deletes
 * it with everything below.  Call them from a suite's .init and .fini: each
 * test runs in its own forked process, so each gets its own directory.
 */
#ifndef SV_TESTS_TMPDIR_H
#define SV_TESTS_TMPDIR_H

#include <criterion/criterion.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>

static int tmpdir_rm_one(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
	(void)sb, (void)flag, (void)f;
	return remove(p);
}

static inline void tmpdir_make(char *dir, size_t cap, const char *name)
{
	snprintf(dir, cap, "/tmp/sv-%s-XXXXXX", name);
	cr_assert_not_null(mkdtemp(dir), "mkdtemp %s", dir);
}

static inline void tmpdir_remove(const char *dir)
{
	nftw(dir, tmpdir_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
