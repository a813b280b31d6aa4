/* bench_store.c - `sv-bench store`: items/s and pairs/s committed through the
 * store, beside raw LMDB puts of the same sizes, group sizes and sync flags
 * measured in the same run.
 *
 * For each record kind (items: a 784-float vector under a 14-byte id; pairs:
 * a log record with a client id, so the idempotency index is written too;
 * bare: the same log record without a client id, one put as in raw), each
 * sync mode (full: fsync per commit; none: MDB_NOSYNC) and each group size
 * (1, 64, 512 records per commit) it times
 *   sv    sv_store_txn_begin, the group's puts / appends, sv_store_txn_commit
 *   raw   mdb_txn_begin, the same number of mdb_put of the same key and value
 *         sizes into one plain database, mdb_txn_commit
 * each on a fresh environment in --dir, alternating, best of three, and
 * prints records/s for both and sv/raw.  Leaves out: reads (sv-bench query), the daemon's ingest
 * path (sv-bench ingest).
 *
 * Options: --dir DIR (default /tmp), --d-in N (default 784), --scale F
 * (multiplies the record counts; default 1), --json.
 */
#include <errno.h>
#include <ftw.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bench.h"
#include "sv/error.h"
#include "sv/store.h"

#define ROUNDS 3

enum kind { KIND_ITEMS, KIND_PAIRS, KIND_BARE };
static const char *const kind_names[] = {"items", "pairs", "bare"};

struct cfg {
	const char *dir;
	uint32_t d_in;
	double scale;
	int json;
};

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
	(void)sb;
	(void)flag;
	(void)f;
	return remove(p);
}

