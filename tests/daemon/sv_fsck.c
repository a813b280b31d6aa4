/* sv_fsck - check a stopped daemon's store against simverify's invariants.
 *
 *     sv_fsck STORE_DIR [--clients]
 *
 * Opens the store with sv/store.h (dims taken from the store) and checks:
 *   - the pair log runs 1..last_seq without a gap, its count equals the
 *     store's pair count, every record has a 0/1 label and ids of 1..255
 *     bytes (daemon control records, ids "\0sv-cut" and "\0sv-fil" of
 *     sv/journal.h, are counted apart);
 *   - no (client id, client seq) appears twice in the log;
 *   - checkpoints: versions ascending, at most one active, the active one
 *     readable, every applied_seq <= last_seq, every W finite;
 *   - items and vectors agree (sv_store_vec_check): every item names a
 *     whole vector of d_in floats no other item names, and every vector
 *     record belongs to an item (none left behind by a replace or a
 *     delete).
 * Prints one summary line; with --clients also one line per pair that
 * carries a client key: "client-hex client_seq seq" (for exactly-once
 * checks).  Exit 0 when every invariant holds, 1 when one fails, 2 when the
 * store cannot be opened.  LMDB's own page checks are mdb_stat's job.
 */
#include <math.h>
#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>

#include "sv/error.h"
#include "sv/store.h"

struct ckey {
	uint8_t id[SV_STORE_ID_MAX];
	size_t len;
	uint64_t cseq, seq;
};

static int cmp_ckey(const void *a, const void *b)
{
	const struct ckey *x = a, *y = b;
	int c;

	if (x->len != y->len)
		return x->len < y->len ? -1 : 1;
	c = memcmp(x->id, y->id, x->len);
	if (c)
		return c;
	return x->cseq < y->cseq ? -1 : x->cseq > y->cseq;
}

static int bad;

static void fail(const char *what, unsigned long long a, unsigned long long b)
{
	if (bad++ < 20)
		fprintf(stderr, "sv_fsck: %s (%llu, %llu)\n", what, a, b);
}

