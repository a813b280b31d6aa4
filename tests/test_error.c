/* test_error.c - sv_strerror names every code of every family (sv/error.h). */
#include <criterion/criterion.h>
#include <errno.h>
#include <lmdb.h>
#include <string.h>

#include "sv/error.h"

static const int ours[] = {SV_ERR_SHAPE,SV_ERR_NONFINITE,SV_ERR_RANGE,SV_ERR_STATE,SV_ERR_NOTFOUND,SV_ERR_TRUNCATED,SV_ERR_MAGIC,SV_ERR_VERSION,SV_ERR_TOOBIG,SV_ERR_CORRUPT,SV_ERR_STORE_DIMS,SV_ERR_STORE_SCHEMA,SV_ERR_STORE_SETTINGS,SV_ERR_STORE_FULL,SV_ERR_DUPLICATE,SV_ERR_PROTO,SV_ERR_PROTO_VERB,SV_ERR_CONFIG,SV_ERR_METRICS_ONECLASS};

Test(error, every_own_code_has_its_own_name)
{
	size_t n = sizeof(ours) / sizeof(ours[0]);

	for (size_t i = 0; i < n; i++) {
		cr_assert(ours[i] < -20000, "code %d is outside the reserved block", ours[i]);
		cr_assert_str_neq(sv_strerror(ours[i]), "unknown error", "code %d", ours[i]);
		for (size_t j = 0; j < i; j++)
			cr_assert_str_neq(sv_strerror(ours[i]), sv_strerror(ours[j]),
					  "codes %d and %d share a name", ours[i], ours[j]);
	}
}

Test(error, lmdb_and_errno_codes_keep_their_own_names)
{
	cr_assert_str_eq(sv_strerror(MDB_MAP_FULL), mdb_strerror(MDB_MAP_FULL));
	cr_assert_str_eq(sv_strerror(MDB_NOTFOUND), mdb_strerror(MDB_NOTFOUND));
	cr_assert_str_eq(sv_strerror(-ENOMEM), strerror(ENOMEM));
	cr_assert_str_eq(sv_strerror(0), "success");
	cr_assert_str_eq(sv_strerror(-19999), "unknown error");
	cr_assert_str_eq(sv_strerror(12345), "unknown error");
}