static void rm_tree(const char *p)
{
	nftw(p, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Records to time for one configuration: enough groups to average over,
 * bounded so a durable run with group 1 stays around a second and a
 * no-sync run lasts long enough (tens of ms) to rise above the noise. */
static size_t count_for(const struct cfg *c, int nosync, size_t group, enum kind k)
{
	size_t n;
	if (!nosync)
		n = group == 1 ? 200 : group * (group == 64 ? 40 : 12);
	else if (k == KIND_ITEMS)
		n = group == 1 ? 4000 : group * (group == 64 ? 250 : 40);
	else
		n = group == 1 ? 4000 : group * (group == 64 ? 1000 : 200);
	n = (size_t)((double)n * c->scale);
	n = (n + group - 1) / group * group;
	return n ? n : group;
}

static void item_id(char *buf, size_t i)
{
	snprintf(buf, 16, "it%012llu", (unsigned long long)(i % 1000000000000ull));
}

static int run_sv(const struct cfg *c, const char *path, enum kind k, int nosync, size_t group,
                  size_t n, double *secs)
{
	struct sv_store_opts o;
	sv_store *st = NULL;
	char err[SV_STORE_ERRMSG_MAX], id[16];
	float *x = calloc(c->d_in, sizeof *x);
	uint64_t t0, seq;
	int rc;
	if (!x)
		return -ENOMEM;
	for (uint32_t j = 0; j < c->d_in; j++)
		x[j] = (float)j * 0.001f;
	sv_store_opts_default(&o);
	o.path = path;
	o.d_in = c->d_in;
	o.d_out = 64;
	o.sync = nosync ? SV_STORE_SYNC_NONE : SV_STORE_SYNC_FULL;
	o.map_size = (size_t)1 << 30;
	rc = sv_store_open(&st, &o, err, sizeof err);
	if (rc) {
		fprintf(stderr, "sv-bench store: %s\n", err);
		free(x);
		return rc;
	}
	t0 = bench_now_ns();
	for (size_t i = 0; i < n && rc == 0; i += group) {
		sv_store_txn *t = NULL;
		rc = sv_store_txn_begin(st, &t);
		for (size_t j = i; j < i + group && rc == 0; j++) {
			item_id(id, j);
			if (k == KIND_ITEMS) {
				rc = sv_store_item_put(t, id, 14, x, 0);
			} else {
				struct sv_store_pair p = {0};
				p.id_a = id;
				p.len_a = 14;
				p.id_b = "it000000000001";
				p.len_b = 14;
				p.label = (uint8_t)(j & 1);
				if (k == KIND_PAIRS) {
					p.client = "bench-client";
					p.client_len = 12;
					p.client_seq = j;
				}
				rc = sv_store_pair_append(t, &p, &seq);
			}
		}
		if (rc == 0)
			rc = sv_store_txn_commit(t);
		else
			sv_store_txn_abort(t);
	}
	*secs = (double)(bench_now_ns() - t0) * 1e-9;
	if (rc)
		fprintf(stderr, "sv-bench store: %s: %s\n", sv_strerror(rc), sv_store_errmsg(st));
	sv_store_close(st);
	free(x);
	return rc;
}

static int run_raw(const struct cfg *c, const char *path, enum kind k, int nosync, size_t group,
                   size_t n, double *secs)
{
	MDB_env *env = NULL;
	MDB_dbi dbi;
	MDB_txn *txn;
	size_t vlen =
	    k == KIND_ITEMS ? 8 + (size_t)c->d_in * 4 : 24 + 14 + 14 + (k == KIND_PAIRS ? 12 : 0);
	unsigned char *val = calloc(1, vlen);
	unsigned char kb[16];
	uint64_t t0;
	int rc;
	if (!val)
		return -ENOMEM;
	mkdir(path, 0700);
	rc = mdb_env_create(&env);
	if (!rc)
		rc = mdb_env_set_mapsize(env, (size_t)1 << 30);
	if (!rc)
		rc = mdb_env_open(env, path, MDB_NOTLS | (nosync ? MDB_NOSYNC : 0), 0600);
	if (!rc)
		rc = mdb_txn_begin(env, NULL, 0, &txn);
	if (!rc)
		rc = mdb_dbi_open(txn, NULL, 0, &dbi);
	if (!rc)
		rc = mdb_txn_commit(txn);
	t0 = bench_now_ns();
	for (size_t i = 0; i < n && rc == 0; i += group) {
		rc = mdb_txn_begin(env, NULL, 0, &txn);
		for (size_t j = i; j < i + group && rc == 0; j++) {
			MDB_val key, v = {vlen, val};
			if (k == KIND_ITEMS) {
				item_id((char *)kb, j);
				key.mv_size = 14;
			} else {
				uint64_t be = __builtin_bswap64(j + 1);
				memcpy(kb, &be, 8);
				key.mv_size = 8;
			}
			key.mv_data = kb;
			rc = mdb_put(txn, dbi, &key, &v, k == KIND_ITEMS ? 0 : MDB_APPEND);
		}
		if (rc == 0)
			rc = mdb_txn_commit(txn);
		else
			mdb_txn_abort(txn);
	}
	*secs = (double)(bench_now_ns() - t0) * 1e-9;
	if (rc)
		fprintf(stderr, "sv-bench store: raw LMDB: %s\n", mdb_strerror(rc));
	mdb_env_close(env);
	free(val);
	return rc;
}

int bench_store(int argc, char **argv)
{
	static const size_t groups[] = {1, 64, 512};
	struct cfg c = {"/tmp", 784, 1.0, 0};
	char base[4096], path[4200];
	int first = 1, rc = 0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			printf(
			    "usage: sv-bench store [--dir DIR] [--d-in N] [--scale F] [--json]\n"
			    "  items/s and pairs/s committed at group sizes 1, 64, 512 with sync\n"
			    "  full and none, beside raw LMDB puts of the same sizes; best of %d.\n"
			    "  --dir DIR   where the scratch environments go (default /tmp)\n"
			    "  --d-in N    item vector length (default 784)\n"
			    "  --scale F   multiply the record counts (default 1)\n"
			    "  --json      one JSON object instead of the table\n",
			    ROUNDS);
			return 0;
		}
		if (!strcmp(argv[i], "--json"))
			c.json = 1;
		else if (!strcmp(argv[i], "--dir") && i + 1 < argc)
			c.dir = argv[++i];
		else if (!strcmp(argv[i], "--d-in") && i + 1 < argc)
			c.d_in = (uint32_t)strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--scale") && i + 1 < argc)
			c.scale = strtod(argv[++i], NULL);
		else {
			fprintf(
			    stderr,
			    "usage: sv-bench store [--dir DIR] [--d-in N] [--scale F] [--json]\n");
			return 2;
		}
	}
	if (!c.d_in || !(c.scale > 0)) {
		fprintf(stderr, "sv-bench store: --d-in and --scale must be positive\n");
		return 2;
	}
	snprintf(base, sizeof base, "%s/sv-bench-store-XXXXXX", c.dir);
	if (!mkdtemp(base)) {
		fprintf(stderr, "sv-bench store: mkdtemp %s: %s\n", base, strerror(errno));
		return 1;
	}
	if (c.json)
		printf("{\"bench\":\"store\",\"d_in\":%u,\"results\":[", c.d_in);
	else
		printf("%-6s %-5s %6s %7s %12s %12s %7s\n", "kind", "sync", "group", "n",
		       "store rec/s", "raw rec/s", "ratio");
	for (int k = 0; k < 3 && rc == 0; k++) {
		for (int nosync = 0; nosync < 2 && rc == 0; nosync++) {
			for (size_t g = 0; g < 3 && rc == 0; g++) {
				size_t n = count_for(&c, nosync, groups[g], (enum kind)k);
				double ts = 1e300, tr = 1e300;
				/* alternate, best of ROUNDS: fsync times here are noisy */
				for (int round = 0; round < ROUNDS && rc == 0; round++) {
					double s = 0, r = 0;
					snprintf(path, sizeof path, "%s/sv", base);
					rc = run_sv(&c, path, (enum kind)k, nosync, groups[g], n,
					            &s);
					rm_tree(path);
					snprintf(path, sizeof path, "%s/raw", base);
					if (rc == 0)
						rc = run_raw(&c, path, (enum kind)k, nosync,
						             groups[g], n, &r);
					rm_tree(path);
					ts = s < ts ? s : ts;
					tr = r < tr ? r : tr;
				}
				if (rc)
					break;
				double rs = (double)n / ts, rr = (double)n / tr;
				if (c.json)
					printf("%s{\"kind\":\"%s\",\"sync\":\"%s\",\"group\":%zu,"
					       "\"n\":%zu,\"store_per_s\":%.1f,\"raw_per_s\":%.1f,"
					       "\"ratio\":%.3f}",
					       first ? "" : ",", kind_names[k],
					       nosync ? "none" : "full", groups[g], n, rs, rr,
					       rs / rr);
				else
					printf("%-6s %-5s %6zu %7zu %12.0f %12.0f %7.3f\n",
					       kind_names[k], nosync ? "none" : "full", groups[g],
					       n, rs, rr, rs / rr);
				first = 0;
				fflush(stdout);
			}
		}
	}
	if (c.json)
		printf("]}\n");
	rm_tree(base);
	return rc ? 1 : 0;
}