int main(int argc, char **argv)
{
	struct sv_store_opts o;
	struct sv_store_stat st;
	struct sv_store_pair p;
	sv_store *s = NULL;
	sv_store_read *r = NULL;
	sv_store_cursor *c = NULL;
	struct ckey *keys = NULL;
	struct sv_store_version *vers = NULL;
	size_t nkeys = 0, capkeys = 0, nv = 0;
	uint64_t expect = 1, n = 0, control = 0, active = 0;
	uint32_t d_in, d_out;
	char err[SV_STORE_ERRMSG_MAX] = "";
	struct stat sb;
	int dump = argc > 2 && strcmp(argv[2], "--clients") == 0, rc, nactive = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: sv_fsck STORE_DIR [--clients]\n");
		return 2;
	}
	if (stat(argv[1], &sb) < 0 || !S_ISDIR(sb.st_mode)) {
		/* opening would create an empty store there */
		fprintf(stderr, "sv_fsck: %s: %s\n", argv[1],
		        errno == ENOENT ? "no such store directory" : "not a store directory");
		return 1;
	}
	sv_store_opts_default(&o);
	o.path = argv[1];
	o.map_size = 1 << 20;
	rc = sv_store_open(&s, &o, err, sizeof(err));
	if (rc == 0)
		rc = sv_store_read_begin(s, &r);
	if (rc == 0)
		rc = sv_store_stat(r, &st);
	if (rc < 0) {
		fprintf(stderr, "sv_fsck: cannot open %s: %s %s\n", argv[1], sv_strerror(rc), err);
		sv_store_read_end(r);
		sv_store_close(s);
		return 2;
	}
	sv_store_dims(s, &d_in, &d_out);
	/* retention deletes from the front: the log is contiguous from its first row */
	expect = st.first_seq ? st.first_seq : 1;

	rc = sv_store_cursor_open(r, 1, &c);
	while (rc == 0 && (rc = sv_store_cursor_next(c, &p)) == 0) {
		if (p.seq != expect)
			fail("log gap: seq, expected", p.seq, expect);
		expect = p.seq + 1;
		n++;
		if (p.label > 1)
			fail("label not 0/1 at seq", p.seq, p.label);
		if (p.len_a < 1 || p.len_a > 255 || p.len_b < 1 || p.len_b > 255)
			fail("id length out of range at seq", p.seq, p.len_a);
		if (p.len_a == 7 && (memcmp(p.id_a, "\0sv-cut", 7) == 0 ||
		                     memcmp(p.id_a, "\0sv-fil", 7) == 0))
			control++;
		if (p.client_len > 0) {
			if (nkeys == capkeys) {
				capkeys = capkeys ? 2 * capkeys : 1024;
				keys = realloc(keys, capkeys * sizeof(*keys));
				if (keys == NULL)
					return 2;
			}
			memcpy(keys[nkeys].id, p.client, p.client_len);
			keys[nkeys].len = p.client_len;
			keys[nkeys].cseq = p.client_seq;
			keys[nkeys].seq = p.seq;
			nkeys++;
		}
	}
	if (rc != SV_ERR_NOTFOUND)
		fail("pair log unreadable, error", (unsigned long long)-rc, 0);
	sv_store_cursor_close(c);
	if (n != st.pairs)
		fail("log records vs pair count", n, st.pairs);
	if (n && expect - 1 != st.last_seq)
		fail("last record vs last_seq", expect - 1, st.last_seq);

	if (nkeys > 1)
		qsort(keys, nkeys, sizeof(*keys), cmp_ckey);
	for (size_t i = 1; i < nkeys; i++)
		if (cmp_ckey(&keys[i - 1], &keys[i]) == 0)
			fail("client key logged twice: seqs", keys[i - 1].seq, keys[i].seq);

	vers = calloc(st.models + 1, sizeof(*vers));
	rc = vers ? sv_store_versions(r, vers, st.models + 1, &nv) : -1;
	if (rc < 0 || nv != st.models)
		fail("version list unreadable or short", nv, st.models);
	for (size_t i = 0; rc == 0 && i < nv; i++) {
		struct sv_store_model m;
		float *w = malloc((size_t)d_in * d_out * sizeof(float));

		if (i && vers[i].version <= vers[i - 1].version)
			fail("versions not ascending", vers[i - 1].version, vers[i].version);
		if (vers[i].active) {
			nactive++;
			active = vers[i].version;
		}
		if (vers[i].applied_seq > st.last_seq)
			fail("checkpoint applied_seq beyond the log", vers[i].applied_seq, st.last_seq);
		if (w == NULL || sv_store_model_get(r, vers[i].version, &m) < 0) {
			fail("checkpoint unreadable", vers[i].version, 0);
		} else {
			sv_store_model_weights(s, &m, w);
			for (size_t k = 0; k < (size_t)d_in * d_out; k++)
				if (!isfinite(w[k])) {
					fail("non-finite weight in version", vers[i].version, k);
					break;
				}
		}
		free(w);
	}
	if (nactive > 1)
		fail("more than one active version", (unsigned long long)nactive, 0);
	if (nv > 0 && nactive == 0)
		fail("checkpoints but none active", nv, 0);

	{
		struct sv_store_vec_check ck;
		rc = sv_store_vec_check(r, &ck);
		if (rc < 0) {
			fail("vector check failed, error", (unsigned long long)-rc, 0);
		} else {
			if (ck.items != st.items)
				fail("items checked vs item count", ck.items, st.items);
			if (ck.bad_items)
				fail("items of another format or dim", ck.bad_items, 0);
			if (ck.shared)
				fail("items naming another item's vector", ck.shared, 0);
			if (ck.missing)
				fail("items whose vector is missing or not whole", ck.missing, 0);
			if (ck.orphans)
				fail("vectors no item names", ck.orphans, ck.vectors);
			if (ck.bad_vectors || ck.bad_records)
				fail("malformed vector records", ck.bad_vectors, ck.bad_records);
		}
	}

	if (dump)
		for (size_t i = 0; i < nkeys; i++) {
			for (size_t j = 0; j < keys[i].len; j++)
				printf("%02x", keys[i].id[j]);
			printf(" %llu %llu\n", (unsigned long long)keys[i].cseq,
			       (unsigned long long)keys[i].seq);
		}
	printf("%s: %llu records (%llu control), %zu client keys, %llu items, %zu versions, active v%llu, last_seq %llu\n",
	       bad ? "FAIL" : "ok", (unsigned long long)n, (unsigned long long)control, nkeys,
	       (unsigned long long)st.items, nv, (unsigned long long)active,
	       (unsigned long long)st.last_seq);
	free(keys);
	free(vers);
	sv_store_read_end(r);
	sv_store_close(s);
	return bad ? 1 : 0;
}
