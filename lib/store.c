/* store.c - the LMDB store (see sv/store.h for the design and record layouts).
 *
 * What is here: opening and checking the environment, schema migrations,
 * write groups with grow-and-replay on MDB_MAP_FULL, vector records,
 * checkpoint pruning, readers and walks, the pair-log cursor, hot backup,
 * the items/vectors check.  What is not: anything about training; the
 * blobs the caller hands in are stored as they are.
 */
#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bytes.h"
#include "sv/error.h"
#include "sv/store.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "store records are written little-endian with memcpy");

#define FMT 1
#define ITEM_HDR 8   /* an item put's buffered record: fmt, flags, dim, then floats */
#define ITEM_FMT 2   /* the items value of an item stored by id: it names its vector */
#define ITEM_LEN 16  /* u16 fmt, u16 flags, u32 dim, u64 vector id */
#define ITEM_FMT_INLINE 3  /* an inline item's (schema 4): also its reference count */
#define ITEM_LEN_INLINE 24 /* ITEM_LEN, u64 log-row sides naming it */
#define VEC_CHUNK_BITS 16 /* a vector record's key: u64 BE (vector id << 16 | chunk) */

/* Which vectors database holds an item's vector: inline ones (content ids,
 * sv_store_id_reserved) apart, so each database is appended in order and
 * the log's inline vectors, dying oldest first, free whole pages. */
enum vec_space { VEC_STORED = 0, VEC_INLINE = 1 };

static enum vec_space vec_space_of(const void *id, size_t len)
{
	return sv_store_id_reserved(id, len) ? VEC_INLINE : VEC_STORED;
}
#define PAIR_HDR 24
#define MODEL_HDR 80
#define META_LEN 32
#define CKEY_MAX (1 + SV_STORE_ID_MAX + 8)

enum op_kind {
	OP_KIND_ITEM_PUT = 1,
	OP_KIND_ITEM_DEL = 2,
	OP_KIND_PAIR = 3,
	OP_KIND_CKPT = 4,
	OP_KIND_ACTIVE = 5,
	OP_KIND_ITEM_NEW = 6, /* ITEM_PUT with MDB_NOOVERWRITE */
	OP_KIND_TRIM = 7,     /* retention: the oldest log rows */
	OP_KIND_EXPIRE = 8,   /* idle clients' de-duplication state */
	OP_KIND_PURGE = 9,    /* the log rows naming one item */
	OP_KIND_MARK = 10,    /* a named u64 in meta ("mark." + name) */
};

/* Producer (client) records: u16 fmt, u16 0, u32 0, u64 hwm, u64 last_ns. */
#define PROD_LEN 24
/* Window entries dropped per append that advances a client's hwm: more than
 * one, so a backlog left by a jump (or a migration) drains. */
#define WINDOW_TRIM_PER_APPEND 4

struct sv_store {
	MDB_env *env;
	MDB_dbi items, pairs, clients, models, meta, producers, refs;
	MDB_dbi vecs[2]; /* the vectors of stored items, of inline ones (VEC_STORED, VEC_INLINE) */
	uint32_t d_in, d_out;
	uint32_t vec_chunks; /* records a vector is written in (vec_layout) */
	uint32_t psize;      /* LMDB's page size */
	size_t map_size, max_map_size;
	uint32_t keep_versions;
	uint32_t dedup_depth;
	uint64_t trim_pin;    /* log rows from this seq on are kept (0: none) */
	uint64_t pin_version, pin_version2; /* checkpoints never pruned (0: none) */
	int migrate; /* the schema opened at, when older than SV_STORE_SCHEMA (else 0) */
	pthread_rwlock_t map_lock; /* shared: readers, backup; exclusive: remap */
	_Atomic(struct vec_trail *) trail; /* the last stored walk's; NULL while one runs */
	int writing;               /* a group is open */
	char errmsg[SV_STORE_ERRMSG_MAX];
};

/* One buffered operation: kind, two byte strings a and b, one number. */
struct op_hdr {
	uint32_t kind;
	uint32_t alen, blen;
	uint32_t pad;
	uint64_t num;
};

struct sv_store_txn {
	sv_store *st;
	MDB_txn *txn;
	int rc;   /* first fatal error; the group is dead */
	int ckpt; /* a checkpoint was written: prune at commit */
	int adds; /* an op that adds data: the map may not grow into the reserve */
	uint64_t count; /* a purge's rows deleted */
	uint64_t next_seq, next_version;
	uint64_t next_vec[2]; /* the vector id the next item put gets, in vecs[space] */
	MDB_cursor *vc[2];    /* on vecs[space] in txn, kept at its end for appends;
	                       * LMDB frees them with txn (txn_ended) */
	unsigned char *ops; /* op_hdr + a + b, 8-byte aligned, in order */
	size_t ops_len, ops_cap;
	struct pend_ref *pref; /* appends naming a content id not stored yet */
	size_t pref_n, pref_cap;
};

/* Log-row sides naming a content id whose item this group has not put
 * yet: the daemon appends a row before its inline items (a resent row is
 * found duplicate first).  The item's put takes the count; what no put
 * takes by the commit names nothing stored, and is dropped. */
struct pend_ref {
	unsigned char id[SV_STORE_ID_MAX];
	size_t len;
	uint64_t n;
};

/* Where each stored vector's records lay in the map when the last stored
 * walk read them: at[id - lo] holds the page and the offset of each of its
 * first TRAIL_RECS records.  The next walk, copying record j of a vector,
 * prefetches record j of the vector TRAIL_AHEAD on (with its node header
 * and its page's header, which the cursor reads first) where the trail saw
 * it; without an entry it falls back to the VEC_AHEAD guess.  In a store
 * written in scattered id order the vectors' pages lie wherever LMDB's free
 * pages were, so the guess is wrong for about a quarter of the pages; the
 * trail is exact until those pages are written again, and a stale entry
 * costs only a wrong prefetch's bandwidth.  Paired in one process on 1M
 * items written in a scattered order, the walk took 0.56-0.62 s with it
 * against 0.89-1.03 s with the guess.  24 bytes a stored vector, kept by
 * the store between walks. */
#define TRAIL_RECS 4 /* records a vector the trail notes (the rest: the guess) */
struct trail_ent {
	int32_t pg[TRAIL_RECS];   /* pages on from base */
	uint16_t off[TRAIL_RECS]; /* the record's bytes in its page (0: not seen) */
};

struct vec_trail {
	uint64_t lo, n;
	struct trail_ent *at;
	const char *base; /* a page of the map (NULL: none seen yet) */
	unsigned shift;   /* log2 of the page size */
	size_t map_size;  /* the map's when base was taken: a remap moves it */
};
#define TRAIL_AHEAD 8

static void trail_free(struct vec_trail *t)
{
	if (t)
		free(t->at);
	free(t);
}

/* A cursor on the vectors database and where it stands: when ok, it sits
 * on the record with key `at` (the one after the vector read last), so a
 * read of the vector stored next in order costs no descent. */
struct vec_cursor {
	MDB_cursor *c;
	uint64_t at;
	MDB_val k, v; /* the record at `at` */
	int ok;
	size_t psize; /* the page size (0: no prefetching) */
	struct vec_trail *trail; /* a stored walk's, read ahead and written behind */
};

/* Records appended in order sit on pages mostly in file order: while a
 * record is copied, ask for the bytes VEC_AHEAD pages on (a wrong guess
 * costs only bandwidth), so a walk's copies do not wait on memory page
 * after page. */
#define VEC_AHEAD 6

static void vec_prefetch(const struct vec_cursor *vc, const void *rec, size_t len)
{
	const char *p = (const char *)rec + VEC_AHEAD * vc->psize;
	for (size_t o = 0; o < len; o += 64)
		__builtin_prefetch(p + o);
}

struct sv_store_read {
	sv_store *st;
	MDB_txn *txn;
	struct vec_cursor vc[2]; /* on vecs[space], opened at the first vector read */
	float *walk_buf;      /* d_in floats: the vector a walk hands to its callback */
	void **bufs; /* checkpoint records put together from chunks; freed at the end */
	size_t nbufs;
};

struct sv_store_cursor {
	sv_store_read *r;
	MDB_cursor *cur;
	uint64_t from;
	int started;
};

/* ---- small helpers ---- */


static void put_be64(unsigned char *p, uint64_t v)
{
	v = __builtin_bswap64(v);
	memcpy(p, &v, 8);
}

static uint64_t get_be64(const unsigned char *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return __builtin_bswap64(v);
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

__attribute__((format(printf, 3, 4))) static void say(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	if (!buf || !len)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
}

/* LMDB reports OS failures as positive errno values: make them -errno. */
static int neg(int rc)
{
	return rc > 0 ? -rc : rc;
}

static void lmdb_say(sv_store *st, const char *what, int rc)
{
	say(st->errmsg, sizeof st->errmsg, "%s: %s (%d)", what, sv_strerror(neg(rc)), neg(rc));
}

/* ---- options ---- */

void sv_store_opts_default(struct sv_store_opts *o)
{
	memset(o, 0, sizeof *o);
	o->sync = SV_STORE_SYNC_FULL;
	o->map_size = (size_t)64 << 20;
	o->max_map_size = (size_t)64 << 30;
	o->keep_versions = 5;
	o->max_readers = 126;
	o->dedup_depth = 65536;
}

/* ---- map growth ---- */

/* The room past max_map_size that only groups which add nothing (trims,
 * expiry, purges, item deletes) may grow into: LMDB needs fresh pages to
 * delete, so without it a map filled to the last page could never shrink. */
static size_t reserve(const sv_store *st)
{
	size_t r = st->max_map_size / 64;
	return r < SV_STORE_RESERVE_MIN ? SV_STORE_RESERVE_MIN : r;
}

/* Grow the map (no write transaction may be open in st), up to
 * max_map_size for a group that adds data, and into the reserve for one
 * that only deletes.  Returns 0, SV_ERR_STORE_FULL or an LMDB code. */
static int grow(sv_store *st, int adds)
{
	size_t cap = st->max_map_size + (adds ? 0 : reserve(st)), want;
	int rc;
	if (st->map_size >= cap) {
		say(st->errmsg, sizeof st->errmsg,
		    "store map is full at %zu bytes = store.max_map_size; raise store.max_map_size "
		    "or let retention (store.retain_pairs, store.retain_age) free room",
		    st->max_map_size);
		return SV_ERR_STORE_FULL;
	}
	want = st->map_size > cap / 2 ? cap : st->map_size * 2;
	pthread_rwlock_wrlock(&st->map_lock);
	rc = mdb_env_set_mapsize(st->env, want);
	if (rc == 0) {
		MDB_envinfo info;
		mdb_env_info(st->env, &info);
		st->map_size = info.me_mapsize;
	}
	pthread_rwlock_unlock(&st->map_lock);
	if (rc)
		lmdb_say(st, "growing the map", rc);
	return neg(rc);
}

/* Adopt a size another process set (MDB_MAP_RESIZED). */
static int adopt_size(sv_store *st)
{
	MDB_envinfo info;
	int rc;
	pthread_rwlock_wrlock(&st->map_lock);
	rc = mdb_env_set_mapsize(st->env, 0);
	mdb_env_info(st->env, &info);
	st->map_size = info.me_mapsize;
	pthread_rwlock_unlock(&st->map_lock);
	return neg(rc);
}

static int begin_write(sv_store *st, MDB_txn **txn)
{
	int rc = mdb_txn_begin(st->env, NULL, 0, txn);
	if (rc == MDB_MAP_RESIZED) {
		rc = adopt_size(st);
		if (rc == 0)
			rc = mdb_txn_begin(st->env, NULL, 0, txn);
	}
	if (rc)
		lmdb_say(st, "beginning a write transaction", rc);
	return neg(rc);
}

/* ---- open / close ---- */

static int meta_check(sv_store *st, MDB_txn *txn, const struct sv_store_opts *o, char *err,
                      size_t errlen)
{
	MDB_val k = {4, (void *)"meta"}, v;
	unsigned char rec[META_LEN];
	uint32_t schema, d_in, d_out;
	uint64_t fp;
	int rc = mdb_get(txn, st->meta, &k, &v);
	if (rc == MDB_NOTFOUND) {
		uint64_t one = 1;
		MDB_val nk = {12, (void *)"next_version"}, nv = {8, &one};
		if (!o->d_in || !o->d_out) {
			say(err, errlen, "new store at %s needs d_in and d_out", o->path);
			return SV_ERR_RANGE;
		}
		memset(rec, 0, sizeof rec);
		sv_put16(rec, FMT);
		sv_put32(rec + 4, SV_STORE_SCHEMA);
		sv_put32(rec + 8, o->d_in);
		sv_put32(rec + 12, o->d_out);
		sv_put64(rec + 16, now_ns());
		sv_put64(rec + 24, o->settings_fp);
		v.mv_size = sizeof rec;
		v.mv_data = rec;
		rc = mdb_put(txn, st->meta, &k, &v, 0);
		if (rc == 0)
			rc = mdb_put(txn, st->meta, &nk, &nv, 0);
		if (rc)
			say(err, errlen, "writing store meta: %s", mdb_strerror(rc));
		st->d_in = o->d_in;
		st->d_out = o->d_out;
		return neg(rc);
	}
	if (rc) {
		say(err, errlen, "reading store meta: %s", mdb_strerror(rc));
		return neg(rc);
	}
	if (v.mv_size < META_LEN) {
		say(err, errlen, "store meta record is %zu bytes, expected %d", v.mv_size,
		    META_LEN);
		return SV_ERR_CORRUPT;
	}
	schema = sv_get32((unsigned char *)v.mv_data + 4);
	d_in = sv_get32((unsigned char *)v.mv_data + 8);
	d_out = sv_get32((unsigned char *)v.mv_data + 12);
	fp = sv_get64((unsigned char *)v.mv_data + 24);
	if (schema >= 1 && schema < SV_STORE_SCHEMA) {
		st->migrate = (int)schema; /* sv_store_open brings it to SV_STORE_SCHEMA */
	} else if (schema != SV_STORE_SCHEMA) {
		say(err, errlen, "store has schema %u, this build reads schema %u", schema,
		    SV_STORE_SCHEMA);
		return SV_ERR_STORE_SCHEMA;
	}
	if (o->d_in || o->d_out) {
		if (d_in != o->d_in || d_out != o->d_out) {
			say(err, errlen, "store has d_in=%u d_out=%u, config says d_in=%u d_out=%u",
			    d_in, d_out, o->d_in, o->d_out);
			return SV_ERR_STORE_DIMS;
		}
	}
	if (o->settings_fp && fp != o->settings_fp) {
		say(err, errlen, "store has settings fingerprint %016llx, config gives %016llx",
		    (unsigned long long)fp, (unsigned long long)o->settings_fp);
		return SV_ERR_STORE_SETTINGS;
	}
	st->d_in = d_in;
	st->d_out = d_out;
	return 0;
}

static int open_dbs(sv_store *st, MDB_txn *txn)
{
	int rc = mdb_dbi_open(txn, "items", MDB_CREATE, &st->items);
	if (!rc)
		rc = mdb_dbi_open(txn, "pairs", MDB_CREATE, &st->pairs);
	if (!rc)
		rc = mdb_dbi_open(txn, "clients", MDB_CREATE, &st->clients);
	if (!rc)
		rc = mdb_dbi_open(txn, "models", MDB_CREATE, &st->models);
	if (!rc)
		rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &st->meta);
	if (!rc)
		rc = mdb_dbi_open(txn, "producers", MDB_CREATE, &st->producers);
	if (!rc)
		rc = mdb_dbi_open(txn, "refs", MDB_CREATE, &st->refs);
	if (!rc)
		rc = mdb_dbi_open(txn, "vecs", MDB_CREATE, &st->vecs[VEC_STORED]);
	if (!rc)
		rc = mdb_dbi_open(txn, "ivecs", MDB_CREATE, &st->vecs[VEC_INLINE]);
	return neg(rc);
}

/* ---- vector records ----
 *
 * A vector (d_in float32) lives in vecs (ivecs: an inline one) under its vector id,
 * in vec_chunks records of (nearly) equal size keyed u64 BE (id << 16 |
 * chunk): each record fits a leaf page, ids are given out in increasing
 * order and written with MDB_APPEND, so leaf pages fill whole and a walk in
 * id order reads them in order.  The items value names the vector id.
 *
 * The number of records is the writer's choice, made from the page size:
 * the one that packs the most vector bytes into a page (the fewest pages
 * per vector), fewer records on a tie.  A reader needs no count: a
 * vector's records are the run of keys with its id, and their bytes must
 * add up to dim floats.  784 floats on 4 KB pages: 4 records of 784 bytes,
 * 5 records to a page, 4,096 * 4 / 5 = 3,277 bytes of pages a vector
 * (1.045x; the items B-tree adds about 55 more). */
#define PAGE_HDR 16  /* LMDB's page header */
#define NODE_HDR 8   /* LMDB's leaf node header */
#define VEC_KEY 8

static uint32_t vec_layout(uint32_t psize, size_t bytes)
{
	size_t room = psize - PAGE_HDR, nodemax = (room / 2) & ~(size_t)1;
	uint64_t best_k = 0, best_per = 1;

	for (size_t n = 2; n <= 64; n++) { /* records to a page */
		size_t cmax = ((room / n - 2) & ~(size_t)1) - NODE_HDR - VEC_KEY, c, per;
		uint64_t k;
		cmax &= ~(size_t)3; /* whole floats */
		if (cmax < 4 || NODE_HDR + VEC_KEY + cmax > nodemax)
			continue;
		k = (bytes + cmax - 1) / cmax;
		if (k == 0)
			k = 1;
		if (k >= ((uint64_t)1 << VEC_CHUNK_BITS))
			continue;
		c = (size_t)((bytes + k - 1) / k + 3) & ~(size_t)3;
		per = room / (2 + ((NODE_HDR + VEC_KEY + c + 1) & ~(size_t)1));
		/* pages per vector k / per: compare k * best_per with best_k * per */
		if (best_k == 0 || k * best_per < best_k * per ||
		    (k * best_per == best_k * per && k < best_k)) {
			best_k = k;
			best_per = per;
		}
	}
	return best_k ? (uint32_t)best_k : 1;
}

static void vec_key(unsigned char kb[VEC_KEY], uint64_t vid, uint32_t chunk)
{
	put_be64(kb, vid << VEC_CHUNK_BITS | chunk);
}

/* Write vector vid (n bytes at x) in st->vec_chunks records, appended
 * through c (a cursor on vecs; vid above every id stored).  0 or an LMDB
 * code. */
static int vec_put(sv_store *st, MDB_cursor *c, uint64_t vid, const void *x, size_t n)
{
	size_t k = st->vec_chunks, off = 0;
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < k; i++) {
		unsigned char kb[VEC_KEY];
		size_t len = (n - off) / (k - i); /* equal shares, the last ones larger */
		MDB_val key = {VEC_KEY, kb}, val = {len, (unsigned char *)x + off};
		vec_key(kb, vid, (uint32_t)i);
		rc = mdb_cursor_put(c, &key, &val, MDB_APPEND);
		off += len;
	}
	return rc;
}

/* Delete vector vid's records through c.  0 (also when there were none) or
 * an LMDB code. */
static int vec_del(MDB_cursor *c, uint64_t vid)
{
	unsigned char kb[VEC_KEY];
	MDB_val k = {VEC_KEY, kb}, v;
	int rc;
	vec_key(kb, vid, 0);
	rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
	while (rc == 0 && k.mv_size == VEC_KEY && get_be64(k.mv_data) >> VEC_CHUNK_BITS == vid) {
		rc = mdb_cursor_del(c, 0);
		if (rc == 0) {
			k.mv_size = VEC_KEY;
			k.mv_data = kb;
			rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
		}
	}
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/* The trail's entry for vid, or NULL when it has none. */
static const struct trail_ent *trail_get(const struct vec_trail *t, uint64_t vid)
{
	if (!t || vid < t->lo || vid - t->lo >= t->n || t->at[vid - t->lo].off[0] == 0)
		return NULL;
	return &t->at[vid - t->lo];
}

/* Prefetch record j of e (len bytes, as the one being read), its node
 * header, and its page's header, which the cursor reads first.  0, or -1
 * when e does not know that record. */
static int trail_prefetch(const struct vec_trail *t, const struct trail_ent *e, size_t j,
                          size_t len)
{
	const char *page, *from;
	if (j >= TRAIL_RECS || e->off[j] == 0)
		return -1;
	page = t->base + (ptrdiff_t)e->pg[j] * ((ptrdiff_t)1 << t->shift);
	from = page + e->off[j] - NODE_HDR - VEC_KEY;
	__builtin_prefetch(page);
	for (size_t o = 0; o < len + NODE_HDR + VEC_KEY; o += 64)
		__builtin_prefetch(from + o);
	return 0;
}

/* Note in e record j at rec.  -1 when its page is too far from base. */
static int trail_note(struct vec_trail *t, struct trail_ent *e, size_t j, const char *rec)
{
	uintptr_t mask = ((uintptr_t)1 << t->shift) - 1;
	const char *page = rec - ((uintptr_t)rec & mask);
	ptrdiff_t d;
	if (!t->base)
		t->base = page;
	d = (page - t->base) >> t->shift;
	if (d < INT32_MIN || d > INT32_MAX)
		return -1;
	if (j < TRAIL_RECS) {
		e->pg[j] = (int32_t)d;
		e->off[j] = (uint16_t)((uintptr_t)rec & mask);
	}
	return 0;
}

/* Copy vector vid (n bytes) into out.  Returns 0, SV_ERR_CORRUPT (records
 * missing, or not adding up to n bytes) or an LMDB code. */
static int vec_read(struct vec_cursor *vc, uint64_t vid, void *out, size_t n)
{
	uint64_t want = vid << VEC_CHUNK_BITS;
	unsigned char kb[VEC_KEY];
	MDB_val k = {VEC_KEY, kb}, v;
	struct trail_ent e = {{0}, {0}};
	size_t off = 0, j = 0;
	const struct trail_ent *ahead = trail_get(vc->trail, vid + TRAIL_AHEAD);
	int rc, noted = vc->trail != NULL;
	if (vc->ok && vc->at == want) {
		k = vc->k;
		v = vc->v;
		rc = 0;
	} else {
		put_be64(kb, want);
		rc = mdb_cursor_get(vc->c, &k, &v, MDB_SET_KEY);
	}
	vc->ok = 0;
	if (rc == MDB_NOTFOUND)
		return SV_ERR_CORRUPT;
	while (rc == 0) {
		uint64_t key;
		if (k.mv_size != VEC_KEY)
			return SV_ERR_CORRUPT;
		key = get_be64(k.mv_data);
		if (key >> VEC_CHUNK_BITS != vid) {
			vc->at = key;
			vc->k = k;
			vc->v = v;
			vc->ok = 1;
			break;
		}
		if (v.mv_size > n - off)
			return SV_ERR_CORRUPT;
		if ((!ahead || trail_prefetch(vc->trail, ahead, j, v.mv_size) < 0) && vc->psize)
			vec_prefetch(vc, v.mv_data, v.mv_size);
		memcpy((unsigned char *)out + off, v.mv_data, v.mv_size);
		if (noted)
			noted = trail_note(vc->trail, &e, j, v.mv_data) == 0;
		off += v.mv_size;
		j++;
		rc = mdb_cursor_get(vc->c, &k, &v, MDB_NEXT);
	}
	if (rc && rc != MDB_NOTFOUND)
		return neg(rc);
	if (off != n)
		return SV_ERR_CORRUPT;
	if (noted && vid >= vc->trail->lo && vid - vc->trail->lo < vc->trail->n)
		vc->trail->at[vid - vc->trail->lo] = e;
	return 0;
}

/* The vector id an items value names (schema 3 on), or SV_ERR_CORRUPT. */
static int item_vid(const MDB_val *v, uint64_t *vid)
{
	const unsigned char *p = v->mv_data;
	if (!(v->mv_size == ITEM_LEN && sv_get16(p) == ITEM_FMT) &&
	    !(v->mv_size == ITEM_LEN_INLINE && sv_get16(p) == ITEM_FMT_INLINE))
		return SV_ERR_CORRUPT;
	*vid = sv_get64(p + 8);
	return 0;
}

/* Delete item key and its vector.  Returns 0, MDB_NOTFOUND, SV_ERR_CORRUPT
 * or an LMDB code. */
static int item_remove(sv_store *st, MDB_txn *txn, const MDB_val *key)
{
	MDB_val k = *key, v;
	MDB_cursor *c;
	uint64_t vid;
	int rc = mdb_get(txn, st->items, &k, &v);
	if (rc)
		return rc;
	rc = item_vid(&v, &vid);
	if (rc)
		return rc;
	rc = mdb_del(txn, st->items, &k, NULL);
	if (rc)
		return rc;
	rc = mdb_cursor_open(txn, st->vecs[vec_space_of(key->mv_data, key->mv_size)], &c);
	if (rc)
		return rc;
	rc = vec_del(c, vid);
	mdb_cursor_close(c);
	return rc;
}

/* The last key of dbi, an 8-byte big-endian number, into *out (0 when dbi
 * is empty): the log's last sequence, the last vector record. */
static int last_be64(MDB_txn *txn, MDB_dbi dbi, uint64_t *out)
{
	MDB_cursor *c;
	MDB_val k, v;
	int rc = mdb_cursor_open(txn, dbi, &c);

	if (rc)
		return neg(rc);
	rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
	mdb_cursor_close(c);
	if (rc == MDB_NOTFOUND) {
		*out = 0;
		return 0;
	}
	if (rc || k.mv_size != 8)
		return rc ? neg(rc) : SV_ERR_CORRUPT;
	*out = get_be64(k.mv_data);
	return 0;
}

/* The next vector id: one past the last stored (1 in an empty store). */
static int vec_next_id(sv_store *st, MDB_txn *txn, enum vec_space space, uint64_t *out)
{
	uint64_t last;
	int rc = last_be64(txn, st->vecs[space], &last);

	if (rc == 0)
		*out = (last >> VEC_CHUNK_BITS) + 1;
	return rc;
}

/* ---- checkpoint records ----
 *
 * A checkpoint record (MODEL_HDR, then W, optimizer, settings and
 * calibration) is stored in chunks of MODEL_CHUNK bytes under keys
 * (u64 BE version, u32 BE chunk index): each chunk fits on a leaf page, so
 * a checkpoint never needs a run of contiguous pages.  (Whole records of
 * hundreds of KB each did: freed runs get split by single-page reuse, every
 * new run went to the end of the file, and data.mdb grew by one record per
 * checkpoint for ever.)  Stores written before keep whole records under
 * 8-byte keys; both are read. */
#define MODEL_CHUNK 1900

static void model_key(unsigned char kb[12], uint64_t version, uint32_t chunk)
{
	put_be64(kb, version);
	chunk = __builtin_bswap32(chunk);
	memcpy(kb + 8, &chunk, 4);
}

/* 0, or SV_ERR_CORRUPT for a key of neither form. */
static int model_key_parse(const MDB_val *k, uint64_t *version, uint32_t *chunk)
{
	uint32_t c = 0;
	if (k->mv_size != 8 && k->mv_size != 12)
		return SV_ERR_CORRUPT;
	*version = get_be64(k->mv_data);
	if (k->mv_size == 12)
		memcpy(&c, (const unsigned char *)k->mv_data + 8, 4);
	*chunk = __builtin_bswap32(c);
	return 0;
}

/* The record's total length from its header (MODEL_HDR bytes at p). */
static size_t model_len(const sv_store *st, const unsigned char *p)
{
	return MODEL_HDR + (size_t)st->d_in * st->d_out * sizeof(float) + sv_get32(p + 64) +
	       sv_get32(p + 68) + sv_get32(p + 72);
}

/* The first chunk (or the whole legacy record) of version.  Returns 0,
 * SV_ERR_NOTFOUND, SV_ERR_CORRUPT (shorter than a header) or an LMDB code. */
static int model_head(sv_store *st, MDB_txn *txn, uint64_t version, MDB_val *v)
{
	unsigned char kb[12];
	MDB_val k = {12, kb};
	int rc;
	model_key(kb, version, 0);
	rc = mdb_get(txn, st->models, &k, v);
	if (rc == MDB_NOTFOUND) {
		k.mv_size = 8;
		rc = mdb_get(txn, st->models, &k, v);
	}
	if (rc == MDB_NOTFOUND)
		return SV_ERR_NOTFOUND;
	if (rc)
		return neg(rc);
	return v->mv_size < MODEL_HDR ? SV_ERR_CORRUPT : 0;
}

/* The whole record of version: in the map when it is one value, else put
 * together in *buf (malloc'd; the caller frees it, also on failure). */
static int model_load(sv_store *st, MDB_txn *txn, uint64_t version, MDB_val *v,
                      unsigned char **buf)
{
	unsigned char kb[12];
	MDB_cursor *c;
	MDB_val k = {12, kb}, part;
	size_t n, off;
	int rc = model_head(st, txn, version, v);
	*buf = NULL;
	if (rc)
		return rc;
	n = model_len(st, v->mv_data);
	if (n == v->mv_size)
		return 0;
	if (n < v->mv_size || v->mv_size != MODEL_CHUNK)
		return SV_ERR_CORRUPT;
	*buf = malloc(n);
	if (!*buf)
		return -ENOMEM;
	rc = neg(mdb_cursor_open(txn, st->models, &c));
	if (rc)
		return rc;
	model_key(kb, version, 0);
	rc = mdb_cursor_get(c, &k, &part, MDB_SET_KEY);
	for (off = 0; rc == 0 && off < n;) {
		uint64_t ver;
		uint32_t chunk;
		if (model_key_parse(&k, &ver, &chunk) || ver != version ||
		    chunk != off / MODEL_CHUNK || part.mv_size > n - off ||
		    (part.mv_size != MODEL_CHUNK && off + part.mv_size != n)) {
			rc = SV_ERR_CORRUPT;
			break;
		}
		memcpy(*buf + off, part.mv_data, part.mv_size);
		off += part.mv_size;
		if (off < n)
			rc = mdb_cursor_get(c, &k, &part, MDB_NEXT);
	}
	mdb_cursor_close(c);
	if (rc == MDB_NOTFOUND)
		rc = SV_ERR_CORRUPT; /* chunks missing */
	v->mv_data = *buf;
	v->mv_size = n;
	return neg(rc);
}

/* How many checkpoints are stored. */
static int model_count(sv_store *st, MDB_txn *txn, uint64_t *n)
{
	MDB_cursor *c;
	MDB_val k, v;
	int rc = neg(mdb_cursor_open(txn, st->models, &c));
	*n = 0;
	if (rc)
		return rc;
	while ((rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) == 0) {
		uint64_t ver;
		uint32_t chunk;
		if (model_key_parse(&k, &ver, &chunk)) {
			rc = SV_ERR_CORRUPT;
			break;
		}
		*n += chunk == 0;
	}
	mdb_cursor_close(c);
	return rc == MDB_NOTFOUND ? 0 : neg(rc);
}

/* ---- retention, de-duplication and reference counts ----
 *
 * An inline item's value (ITEM_FMT_INLINE) counts the log-row sides naming
 * it.  Every append that names an id in the inline namespace adds one;
 * every row that retention or a purge deletes drops one, and the item goes
 * with its last reference.  Reference counts, not a sweep: a sweep would
 * read the whole retained log to free one vector.  The count sits in the
 * items value, whose leaf page the item's put dirtied already (until
 * schema 4 a refs database kept them under the same random content ids:
 * a second scattered page write a new inline vector, a third of the
 * inline bytes a group commit wrote). */

/* The pending count of id in t, or NULL. */
static struct pend_ref *pend_ref_find(sv_store_txn *t, const void *id, size_t len)
{
	for (size_t i = 0; i < t->pref_n; i++)
		if (t->pref[i].len == len && memcmp(t->pref[i].id, id, len) == 0)
			return &t->pref[i];
	return NULL;
}

static int pend_ref_add(sv_store_txn *t, const void *id, size_t len)
{
	struct pend_ref *p = pend_ref_find(t, id, len);
	if (p) {
		p->n++;
		return 0;
	}
	if (t->pref_n == t->pref_cap) {
		size_t cap = t->pref_cap ? 2 * t->pref_cap : 8;
		struct pend_ref *np = realloc(t->pref, cap * sizeof *np);
		if (!np)
			return -ENOMEM;
		t->pref = np;
		t->pref_cap = cap;
	}
	memcpy(t->pref[t->pref_n].id, id, len);
	t->pref[t->pref_n].len = len;
	t->pref[t->pref_n++].n = 1;
	return 0;
}

/* Add n (1 or -1) to the count of inline item id.  An item not stored
 * has nothing to keep alive; with t, an add is kept for its put (struct
 * pend_ref).  -1 at a count of 1 or below removes the item. */
static int ref_move(sv_store *st, MDB_txn *txn, sv_store_txn *t, const void *id, size_t len, int n)
{
	MDB_val k = {len, (void *)id}, v;
	unsigned char rec[ITEM_LEN_INLINE];
	uint64_t c;
	int rc = mdb_get(txn, st->items, &k, &v);
	if (rc == MDB_NOTFOUND)
		return t && n > 0 ? pend_ref_add(t, id, len) : 0;
	if (rc)
		return neg(rc);
	if (v.mv_size != ITEM_LEN_INLINE || sv_get16(v.mv_data) != ITEM_FMT_INLINE)
		return SV_ERR_CORRUPT;
	c = sv_get64((const unsigned char *)v.mv_data + ITEM_LEN);
	if (n < 0 && c <= 1) {
		rc = item_remove(st, txn, &k);
		return rc == MDB_NOTFOUND ? 0 : neg(rc);
	}
	memcpy(rec, v.mv_data, sizeof rec);
	sv_put64(rec + ITEM_LEN, c + (uint64_t)(int64_t)n);
	v.mv_size = sizeof rec;
	v.mv_data = rec;
	return neg(mdb_put(txn, st->items, &k, &v, 0));
}

static int ref_drop(sv_store *st, MDB_txn *txn, const void *id, size_t len)
{
	return ref_move(st, txn, NULL, id, len, -1);
}

/* The two ids of a pair record, copied out (the page may change under a
 * delete). */
struct row_ids {
	unsigned char a[SV_STORE_ID_MAX], b[SV_STORE_ID_MAX];
	size_t la, lb;
};

static int row_ids(const MDB_val *v, struct row_ids *out)
{
	const unsigned char *p = v->mv_data;
	if (v->mv_size < PAIR_HDR || v->mv_size < PAIR_HDR + (size_t)p[4] + p[5])
		return SV_ERR_CORRUPT;
	out->la = p[4];
	out->lb = p[5];
	memcpy(out->a, p + PAIR_HDR, out->la);
	memcpy(out->b, p + PAIR_HDR + out->la, out->lb);
	return 0;
}

static int refs_of_row(sv_store *st, MDB_txn *txn, const struct row_ids *r,
                       int (*fn)(sv_store *, MDB_txn *, const void *, size_t))
{
	int rc = 0;
	if (sv_store_id_reserved(r->a, r->la))
		rc = fn(st, txn, r->a, r->la);
	if (rc == 0 && sv_store_id_reserved(r->b, r->lb))
		rc = fn(st, txn, r->b, r->lb);
	return rc;
}

/* Delete the log row under c (its references dropped). */
static int row_del(sv_store *st, MDB_txn *txn, MDB_cursor *c, const MDB_val *v)
{
	struct row_ids r;
	int rc = row_ids(v, &r);
	if (rc == 0)
		rc = neg(mdb_cursor_del(c, 0));
	if (rc == 0)
		rc = refs_of_row(st, txn, &r, ref_drop);
	return rc;
}

/* The last log sequence recovery needs kept: the active model's
 * applied_seq; rows after it are replayed at start.  No model: 0. */
static int recovery_floor(sv_store_txn *t, uint64_t *out)
{
	MDB_val ak = {6, (void *)"active"}, v;
	int rc = mdb_get(t->txn, t->st->meta, &ak, &v);
	*out = 0;
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc || v.mv_size != 8)
		return rc ? neg(rc) : SV_ERR_CORRUPT;
	rc = model_head(t->st, t->txn, sv_get64(v.mv_data), &v);
	if (rc)
		return rc;
	*out = sv_get64((const unsigned char *)v.mv_data + 24);
	return 0;
}

/* a: u64 keep_from, u64 before_ns; num: max rows.  *res: rows deleted. */
static int apply_trim(sv_store_txn *t, const unsigned char *a, uint64_t max, uint64_t *res)
{
	uint64_t keep_from = sv_get64(a), before = sv_get64(a + 8), floor, n = 0;
	MDB_cursor *c;
	MDB_val k, v;
	int rc = recovery_floor(t, &floor);
	*res = 0;
	if (rc)
		return rc;
	if (t->st->trim_pin && floor >= t->st->trim_pin)
		floor = t->st->trim_pin - 1;
	rc = neg(mdb_cursor_open(t->txn, t->st->pairs, &c));
	if (rc)
		return rc;
	while (n < max) {
		uint64_t seq;
		rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
		if (rc)
			break;
		if (k.mv_size != 8 || v.mv_size < PAIR_HDR) {
			rc = SV_ERR_CORRUPT;
			break;
		}
		seq = get_be64(k.mv_data);
		if (seq > floor ||
		    !(seq < keep_from || sv_get64((const unsigned char *)v.mv_data + 16) < before))
			break;
		rc = row_del(t->st, t->txn, c, &v);
		if (rc)
			break;
		n++;
	}
	mdb_cursor_close(c);
	*res = n;
	return rc == MDB_NOTFOUND ? 0 : neg(rc);
}

/* a: the item id; b: u64 max rows examined; num: first seq.  *res: the seq
 * to go on from (0: the end was reached); t->count: rows deleted. */
static int apply_purge(sv_store_txn *t, const void *id, size_t len, const unsigned char *b,
                       uint64_t from, uint64_t *res)
{
	uint64_t max = sv_get64(b), seen = 0, next = 0;
	unsigned char kb[8];
	MDB_cursor *c;
	MDB_val k = {8, kb}, v;
	int rc = neg(mdb_cursor_open(t->txn, t->st->pairs, &c));
	t->count = 0;
	if (rc)
		return rc;
	put_be64(kb, from);
	rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
	while (rc == 0) {
		struct row_ids r;
		if (k.mv_size != 8 || row_ids(&v, &r)) {
			rc = SV_ERR_CORRUPT;
			break;
		}
		if (seen++ == max) {
			next = get_be64(k.mv_data);
			break;
		}
		if ((r.la == len && memcmp(r.a, id, len) == 0) ||
		    (r.lb == len && memcmp(r.b, id, len) == 0)) {
			put_be64(kb, get_be64(k.mv_data));
			rc = row_del(t->st, t->txn, c, &v);
			if (rc)
				break;
			t->count++;
			k.mv_size = 8;
			k.mv_data = kb;
			rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
		} else {
			rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
		}
	}
	mdb_cursor_close(c);
	*res = next;
	return rc == MDB_NOTFOUND ? 0 : neg(rc);
}

/* Client window entries of client (ck[0] bytes at ck + 1) with client seq
 * <= upto, at most max of them, deleted.  *n gets how many. */
static int window_drop(sv_store_txn *t, const unsigned char *ck, uint64_t upto, uint64_t max,
                       uint64_t *n)
{
	unsigned char key[CKEY_MAX];
	size_t clen = ck[0];
	MDB_cursor *c;
	MDB_val k, v;
	int rc = neg(mdb_cursor_open(t->txn, t->st->clients, &c));
	*n = 0;
	if (rc)
		return rc;
	memcpy(key, ck, 1 + clen);
	memset(key + 1 + clen, 0, 8);
	k.mv_size = 1 + clen + 8;
	k.mv_data = key;
	rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
	while (rc == 0 && *n < max) {
		if (k.mv_size != 1 + clen + 8 || memcmp(k.mv_data, ck, 1 + clen) != 0 ||
		    get_be64((const unsigned char *)k.mv_data + 1 + clen) > upto)
			break;
		rc = mdb_cursor_del(c, 0);
		if (rc == 0) {
			(*n)++;
			k.mv_size = 1 + clen + 8;
			k.mv_data = key;
			rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
		}
	}
	mdb_cursor_close(c);
	return rc == MDB_NOTFOUND ? 0 : neg(rc);
}

/* a: u64 before_ns; num: most window entries deleted.  Clients whose last
 * append is older than before_ns lose their window and high-water mark.
 * *res: clients expired. */
static int apply_expire(sv_store_txn *t, const unsigned char *a, uint64_t max, uint64_t *res)
{
	uint64_t before = sv_get64(a), budget = max;
	unsigned char ck[1 + SV_STORE_ID_MAX]; /* the key the next seek starts from */
	MDB_cursor *c;
	MDB_val k, v;
	MDB_cursor_op op = MDB_FIRST;
	int rc = neg(mdb_cursor_open(t->txn, t->st->producers, &c));
	*res = 0;
	if (rc)
		return rc;
	while ((rc = mdb_cursor_get(c, &k, &v, op)) == 0 && budget > 0) {
		uint64_t n;
		op = MDB_NEXT;
		if (v.mv_size < PROD_LEN || k.mv_size < 1 || k.mv_size > SV_STORE_ID_MAX) {
			rc = SV_ERR_CORRUPT;
			break;
		}
		if (sv_get64((const unsigned char *)v.mv_data + 16) >= before)
			continue;
		ck[0] = (unsigned char)k.mv_size;
		memcpy(ck + 1, k.mv_data, k.mv_size);
		rc = window_drop(t, ck, UINT64_MAX, budget, &n);
		if (rc)
			break;
		budget -= n;
		if (budget == 0)
			break; /* maybe more of this client: the next call goes on */
		rc = mdb_cursor_del(c, 0);
		if (rc)
			break;
		k.mv_size = ck[0];
		k.mv_data = ck + 1;
		op = MDB_SET_RANGE;
		(*res)++;
	}
	mdb_cursor_close(c);
	return rc == MDB_NOTFOUND ? 0 : neg(rc);
}

/* The (client id, seq) check of an append.  ck: the clients key (u8 len,
 * client, u64 BE seq); recv_ns: the row's receive time.  Returns 0 (new:
 * entry recorded, high-water mark moved), SV_ERR_DUPLICATE (*res: the
 * original log seq), SV_ERR_STALE (below the window; *res: the high-water
 * mark) or a fatal code. */
static int dedup(sv_store_txn *t, const unsigned char *ck, size_t cklen, uint64_t recv_ns,
                 uint64_t *res)
{
	sv_store *st = t->st;
	size_t clen = ck[0];
	uint64_t cseq = get_be64(ck + 1 + clen), hwm = 0, s = t->next_seq, n;
	unsigned char rec[PROD_LEN];
	MDB_val pk = {clen, (void *)(ck + 1)}, k = {cklen, (void *)ck}, v;
	int have, rc = mdb_get(t->txn, st->producers, &pk, &v);

	if (rc && rc != MDB_NOTFOUND)
		return neg(rc);
	have = rc == 0;
	if (have) {
		if (v.mv_size < PROD_LEN)
			return SV_ERR_CORRUPT;
		hwm = sv_get64((const unsigned char *)v.mv_data + 8);
		if (cseq <= hwm && hwm - cseq >= st->dedup_depth) {
			*res = hwm;
			return SV_ERR_STALE;
		}
	}
	v.mv_size = 8;
	v.mv_data = &s;
	rc = mdb_put(t->txn, st->clients, &k, &v, MDB_NOOVERWRITE);
	if (rc == MDB_KEYEXIST) {
		if (v.mv_size != 8)
			return SV_ERR_CORRUPT;
		*res = sv_get64(v.mv_data);
		return SV_ERR_DUPLICATE;
	}
	if (rc)
		return neg(rc);
	if (!have || cseq > hwm) {
		uint64_t old = hwm;
		hwm = cseq;
		if (hwm >= st->dedup_depth && have && cseq == old + 1 && hwm % 64 != 0) {
			/* the usual step: exactly one seq leaves the window, no cursor */
			unsigned char dk[CKEY_MAX];
			MDB_val dv = {cklen, dk};
			memcpy(dk, ck, 1 + clen);
			put_be64(dk + 1 + clen, hwm - st->dedup_depth);
			rc = mdb_del(t->txn, st->clients, &dv, NULL);
			if (rc && rc != MDB_NOTFOUND)
				return neg(rc);
		} else if (hwm >= st->dedup_depth) {
			/* a jump, and every 64th step: a cursor, so a backlog (a
			 * migration, a lowered depth) drains too */
			rc = window_drop(t, ck, hwm - st->dedup_depth, WINDOW_TRIM_PER_APPEND, &n);
			if (rc)
				return rc;
		}
	}
	memset(rec, 0, sizeof rec);
	sv_put16(rec, FMT);
	sv_put64(rec + 8, hwm);
	sv_put64(rec + 16, recv_ns);
	v.mv_size = sizeof rec;
	v.mv_data = rec;
	return neg(mdb_put(t->txn, st->producers, &pk, &v, 0));
}

/* ---- schema 1 -> 2 ----
 *
 * Schema 2 added the refs and producers databases.  A schema-1 store gets
 * them at open: reference counts from its log, a high-water mark per client
 * from its clients index (last append: the migration time), in commits of
 * MIGRATE_CHUNK records, resumable (meta "migrate_seq" holds where the log
 * walk is).  Window entries below the new windows drain as clients append
 * (WINDOW_TRIM_PER_APPEND) or expire. */
#define MIGRATE_CHUNK 20000

/* Schema 2's count: refs, content id -> u64 (schema 4 moves them into the
 * items values). */
static int refs_db_add(sv_store *st, MDB_txn *txn, const void *id, size_t len)
{
	MDB_val k = {len, (void *)id}, v;
	unsigned char nb[8];
	uint64_t n = 0;
	int rc = mdb_get(txn, st->refs, &k, &v);
	if (rc == 0 && v.mv_size == 8)
		n = sv_get64(v.mv_data);
	else if (rc != MDB_NOTFOUND)
		return rc ? neg(rc) : SV_ERR_CORRUPT;
	sv_put64(nb, n + 1);
	v.mv_size = 8;
	v.mv_data = nb;
	return neg(mdb_put(txn, st->refs, &k, &v, 0));
}

/* Rewrite meta's schema field (a migration's last step). */
static int set_schema(sv_store *st, MDB_txn *txn, uint32_t schema)
{
	MDB_val k = {4, (void *)"meta"}, v;
	unsigned char m[META_LEN];
	int rc = mdb_get(txn, st->meta, &k, &v);
	if (rc || v.mv_size < META_LEN) /* no meta record: corrupt, not "nothing to do" */
		return rc && rc != MDB_NOTFOUND ? neg(rc) : SV_ERR_CORRUPT;
	memcpy(m, v.mv_data, META_LEN);
	sv_put32(m + 4, schema);
	v.mv_size = META_LEN;
	v.mv_data = m;
	return neg(mdb_put(txn, st->meta, &k, &v, 0));
}

/* The end of a resumable migration's commit: with key, where the next
 * goes on from (meta's progress record pk); without, the migration to
 * schema is done (*done set, pk deleted). */
static int chunk_end(sv_store *st, MDB_txn *txn, MDB_val *pk, const void *key, size_t klen,
                     uint32_t schema, int *done)
{
	MDB_val v = {klen, (void *)key};
	int rc;
	if (key)
		return neg(mdb_put(txn, st->meta, pk, &v, 0));
	rc = set_schema(st, txn, schema);
	if (rc == 0)
		rc = neg(mdb_del(txn, st->meta, pk, NULL));
	if (rc == neg(MDB_NOTFOUND))
		rc = 0;
	*done = rc == 0;
	return rc;
}

static int migrate_chunk(sv_store *st, MDB_txn *txn, int *done)
{
	MDB_val pk = {11, (void *)"migrate_seq"}, k, v;
	unsigned char kb[8], nb[8];
	uint64_t from = 1, n = 0;
	MDB_cursor *c;
	int rc = mdb_get(txn, st->meta, &pk, &v);
	if (rc == 0 && v.mv_size == 8)
		from = sv_get64(v.mv_data);
	else if (rc != MDB_NOTFOUND)
		return rc ? neg(rc) : SV_ERR_CORRUPT;
	if (from == 0) { /* log done: the clients */
		unsigned char ck[1 + SV_STORE_ID_MAX], rec[PROD_LEN];
		uint64_t now = now_ns();
		rc = neg(mdb_cursor_open(txn, st->clients, &c));
		if (rc)
			return rc;
		/* keys sort by (length, client, seq): the last of a run is the max */
		rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
		while (rc == 0) {
			size_t clen = k.mv_size > 9 ? k.mv_size - 9 : 0;
			MDB_val ik, iv;
			if (!clen || ((unsigned char *)k.mv_data)[0] != clen) {
				rc = SV_ERR_CORRUPT;
				break;
			}
			memcpy(ck, k.mv_data, 1 + clen);
			ik.mv_size = clen;
			ik.mv_data = ck + 1;
			memset(rec, 0, sizeof rec);
			sv_put16(rec, FMT);
			sv_put64(rec + 8, get_be64((unsigned char *)k.mv_data + 1 + clen));
			sv_put64(rec + 16, now);
			iv.mv_size = sizeof rec;
			iv.mv_data = rec;
			rc = mdb_put(txn, st->producers, &ik, &iv, 0);
			/* back to the previous client: before (len, client, seq 0) */
			if (rc == 0) {
				unsigned char key[CKEY_MAX];
				memcpy(key, ck, 1 + clen);
				memset(key + 1 + clen, 0, 8);
				k.mv_size = 1 + clen + 8;
				k.mv_data = key;
				rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
				if (rc == 0)
					rc = mdb_cursor_get(c, &k, &v, MDB_PREV);
			}
		}
		mdb_cursor_close(c);
		if (rc != MDB_NOTFOUND)
			return neg(rc);
		rc = set_schema(st, txn, 2);
		if (rc == 0)
			rc = mdb_del(txn, st->meta, &pk, NULL);
		*done = 1;
		return rc == MDB_NOTFOUND ? 0 : neg(rc);
	}
	rc = neg(mdb_cursor_open(txn, st->pairs, &c));
	if (rc)
		return rc;
	put_be64(kb, from);
	k.mv_size = 8;
	k.mv_data = kb;
	rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
	while (rc == 0 && n < MIGRATE_CHUNK) {
		struct row_ids r;
		if (k.mv_size != 8 || row_ids(&v, &r)) {
			rc = SV_ERR_CORRUPT;
			break;
		}
		from = get_be64(k.mv_data) + 1;
		rc = refs_of_row(st, txn, &r, refs_db_add);
		n++;
		if (rc == 0)
			rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(c);
	if (rc == MDB_NOTFOUND)
		from = 0; /* the whole log is counted */
	else if (rc)
		return neg(rc);
	sv_put64(nb, from);
	v.mv_size = 8;
	v.mv_data = nb;
	return neg(mdb_put(txn, st->meta, &pk, &v, 0));
}

/* ---- schema 2 -> 3 ----
 *
 * Schema 3 moved the vectors out of the items values (one 4 KB overflow
 * page each) into the vecs and ivecs databases.  At open each item of a schema-2
 * store gets a vector id, in id order, its vector appended under it and
 * its value rewritten, MIGRATE_ITEMS items a commit, resumable (meta
 * "migrate_item" holds the last id done).  The overflow pages freed by one
 * commit take the vector records of the next. */
#define MIGRATE_ITEMS 4096


static int migrate_items_chunk(sv_store *st, MDB_txn *txn, int *done)
{
	MDB_val pk = {12, (void *)"migrate_item"}, k, v;
	unsigned char key[SV_STORE_ID_MAX], rec[ITEM_LEN];
	size_t klen = 0, n = 0, bytes = (size_t)st->d_in * sizeof(float);
	MDB_cursor *c = NULL, *vc[2] = {NULL, NULL};
	uint64_t vid[2];
	float *x = malloc(bytes);
	int rc = x ? mdb_get(txn, st->meta, &pk, &v) : -ENOMEM;

	if (rc == 0 && v.mv_size >= 1 && v.mv_size <= SV_STORE_ID_MAX) {
		klen = v.mv_size;
		memcpy(key, v.mv_data, klen);
	} else if (rc != MDB_NOTFOUND) {
		rc = rc ? neg(rc) : SV_ERR_CORRUPT;
		goto out;
	}
	rc = vec_next_id(st, txn, VEC_STORED, &vid[VEC_STORED]);
	if (rc == 0)
		rc = vec_next_id(st, txn, VEC_INLINE, &vid[VEC_INLINE]);
	if (rc == 0)
		rc = mdb_cursor_open(txn, st->items, &c);
	if (rc == 0)
		rc = mdb_cursor_open(txn, st->vecs[VEC_STORED], &vc[VEC_STORED]);
	if (rc == 0)
		rc = mdb_cursor_open(txn, st->vecs[VEC_INLINE], &vc[VEC_INLINE]);
	if (rc)
		goto out;
	if (klen) { /* after the last id done */
		k.mv_size = klen;
		k.mv_data = key;
		rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
		if (rc == 0 && k.mv_size == klen && memcmp(k.mv_data, key, klen) == 0)
			rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
	} else {
		rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
	}
	while (rc == 0 && n < MIGRATE_ITEMS) {
		const unsigned char *p = v.mv_data;
		enum vec_space sp = vec_space_of(k.mv_data, k.mv_size);
		if (k.mv_size < 1 || k.mv_size > SV_STORE_ID_MAX || v.mv_size != ITEM_HDR + bytes ||
		    sv_get16(p) != FMT || sv_get32(p + 4) != st->d_in) {
			rc = SV_ERR_CORRUPT;
			break;
		}
		klen = k.mv_size;
		memcpy(key, k.mv_data, klen);
		memcpy(x, p + ITEM_HDR, bytes);
		sv_put16(rec, ITEM_FMT);
		sv_put16(rec + 2, sv_get16(p + 2));
		sv_put32(rec + 4, st->d_in);
		sv_put64(rec + 8, vid[sp]);
		rc = vec_put(st, vc[sp], vid[sp], x, bytes);
		if (rc == 0) {
			k.mv_size = klen;
			k.mv_data = key;
			v.mv_size = ITEM_LEN;
			v.mv_data = rec;
			rc = mdb_put(txn, st->items, &k, &v, 0);
		}
		if (rc == 0) { /* on from the id just rewritten */
			vid[sp]++;
			n++;
			k.mv_size = klen;
			k.mv_data = key;
			rc = mdb_cursor_get(c, &k, &v, MDB_SET_KEY);
			if (rc == 0)
				rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
		}
	}
	if (rc == MDB_NOTFOUND) /* every item done */
		rc = chunk_end(st, txn, &pk, NULL, 0, 3, done);
	else if (rc == 0)
		rc = chunk_end(st, txn, &pk, key, klen, 3, done);
out:
	mdb_cursor_close(vc[VEC_INLINE]);
	mdb_cursor_close(vc[VEC_STORED]);
	mdb_cursor_close(c);
	free(x);
	return neg(rc);
}

/* ---- schema 3 -> 4 ----
 *
 * Schema 4 keeps an inline item's reference count in its items value
 * (ITEM_FMT_INLINE) instead of the refs database.  At open every inline
 * item of a schema-3 store (the ids between "~v" and "~w") gets its value
 * rewritten with its count from refs (0 if none), MIGRATE_ITEMS a commit,
 * resumable (meta "migrate_ref" holds the last id done); then refs is
 * emptied. */
static int migrate_refs_chunk(sv_store *st, MDB_txn *txn, int *done)
{
	MDB_val pk = {11, (void *)"migrate_ref"}, k, v, rk, rv;
	unsigned char key[SV_STORE_ID_MAX], rec[ITEM_LEN_INLINE];
	size_t klen = 2, n = 0;
	MDB_cursor *c = NULL;
	int rc = mdb_get(txn, st->meta, &pk, &v), resumed = rc == 0;

	memcpy(key, "~v", 2);
	if (rc == 0 && v.mv_size >= 1 && v.mv_size <= SV_STORE_ID_MAX) {
		klen = v.mv_size;
		memcpy(key, v.mv_data, klen);
	} else if (rc != MDB_NOTFOUND) {
		return rc ? neg(rc) : SV_ERR_CORRUPT;
	}
	rc = mdb_cursor_open(txn, st->items, &c);
	if (rc)
		return neg(rc);
	k.mv_size = klen;
	k.mv_data = key;
	rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
	if (rc == 0 && resumed && k.mv_size == klen && memcmp(k.mv_data, key, klen) == 0)
		rc = mdb_cursor_get(c, &k, &v, MDB_NEXT); /* after the last id done */
	while (rc == 0 && n < MIGRATE_ITEMS && sv_store_id_reserved(k.mv_data, k.mv_size)) {
		uint64_t count = 0;
		if (k.mv_size > SV_STORE_ID_MAX || v.mv_size != ITEM_LEN ||
		    sv_get16(v.mv_data) != ITEM_FMT) {
			rc = SV_ERR_CORRUPT;
			break;
		}
		klen = k.mv_size;
		memcpy(key, k.mv_data, klen);
		memcpy(rec, v.mv_data, ITEM_LEN);
		rk.mv_size = klen;
		rk.mv_data = key;
		rc = mdb_get(txn, st->refs, &rk, &rv);
		if (rc == 0 && rv.mv_size == 8)
			count = sv_get64(rv.mv_data);
		else if (rc != MDB_NOTFOUND) {
			rc = rc ? rc : SV_ERR_CORRUPT;
			break;
		}
		sv_put16(rec, ITEM_FMT_INLINE);
		sv_put64(rec + ITEM_LEN, count);
		k.mv_size = klen;
		k.mv_data = key;
		v.mv_size = sizeof rec;
		v.mv_data = rec;
		rc = mdb_put(txn, st->items, &k, &v, 0);
		n++;
		if (rc == 0) { /* on from the id just rewritten */
			rc = mdb_cursor_get(c, &k, &v, MDB_SET_KEY);
			if (rc == 0)
				rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
		}
	}
	mdb_cursor_close(c);
	if (rc == MDB_NOTFOUND || (rc == 0 && n < MIGRATE_ITEMS)) { /* every inline item done */
		rc = mdb_drop(txn, st->refs, 0);
		if (rc == 0)
			rc = chunk_end(st, txn, &pk, NULL, 0, 4, done);
	} else if (rc == 0) {
		rc = chunk_end(st, txn, &pk, key, klen, 4, done);
	}
	return neg(rc);
}

/* Run step in commits until it says done, growing the map when a commit
 * does not fit. */
static int migrate_run(sv_store *st, int (*step)(sv_store *, MDB_txn *, int *))
{
	int done = 0, rc = 0;
	while (!done) {
		MDB_txn *txn;
		rc = begin_write(st, &txn);
		if (rc)
			break;
		rc = step(st, txn, &done);
		if (rc == 0)
			rc = neg(mdb_txn_commit(txn));
		else
			mdb_txn_abort(txn);
		if (rc == MDB_MAP_FULL) {
			done = 0;
			rc = grow(st, 1);
		}
		if (rc)
			break;
	}
	return rc;
}

/* Bring a schema-1, -2 or -3 store (st->migrate) to SV_STORE_SCHEMA. */
static int migrate(sv_store *st, char *err, size_t errlen)
{
	int rc = 0;
	if (st->migrate == 1)
		rc = migrate_run(st, migrate_chunk);
	if (rc == 0 && st->migrate <= 2)
		rc = migrate_run(st, migrate_items_chunk);
	if (rc == 0)
		rc = migrate_run(st, migrate_refs_chunk);
	if (rc)
		say(err, errlen, "bringing the store from schema %d to %d: %s", st->migrate,
		    SV_STORE_SCHEMA, sv_strerror(rc));
	st->migrate = 0;
	return rc;
}

/* Whether walking the freelist stays inside the file's first `pages` pages
 * (so cannot fault): the newer meta page, read with pread, must name a
 * freelist that is one leaf page (depth 1, no overflow pages) below that
 * bound.  LMDB's on-disk meta (format 1, 64-bit): a 16-byte page header,
 * then magic, version, address, mapsize, and the FREE_DBI record (md_pad,
 * md_flags, md_depth, branch, leaf and overflow page counts, entries,
 * root); mm_txnid follows both database records and mm_last_pg.  A larger
 * freelist, or any doubt, says no: the file is then refused as truncated. */
static int free_db_inside(const char *file, size_t psize, uint64_t pages)
{
	unsigned char m[160];
	uint64_t best_txn = 0, root = 0, over = 1;
	uint16_t depth = 0;
	int fd = open(file, O_RDONLY | O_CLOEXEC), found = 0;

	if (fd < 0 || sizeof(size_t) != 8)
		goto out;
	for (int i = 0; i < 2; i++) {
		uint32_t magic;
		uint64_t txn;

		if (pread(fd, m, sizeof m, (off_t)(i * psize)) != (ssize_t)sizeof m)
			continue;
		memcpy(&magic, m + 16, 4);
		memcpy(&txn, m + 144, 8);
		if (magic != 0xBEEFC0DE || (found && txn <= best_txn))
			continue;
		found = 1;
		best_txn = txn;
		memcpy(&depth, m + 46, 2);
		memcpy(&over, m + 64, 8);
		memcpy(&root, m + 80, 8);
	}
out:
	if (fd >= 0)
		close(fd);
	return found && depth <= 1 && over == 0 && root < pages;
}

/* 1 when every page in [from, last] is on LMDB's freelist (FREE_DBI 0: key
 * a txnid, data an IDL of pgno_t, idl[0] the count).  Such pages were
 * allocated by a transaction that freed them again before its commit, so
 * they were never written; LMDB writes them when it reuses them and never
 * reads them before, so a file that ends before them is whole.  A kill -9
 * right after such a commit leaves exactly that. */
static int tail_is_free(MDB_env *env, uint64_t from, uint64_t last)
{
	uint64_t n = last - from + 1, got = 0;
	unsigned char *seen;
	MDB_txn *txn = NULL;
	MDB_cursor *c = NULL;
	MDB_val k, v;
	int rc;

	if (last < from || n > (UINT64_C(1) << 24))
		return 0;
	seen = calloc((size_t)(n + 7) / 8, 1);
	if (seen == NULL)
		return 0;
	rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
	if (rc == 0)
		rc = mdb_cursor_open(txn, 0, &c);
	while (rc == 0 && (rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) == 0) {
		size_t cnt, pg;

		if (v.mv_size < sizeof(size_t))
			continue;
		memcpy(&cnt, v.mv_data, sizeof(cnt));
		if (cnt > v.mv_size / sizeof(size_t) - 1)
			cnt = v.mv_size / sizeof(size_t) - 1;
		for (size_t i = 1; i <= cnt; i++) {
			memcpy(&pg, (const char *)v.mv_data + i * sizeof(size_t), sizeof(pg));
			if (pg >= from && pg <= last && !(seen[(pg - from) / 8] & 1u << (pg - from) % 8)) {
				seen[(pg - from) / 8] |= (unsigned char)(1u << (pg - from) % 8);
				got++;
			}
		}
	}
	mdb_cursor_close(c);
	mdb_txn_abort(txn);
	free(seen);
	return got == n;
}

int sv_store_open(sv_store **out, const struct sv_store_opts *o, char *err, size_t errlen)
{
	sv_store *st = NULL;
	MDB_txn *txn = NULL;
	MDB_envinfo info;
	pthread_rwlockattr_t la;
	unsigned flags = MDB_NOTLS;
	int rc, dead;

	say(err, errlen, "%s", "");
	if (!out || !o || !o->path || !o->path[0] || !o->keep_versions || !o->map_size ||
	    o->map_size > o->max_map_size || !o->max_readers || (!o->d_in != !o->d_out) ||
	    o->sync > SV_STORE_SYNC_NONE) {
		say(err, errlen, "%s", "invalid store options");
		return -EINVAL;
	}
	if (mkdir(o->path, 0700) && errno != EEXIST) {
		rc = -errno;
		say(err, errlen, "mkdir %s: %s", o->path, strerror(-rc));
		return neg(rc);
	}
	st = calloc(1, sizeof *st);
	if (!st)
		return -ENOMEM;
	pthread_rwlockattr_init(&la);
	pthread_rwlockattr_setkind_np(&la, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&st->map_lock, &la);
	pthread_rwlockattr_destroy(&la);
	st->max_map_size = o->max_map_size;
	st->keep_versions = o->keep_versions;
	st->dedup_depth = o->dedup_depth ? o->dedup_depth : 1;
	if (o->sync == SV_STORE_SYNC_META)
		flags |= MDB_NOMETASYNC;
	else if (o->sync == SV_STORE_SYNC_NONE)
		flags |= MDB_NOSYNC;

	rc = mdb_env_create(&st->env);
	if (!rc)
		rc = mdb_env_set_maxdbs(st->env, 10);
	if (!rc)
		rc = mdb_env_set_maxreaders(st->env, o->max_readers);
	if (!rc)
		rc = mdb_env_set_mapsize(st->env, o->map_size);
	if (!rc)
		rc = mdb_env_open(st->env, o->path, flags, 0600);
	if (rc) {
		say(err, errlen, "opening LMDB environment %s: %s", o->path, mdb_strerror(rc));
		goto fail;
	}
	mdb_reader_check(st->env, &dead);
	mdb_env_info(st->env, &info);
	st->map_size = info.me_mapsize;
	{
		/* Pages past the file's end would be SIGBUS on first touch: a
		 * truncated copy is refused here, by name, instead; unless
		 * every page past the end is free (tail_is_free). */
		char file[4200];
		struct stat sb;
		MDB_stat ms;
		snprintf(file, sizeof file, "%s/data.mdb", o->path);
		mdb_env_stat(st->env, &ms);
		if (stat(file, &sb) == 0 &&
		    (uint64_t)sb.st_size < ((uint64_t)info.me_last_pgno + 1) * ms.ms_psize &&
		    !(free_db_inside(file, ms.ms_psize, (uint64_t)sb.st_size / ms.ms_psize) &&
		      tail_is_free(st->env, ((uint64_t)sb.st_size + ms.ms_psize - 1) / ms.ms_psize,
		                  info.me_last_pgno))) {
			say(err, errlen,
			    "%s is %lld bytes but its last page ends at %llu: truncated (a torn copy?)",
			    file, (long long)sb.st_size,
			    (unsigned long long)(info.me_last_pgno + 1) * ms.ms_psize);
			rc = SV_ERR_CORRUPT;
			goto fail;
		}
	}

	for (;;) {
		rc = begin_write(st, &txn);
		if (rc) {
			say(err, errlen, "%s", st->errmsg);
			goto fail;
		}
		rc = open_dbs(st, txn);
		if (rc) {
			say(err, errlen, "opening store databases: %s", mdb_strerror(rc));
		} else {
			rc = meta_check(st, txn, o, err, errlen);
		}
		if (rc == 0)
			rc = mdb_txn_commit(txn);
		else
			mdb_txn_abort(txn);
		txn = NULL;
		if (rc != MDB_MAP_FULL)
			break;
		rc = grow(st, 1);
		if (rc) {
			say(err, errlen, "%s", st->errmsg);
			goto fail;
		}
	}
	if (rc == 0) {
		MDB_stat ms;
		mdb_env_stat(st->env, &ms);
		st->psize = ms.ms_psize;
		st->vec_chunks = vec_layout(ms.ms_psize, (size_t)st->d_in * sizeof(float));
	}
	if (rc == 0 && st->migrate)
		rc = migrate(st, err, errlen);
	if (rc)
		goto fail;
	st->errmsg[0] = 0;
	*out = st;
	return 0;
fail:
	if (st->env)
		mdb_env_close(st->env);
	pthread_rwlock_destroy(&st->map_lock);
	free(st);
	return neg(rc);
}

void sv_store_close(sv_store *st)
{
	if (!st)
		return;
	mdb_env_close(st->env);
	pthread_rwlock_destroy(&st->map_lock);
	trail_free(atomic_load(&st->trail));
	free(st);
}

const char *sv_store_errmsg(const sv_store *st)
{
	return st ? st->errmsg : "";
}

void sv_store_dims(const sv_store *st, uint32_t *d_in, uint32_t *d_out)
{
	if (d_in)
		*d_in = st->d_in;
	if (d_out)
		*d_out = st->d_out;
}

size_t sv_store_map_size(const sv_store *st)
{
	return st->map_size;
}

int sv_store_sync(sv_store *st)
{
	int rc;
	if (!st)
		return -EINVAL;
	rc = mdb_env_sync(st->env, 1);
	return rc > 0 ? -rc : rc;
}

/* fsync a file or directory by name. */
static int sync_path(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 0;
	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

/* Copy file src to dst (created 0600), fsynced. */
static int copy_file(const char *src, const char *dst)
{
	char buf[1 << 16];
	int in = open(src, O_RDONLY | O_CLOEXEC), out, rc = 0;
	ssize_t n;
	if (in < 0)
		return -errno;
	out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (out < 0) {
		rc = -errno;
		close(in);
		return rc;
	}
	while (rc == 0 && (n = read(in, buf, sizeof buf)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			break;
		}
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(out, buf + off, (size_t)(n - off));
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0) {
				rc = -errno;
				break;
			}
			off += w;
		}
	}
	if (rc == 0 && fsync(out) < 0)
		rc = -errno;
	close(out);
	close(in);
	return rc;
}

int sv_store_restore(const struct sv_store_opts *o, const char *from, char *err, size_t errlen)
{
	char src[4200], tmp[4200], file[4300], parent[4200], *slash;
	struct sv_store_opts to;
	struct stat sb;
	sv_store *st = NULL;
	int rc;
	say(err, errlen, "%s", "");
	if (!o || !o->path || !from)
		return -EINVAL;
	snprintf(src, sizeof src, "%s/data.mdb", from);
	if (stat(src, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		say(err, errlen, "no backup (data.mdb) in %s", from);
		return stat(src, &sb) < 0 ? -errno : -EINVAL;
	}
	snprintf(file, sizeof file, "%s/data.mdb", o->path);
	if (stat(file, &sb) == 0) {
		say(err, errlen, "%s already holds a store", o->path);
		return -EEXIST;
	}
	snprintf(tmp, sizeof tmp, "%s.restoring", o->path);
	snprintf(file, sizeof file, "%s/data.mdb", tmp);
	unlink(file);
	snprintf(file, sizeof file, "%s/lock.mdb", tmp);
	unlink(file);
	if (mkdir(tmp, 0700) < 0 && errno != EEXIST) {
		rc = -errno;
		say(err, errlen, "mkdir %s: %s", tmp, strerror(-rc));
		return rc;
	}
	snprintf(file, sizeof file, "%s/data.mdb", tmp);
	rc = copy_file(src, file);
	if (rc) {
		say(err, errlen, "copying %s to %s: %s", src, file, strerror(-rc));
		return rc;
	}
	to = *o;
	to.path = tmp;
	rc = sv_store_open(&st, &to, err, errlen); /* dims, fingerprint, schema, truncation */
	sv_store_close(st);
	if (rc)
		return rc;
	snprintf(file, sizeof file, "%s/lock.mdb", tmp);
	unlink(file);
	/* a store directory may be there without a store (its lock file, say) */
	if (rmdir(o->path) < 0 && errno != ENOENT && errno != ENOTEMPTY) {
		rc = -errno;
		say(err, errlen, "rmdir %s: %s", o->path, strerror(-rc));
		return rc;
	}
	if (rename(tmp, o->path) < 0) {
		rc = -errno;
		say(err, errlen, "renaming %s to %s: %s", tmp, o->path, strerror(-rc));
		return rc;
	}
	snprintf(parent, sizeof parent, "%s", o->path);
	slash = strrchr(parent, '/');
	return sync_path(slash == NULL ? "." : slash == parent ? "/" : (*slash = 0, parent));
}

int sv_store_backup(sv_store *st, const char *path)
{
	char part[4096], file[4200], parent[4096], *slash;
	struct stat sb;
	int rc;
	if (!st || !path || !path[0])
		return -EINVAL;
	if ((size_t)snprintf(part, sizeof part, "%s.partial", path) >= sizeof part)
		return -ENAMETOOLONG;
	snprintf(file, sizeof file, "%s/data.mdb", path);
	if (stat(file, &sb) == 0) {
		say(st->errmsg, sizeof st->errmsg, "backup target %s already exists", file);
		return -EEXIST;
	}
	/* a .partial left by an earlier failed or killed backup is redone */
	snprintf(file, sizeof file, "%s/data.mdb", part);
	if (unlink(file) < 0 && errno != ENOENT) {
		rc = -errno;
		say(st->errmsg, sizeof st->errmsg, "removing %s: %s", file, strerror(-rc));
		return rc;
	}
	if (mkdir(part, 0700) && errno != EEXIST) {
		rc = -errno;
		say(st->errmsg, sizeof st->errmsg, "mkdir %s: %s", part, strerror(-rc));
		return rc;
	}
	pthread_rwlock_rdlock(&st->map_lock);
	rc = neg(mdb_env_copy2(st->env, part, MDB_CP_COMPACT));
	pthread_rwlock_unlock(&st->map_lock);
	if (rc == 0)
		rc = sync_path(file);
	if (rc == 0)
		rc = sync_path(part);
	/* then the name: a backup directory holds a whole copy or nothing */
	if (rc == 0 && rename(part, path) < 0)
		rc = -errno;
	snprintf(parent, sizeof parent, "%s", path);
	slash = strrchr(parent, '/');
	if (rc == 0)
		rc = sync_path(slash == NULL ? "." : slash == parent ? "/" : (*slash = 0, parent));
	if (rc)
		say(st->errmsg, sizeof st->errmsg, "backup to %s: %s", path, sv_strerror(rc));
	return rc;
}

/* ---- write groups ---- */

/* The group's view of the counters, read from its LMDB transaction. */
static int load_counters(sv_store_txn *t)
{
	sv_store *st = t->st;
	MDB_val v;
	MDB_val nk = {12, (void *)"next_version"};
	uint64_t last;
	int rc = last_be64(t->txn, st->pairs, &last);
	if (rc)
		return rc;
	t->next_seq = last + 1;
	rc = mdb_get(t->txn, st->meta, &nk, &v);
	if (rc == 0 && v.mv_size == 8)
		t->next_version = sv_get64(v.mv_data);
	else if (rc == MDB_NOTFOUND)
		t->next_version = 1;
	else
		return rc ? neg(rc) : SV_ERR_CORRUPT;
	/* from the committed state alone: a replayed group gives out the same ids */
	rc = vec_next_id(st, t->txn, VEC_STORED, &t->next_vec[VEC_STORED]);
	if (rc == 0)
		rc = vec_next_id(st, t->txn, VEC_INLINE, &t->next_vec[VEC_INLINE]);
	return rc;
}

int sv_store_txn_begin(sv_store *st, sv_store_txn **out)
{
	sv_store_txn *t;
	int rc;
	if (!st || !out)
		return -EINVAL;
	if (st->writing)
		return SV_ERR_STATE;
	t = calloc(1, sizeof *t);
	if (!t)
		return -ENOMEM;
	t->st = st;
	rc = begin_write(st, &t->txn);
	if (rc == 0) {
		rc = load_counters(t);
		if (rc) {
			mdb_txn_abort(t->txn);
			lmdb_say(st, "reading the store's counters", rc);
		}
	}
	if (rc) {
		free(t);
		return neg(rc);
	}
	st->writing = 1;
	*out = t;
	return 0;
}

/* The group's LMDB transaction ended: its cursors went with it. */
static void txn_ended(sv_store_txn *t)
{
	t->vc[VEC_STORED] = t->vc[VEC_INLINE] = NULL;
	t->pref_n = 0;
}

/* Before vector records are deleted: the append cursors are closed, and
 * the next append finds the end again (a cursor whose record another
 * deletes is not trusted to know where the end is). */
static void append_cursors_drop(sv_store_txn *t)
{
	for (int i = 0; i < 2; i++) {
		if (t->vc[i])
			mdb_cursor_close(t->vc[i]);
		t->vc[i] = NULL;
	}
}

/* a: the id; b: the buffered record (ITEM_HDR: fmt, flags, dim; then the
 * floats).  The items value is put first, without overwriting: one descent
 * tells a new id from one stored (ITEM_NEW stops there, writing nothing);
 * a replaced item's old vector is deleted.  Then the vector is appended
 * under the next vector id. */
static int apply_item_put(sv_store_txn *t, int only_new, const void *a, size_t alen,
                          const unsigned char *b, size_t blen)
{
	sv_store *st = t->st;
	unsigned char rec[ITEM_LEN_INLINE];
	enum vec_space space = vec_space_of(a, alen);
	size_t len = space == VEC_INLINE ? ITEM_LEN_INLINE : ITEM_LEN;
	MDB_val k = {alen, (void *)a}, v = {len, rec};
	MDB_cursor *c;
	struct pend_ref *pr = space == VEC_INLINE ? pend_ref_find(t, a, alen) : NULL;
	uint64_t old;
	int rc, stored;

	sv_put16(rec, space == VEC_INLINE ? ITEM_FMT_INLINE : ITEM_FMT);
	sv_put16(rec + 2, sv_get16(b + 2));
	sv_put32(rec + 4, sv_get32(b + 4));
	sv_put64(rec + 8, t->next_vec[space]);
	if (space == VEC_INLINE) /* the rows naming it, appended before it came */
		sv_put64(rec + ITEM_LEN, pr ? pr->n : 0);
	rc = mdb_put(t->txn, st->items, &k, &v, MDB_NOOVERWRITE);
	stored = rc == MDB_KEYEXIST; /* and v is the stored value */
	/* a new item took the pending count */
	if (rc == 0 && pr)
		*pr = t->pref[--t->pref_n];
	if (stored && only_new)
		return SV_ERR_DUPLICATE;
	if (rc && !stored)
		return rc;
	if (stored) { /* the old vector goes; the rows naming the id still do */
		append_cursors_drop(t);
		rc = item_vid(&v, &old);
		if (rc == 0 && space == VEC_INLINE)
			sv_put64(rec + ITEM_LEN,
			         v.mv_size == ITEM_LEN_INLINE
			             ? sv_get64((const unsigned char *)v.mv_data + ITEM_LEN)
			             : 0);
		if (rc == 0) {
			v.mv_size = len;
			v.mv_data = rec;
			rc = mdb_put(t->txn, st->items, &k, &v, 0);
		}
		if (rc == 0)
			rc = mdb_cursor_open(t->txn, st->vecs[space], &c);
		if (rc == 0) {
			rc = vec_del(c, old);
			mdb_cursor_close(c);
		}
		if (rc)
			return rc;
	}
	if (!t->vc[space]) {
		rc = mdb_cursor_open(t->txn, st->vecs[space], &t->vc[space]);
		if (rc)
			return rc;
	}
	c = t->vc[space];
	rc = vec_put(st, c, t->next_vec[space], b + ITEM_HDR, blen - ITEM_HDR);
	if (rc == 0)
		t->next_vec[space]++;
	return rc;
}

/* Apply one operation to t->txn.  Nonfatal outcomes: SV_ERR_DUPLICATE,
 * SV_ERR_STALE and SV_ERR_NOTFOUND (nothing written).  *res gets the seq /
 * version / count. */
static int apply(sv_store_txn *t, uint32_t kind, const void *a, size_t alen, const void *b,
                 size_t blen, uint64_t num, uint64_t *res)
{
	sv_store *st = t->st;
	unsigned char kb[8];
	MDB_val k, v;
	int rc;

	if (kind == OP_KIND_ITEM_DEL || kind == OP_KIND_TRIM || kind == OP_KIND_PURGE)
		append_cursors_drop(t); /* they may delete vectors */
	switch (kind) {
	case OP_KIND_ITEM_PUT:
	case OP_KIND_ITEM_NEW:
		return apply_item_put(t, kind == OP_KIND_ITEM_NEW, a, alen, b, blen);
	case OP_KIND_ITEM_DEL:
		k.mv_size = alen;
		k.mv_data = (void *)a;
		rc = item_remove(st, t->txn, &k);
		return rc == MDB_NOTFOUND ? SV_ERR_NOTFOUND : rc;
	case OP_KIND_PAIR:
		/* a: the pair record, b: the client key (may be empty).  The
		 * client check goes first, so a duplicate or stale row writes
		 * nothing; a failure after it kills (or regrows) the whole LMDB
		 * transaction. */
		if (blen) {
			rc = dedup(t, b, blen, sv_get64((const unsigned char *)a + 16), res);
			if (rc)
				return rc;
		}
		put_be64(kb, t->next_seq);
		k.mv_size = 8;
		k.mv_data = kb;
		v.mv_size = alen;
		v.mv_data = (void *)a;
		rc = mdb_put(t->txn, st->pairs, &k, &v, MDB_APPEND);
		if (rc == 0) {
			struct row_ids r;
			rc = row_ids(&v, &r);
			if (rc == 0 && sv_store_id_reserved(r.a, r.la))
				rc = ref_move(st, t->txn, t, r.a, r.la, 1);
			if (rc == 0 && sv_store_id_reserved(r.b, r.lb))
				rc = ref_move(st, t->txn, t, r.b, r.lb, 1);
		}
		if (rc == 0)
			*res = t->next_seq++;
		return neg(rc);
	case OP_KIND_TRIM:
		return apply_trim(t, a, num, res);
	case OP_KIND_EXPIRE:
		return apply_expire(t, a, num, res);
	case OP_KIND_PURGE:
		return apply_purge(t, a, alen, b, num, res);
	case OP_KIND_CKPT: {
		uint64_t nv = t->next_version + 1;
		MDB_val nk = {12, (void *)"next_version"};
		unsigned char mk[12];
		rc = 0;
		for (size_t off = 0, i = 0; rc == 0 && off < alen; off += MODEL_CHUNK, i++) {
			model_key(mk, t->next_version, (uint32_t)i);
			k.mv_size = sizeof mk;
			k.mv_data = mk;
			v.mv_size = alen - off < MODEL_CHUNK ? alen - off : MODEL_CHUNK;
			v.mv_data = (unsigned char *)a + off;
			rc = mdb_put(t->txn, st->models, &k, &v, MDB_APPEND);
		}
		if (rc == 0) {
			v.mv_size = 8;
			v.mv_data = &nv;
			rc = mdb_put(t->txn, st->meta, &nk, &v, 0);
		}
		if (rc == 0) {
			*res = t->next_version++;
			t->ckpt = 1;
		}
		return neg(rc);
	}
	case OP_KIND_MARK: {
		MDB_val mk = {alen, (void *)a};
		sv_put64(kb, num);
		v.mv_size = 8;
		v.mv_data = kb;
		return mdb_put(t->txn, st->meta, &mk, &v, 0);
	}
	case OP_KIND_ACTIVE: {
		MDB_val ak = {6, (void *)"active"};
		rc = model_head(st, t->txn, num, &v);
		if (rc)
			return rc;
		v.mv_size = 8;
		v.mv_data = &num;
		return mdb_put(t->txn, st->meta, &ak, &v, 0);
	}
	default:
		return -EINVAL;
	}
}

/* Delete the oldest checkpoints beyond keep_versions, never the active one. */
static int prune(sv_store_txn *t)
{
	sv_store *st = t->st;
	MDB_cursor *c;
	MDB_val k, v, ak = {6, (void *)"active"};
	uint64_t active = 0, count = 0;
	unsigned char kb[8];
	int rc = mdb_get(t->txn, st->meta, &ak, &v);
	if (rc == 0 && v.mv_size == 8)
		active = sv_get64(v.mv_data);
	else if (rc && rc != MDB_NOTFOUND)
		return neg(rc);
	rc = model_count(st, t->txn, &count);
	if (rc || count <= st->keep_versions)
		return rc;
	rc = mdb_cursor_open(t->txn, st->models, &c);
	if (rc)
		return neg(rc);
	/* oldest first: every chunk of a version, then the next version */
	rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
	while (rc == 0 && count > st->keep_versions) {
		uint64_t ver;
		uint32_t chunk;
		if (model_key_parse(&k, &ver, &chunk)) {
			rc = SV_ERR_CORRUPT;
			break;
		}
		put_be64(kb, ver + 1);
		if (ver != active && ver != st->pin_version && ver != st->pin_version2) {
			unsigned char vk[8];
			uint64_t x;
			put_be64(vk, ver);
			for (;;) {
				MDB_val sk = {8, vk};
				rc = mdb_cursor_get(c, &sk, &v, MDB_SET_RANGE);
				if (rc || model_key_parse(&sk, &x, &chunk) || x != ver)
					break;
				rc = mdb_cursor_del(c, 0);
				if (rc)
					break;
			}
			count--;
			if (rc && rc != MDB_NOTFOUND)
				break;
		}
		k.mv_size = 8; /* on to the next version's first record */
		k.mv_data = kb;
		rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
	}
	mdb_cursor_close(c);
	return rc == MDB_NOTFOUND ? 0 : neg(rc);
}

/* Abort the LMDB transaction, grow the map, and apply the buffered group again
 * on a fresh transaction.  Returns 0, MDB_MAP_FULL (grow again),
 * SV_ERR_STORE_FULL or another fatal code. */
static int regrow(sv_store_txn *t)
{
	size_t off = 0;
	uint64_t res;
	int rc;
	mdb_txn_abort(t->txn);
	t->txn = NULL;
	txn_ended(t);
	t->ckpt = 0;
	rc = grow(t->st, t->adds);
	if (rc)
		return neg(rc);
	rc = begin_write(t->st, &t->txn);
	if (rc)
		return neg(rc);
	rc = load_counters(t);
	while (rc == 0 && off < t->ops_len) {
		struct op_hdr h;
		const unsigned char *a;
		memcpy(&h, t->ops + off, sizeof h);
		a = t->ops + off + sizeof h;
		rc = apply(t, h.kind, a, h.alen, a + h.alen, h.blen, h.num, &res);
		off += sizeof h + ((h.alen + h.blen + 7u) & ~(size_t)7);
	}
	return neg(rc);
}

static int buffer_op(sv_store_txn *t, uint32_t kind, const void *a, size_t alen, const void *b,
                     size_t blen, uint64_t num)
{
	struct op_hdr h = {kind, (uint32_t)alen, (uint32_t)blen, 0, num};
	size_t need = sizeof h + ((alen + blen + 7u) & ~(size_t)7);
	if (t->ops_len + need > t->ops_cap) {
		size_t cap = t->ops_cap ? t->ops_cap : 4096;
		unsigned char *p;
		while (cap < t->ops_len + need)
			cap *= 2;
		p = realloc(t->ops, cap);
		if (!p)
			return -ENOMEM;
		t->ops = p;
		t->ops_cap = cap;
	}
	memcpy(t->ops + t->ops_len, &h, sizeof h);
	if (alen)
		memcpy(t->ops + t->ops_len + sizeof h, a, alen);
	if (blen)
		memcpy(t->ops + t->ops_len + sizeof h + alen, b, blen);
	t->ops_len += need;
	return 0;
}

static void kill_group(sv_store_txn *t, int rc)
{
	if (t->txn)
		mdb_txn_abort(t->txn);
	t->txn = NULL;
	txn_ended(t);
	t->rc = rc;
}

/* Apply, growing and replaying on MDB_MAP_FULL, then remember the op. */
static int run_op(sv_store_txn *t, uint32_t kind, const void *a, size_t alen, const void *b,
                  size_t blen, uint64_t num, uint64_t *res)
{
	uint64_t r = 0;
	int rc;
	if (t->rc)
		return SV_ERR_STATE;
	if (kind == OP_KIND_ITEM_PUT || kind == OP_KIND_ITEM_NEW || kind == OP_KIND_PAIR ||
	    kind == OP_KIND_CKPT)
		t->adds = 1;
	rc = apply(t, kind, a, alen, b, blen, num, &r);
	while (rc == MDB_MAP_FULL) {
		rc = regrow(t);
		if (rc == 0)
			rc = apply(t, kind, a, alen, b, blen, num, &r);
	}
	if (rc == SV_ERR_DUPLICATE || rc == SV_ERR_STALE || rc == SV_ERR_NOTFOUND) {
		if (res && rc != SV_ERR_NOTFOUND)
			*res = r;
		return neg(rc);
	}
	if (rc == 0)
		rc = buffer_op(t, kind, a, alen, b, blen, num);
	if (rc) {
		rc = neg(rc);
		if (rc != SV_ERR_STORE_FULL)
			lmdb_say(t->st, "store write", rc);
		kill_group(t, rc);
		return neg(rc);
	}
	if (res)
		*res = r;
	return 0;
}

int sv_store_txn_commit(sv_store_txn *t)
{
	int rc;
	if (!t)
		return -EINVAL;
	rc = t->rc;
	while (rc == 0) {
		if (t->ckpt)
			rc = prune(t);
		if (rc == 0) {
			rc = mdb_txn_commit(t->txn);
			t->txn = NULL;
			txn_ended(t);
			if (rc == 0)
				break;
		}
		if (rc != MDB_MAP_FULL)
			break;
		do
			rc = regrow(t);
		while (rc == MDB_MAP_FULL);
	}
	if (rc && rc != t->rc && rc != SV_ERR_STORE_FULL)
		lmdb_say(t->st, "committing a store group", rc);
	if (rc > 0)
		rc = -rc;
	if (t->txn)
		mdb_txn_abort(t->txn);
	t->st->writing = 0;
	free(t->ops);
	free(t->pref);
	free(t);
	return neg(rc);
}

void sv_store_txn_abort(sv_store_txn *t)
{
	if (!t)
		return;
	if (t->txn)
		mdb_txn_abort(t->txn);
	t->st->writing = 0;
	free(t->ops);
	free(t->pref);
	free(t);
}

static int item_put(sv_store_txn *t, uint32_t kind, const void *id, size_t len, const float *x,
                    uint16_t flags)
{
	size_t n;
	unsigned char *rec;
	int rc;
	if (!t || !id || !x || len < 1 || len > SV_STORE_ID_MAX)
		return -EINVAL;
	n = ITEM_HDR + (size_t)t->st->d_in * sizeof(float);
	rec = malloc(n);
	if (!rec)
		return -ENOMEM;
	sv_put16(rec, FMT);
	sv_put16(rec + 2, flags);
	sv_put32(rec + 4, t->st->d_in);
	memcpy(rec + ITEM_HDR, x, (size_t)t->st->d_in * sizeof(float));
	rc = run_op(t, kind, id, len, rec, n, 0, NULL);
	free(rec);
	return neg(rc);
}

int sv_store_item_put(sv_store_txn *t, const void *id, size_t len, const float *x, uint16_t flags)
{
	return item_put(t, OP_KIND_ITEM_PUT, id, len, x, flags);
}

int sv_store_item_put_new(sv_store_txn *t, const void *id, size_t len, const float *x,
                          uint16_t flags)
{
	return item_put(t, OP_KIND_ITEM_NEW, id, len, x, flags);
}

int sv_store_item_del(sv_store_txn *t, const void *id, size_t len)
{
	if (!t || !id || len < 1 || len > SV_STORE_ID_MAX)
		return -EINVAL;
	return run_op(t, OP_KIND_ITEM_DEL, id, len, NULL, 0, 0, NULL);
}

int sv_store_pair_append(sv_store_txn *t, const struct sv_store_pair *p, uint64_t *seq)
{
	unsigned char rec[PAIR_HDR + 3 * SV_STORE_ID_MAX];
	unsigned char ckey[CKEY_MAX];
	size_t n, cn = 0;
	uint64_t s = 0;
	int rc;
	if (!t || !p || !seq || !p->id_a || !p->id_b || p->len_a < 1 ||
	    p->len_a > SV_STORE_ID_MAX || p->len_b < 1 || p->len_b > SV_STORE_ID_MAX ||
	    p->label > 1 || p->client_len > SV_STORE_ID_MAX || (p->client_len && !p->client))
		return -EINVAL;
	memset(rec, 0, PAIR_HDR);
	sv_put16(rec, FMT);
	rec[2] = p->label;
	rec[3] = p->client_len ? 1 : 0;
	rec[4] = (unsigned char)p->len_a;
	rec[5] = (unsigned char)p->len_b;
	rec[6] = (unsigned char)p->client_len;
	sv_put64(rec + 8, p->client_len ? p->client_seq : 0);
	sv_put64(rec + 16, p->recv_ns ? p->recv_ns : now_ns());
	n = PAIR_HDR;
	memcpy(rec + n, p->id_a, p->len_a);
	n += p->len_a;
	memcpy(rec + n, p->id_b, p->len_b);
	n += p->len_b;
	if (p->client_len) {
		memcpy(rec + n, p->client, p->client_len);
		n += p->client_len;
		ckey[0] = (unsigned char)p->client_len;
		memcpy(ckey + 1, p->client, p->client_len);
		put_be64(ckey + 1 + p->client_len, p->client_seq);
		cn = 1 + p->client_len + 8;
	}
	rc = run_op(t, OP_KIND_PAIR, rec, n, ckey, cn, 0, &s);
	if (rc == 0 || rc == SV_ERR_DUPLICATE || rc == SV_ERR_STALE)
		*seq = s;
	return neg(rc);
}

int sv_store_checkpoint_put(sv_store_txn *t, const struct sv_store_model *m, uint64_t *version)
{
	size_t wn, n;
	unsigned char *rec;
	uint64_t v = 0;
	int rc;
	if (!t || !m || !m->W || !version || (m->optim_len && !m->optim) ||
	    (m->settings_len && !m->settings) || (m->calib_len && !m->calib) ||
	    m->optim_len > UINT32_MAX || m->settings_len > UINT32_MAX || m->calib_len > UINT32_MAX)
		return -EINVAL;
	wn = (size_t)t->st->d_in * t->st->d_out * sizeof(float);
	n = MODEL_HDR + wn + m->optim_len + m->settings_len + m->calib_len;
	rec = malloc(n);
	if (!rec)
		return -ENOMEM;
	memset(rec, 0, MODEL_HDR);
	sv_put16(rec, FMT);
	sv_put32(rec + 4, t->st->d_in);
	sv_put32(rec + 8, t->st->d_out);
	sv_put64(rec + 16, m->step);
	sv_put64(rec + 24, m->applied_seq);
	sv_put64(rec + 32, m->time_ns ? m->time_ns : now_ns());
	sv_putf64(rec + 40, m->loss);
	sv_putf64(rec + 48, m->auc);
	sv_putf64(rec + 56, m->eer);
	sv_put32(rec + 64, (uint32_t)m->optim_len);
	sv_put32(rec + 68, (uint32_t)m->settings_len);
	sv_put32(rec + 72, (uint32_t)m->calib_len);
	memcpy(rec + MODEL_HDR, m->W, wn);
	if (m->optim_len)
		memcpy(rec + MODEL_HDR + wn, m->optim, m->optim_len);
	if (m->settings_len)
		memcpy(rec + MODEL_HDR + wn + m->optim_len, m->settings, m->settings_len);
	if (m->calib_len)
		memcpy(rec + MODEL_HDR + wn + m->optim_len + m->settings_len, m->calib,
		       m->calib_len);
	rc = run_op(t, OP_KIND_CKPT, rec, n, NULL, 0, 0, &v);
	free(rec);
	if (rc == 0)
		*version = v;
	return neg(rc);
}

int sv_store_set_active(sv_store_txn *t, uint64_t version)
{
	if (!t)
		return -EINVAL;
	return run_op(t, OP_KIND_ACTIVE, NULL, 0, NULL, 0, version, NULL);
}

/* "mark." + name, or -EINVAL for a name that does not fit. */
static int mark_key(char *buf, size_t cap, const char *name)
{
	int n;
	if (!name || !name[0])
		return -EINVAL;
	n = snprintf(buf, cap, "mark.%s", name);
	return n > 0 && (size_t)n < cap ? n : -EINVAL;
}

int sv_store_mark_put(sv_store_txn *t, const char *name, uint64_t value)
{
	char key[64];
	int n = mark_key(key, sizeof key, name);
	if (!t || n < 0)
		return -EINVAL;
	return run_op(t, OP_KIND_MARK, key, (size_t)n, NULL, 0, value, NULL);
}

/* ---- readers ---- */

int sv_store_read_begin(sv_store *st, sv_store_read **out)
{
	sv_store_read *r;
	int rc;
	if (!st || !out)
		return -EINVAL;
	r = calloc(1, sizeof *r);
	if (!r)
		return -ENOMEM;
	r->st = st;
	for (;;) {
		pthread_rwlock_rdlock(&st->map_lock);
		rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &r->txn);
		if (rc != MDB_MAP_RESIZED)
			break;
		pthread_rwlock_unlock(&st->map_lock);
		rc = adopt_size(st);
		if (rc) {
			free(r);
			return neg(rc);
		}
	}
	if (rc) {
		pthread_rwlock_unlock(&st->map_lock);
		free(r);
		return neg(rc);
	}
	*out = r;
	return 0;
}

void sv_store_read_end(sv_store_read *r)
{
	if (!r)
		return;
	for (int i = 0; i < 2; i++)
		if (r->vc[i].c)
			mdb_cursor_close(r->vc[i].c);
	mdb_txn_abort(r->txn);
	pthread_rwlock_unlock(&r->st->map_lock);
	free(r->walk_buf);
	for (size_t i = 0; i < r->nbufs; i++)
		free(r->bufs[i]);
	free(r->bufs);
	free(r);
}

/* The item value of id: dim, flags and vector id.  Returns 0,
 * SV_ERR_NOTFOUND, SV_ERR_CORRUPT or an LMDB code. */
static int item_head(sv_store_read *r, const void *id, size_t len, struct sv_store_item *out,
                     uint64_t *vid)
{
	MDB_val k = {len, (void *)id}, v;
	int rc = mdb_get(r->txn, r->st->items, &k, &v);
	if (rc == MDB_NOTFOUND)
		return SV_ERR_NOTFOUND;
	if (rc)
		return neg(rc);
	rc = item_vid(&v, vid);
	if (rc)
		return rc;
	out->flags = sv_get16((const unsigned char *)v.mv_data + 2);
	out->dim = sv_get32((const unsigned char *)v.mv_data + 4);
	out->vec = NULL;
	return out->dim == r->st->d_in ? 0 : SV_ERR_CORRUPT;
}

/* Copy vector vid of space (dim floats) into out through the reader's
 * cursor. */
static int vec_cursor_open(sv_store_read *r, enum vec_space space)
{
	struct vec_cursor *vc = &r->vc[space];
	if (!vc->c) {
		int rc = mdb_cursor_open(r->txn, r->st->vecs[space], &vc->c);
		if (rc)
			return neg(rc);
		vc->psize = r->st->psize;
	}
	return 0;
}

static int read_vec(sv_store_read *r, enum vec_space space, uint64_t vid, uint32_t dim, float *out)
{
	int rc = vec_cursor_open(r, space);
	return rc ? rc : vec_read(&r->vc[space], vid, out, (size_t)dim * sizeof(float));
}

/* Give the stored walk of r the store's trail, sized to the vector ids
 * stored now (entries for ids both cover kept).  No trail (and no error)
 * when another walk holds it, memory is short, or the ids are so sparse
 * that the trail would outgrow twice the vectors' count. */
static void trail_take(sv_store_read *r)
{
	struct vec_cursor *vc = &r->vc[VEC_STORED];
	struct vec_trail *t, *old;
	MDB_val k, v;
	MDB_stat ms;
	uint64_t lo, hi, n;
	if (vec_cursor_open(r, VEC_STORED) || mdb_stat(r->txn, r->st->vecs[VEC_STORED], &ms) ||
	    mdb_cursor_get(vc->c, &k, &v, MDB_FIRST) || k.mv_size != VEC_KEY)
		return;
	lo = get_be64(k.mv_data) >> VEC_CHUNK_BITS;
	vc->ok = 0;
	if (mdb_cursor_get(vc->c, &k, &v, MDB_LAST) || k.mv_size != VEC_KEY)
		return;
	hi = get_be64(k.mv_data) >> VEC_CHUNK_BITS;
	n = hi - lo + 1;
	if (hi < lo || n > 2 * (ms.ms_entries / r->st->vec_chunks) + 4096)
		return;
	old = atomic_exchange(&r->st->trail, NULL);
	if (old && old->map_size != r->st->map_size) { /* remapped: its pages moved */
		trail_free(old);
		old = NULL;
	}
	if (old && old->lo == lo && old->n == n) {
		t = old;
	} else {
		t = calloc(1, sizeof *t);
		if (t)
			t->at = calloc(n, sizeof *t->at);
		if (!t || !t->at) {
			trail_free(t);
			trail_free(old);
			return;
		}
		t->lo = lo;
		t->n = n;
		t->base = old ? old->base : NULL;
		t->shift = (unsigned)__builtin_ctz(r->st->psize);
		t->map_size = r->st->map_size;
		for (uint64_t id = old && old->lo > lo ? old->lo : lo;
		     old && id < old->lo + old->n && id <= hi; id++)
			t->at[id - lo] = old->at[id - old->lo];
		trail_free(old);
	}
	vc->trail = t;
}

/* Hand the trail back to the store (the one another walk handed back
 * meanwhile, if any, is dropped). */
static void trail_give(sv_store_read *r)
{
	struct vec_trail *t = r->vc[VEC_STORED].trail;
	if (t) {
		r->vc[VEC_STORED].trail = NULL;
		trail_free(atomic_exchange(&r->st->trail, t));
	}
}

int sv_store_item_read(sv_store_read *r, const void *id, size_t len, float *vec,
                       struct sv_store_item *out)
{
	struct sv_store_item it;
	uint64_t vid;
	int rc;
	if (!r || !id || (!vec && !out) || len < 1 || len > SV_STORE_ID_MAX)
		return -EINVAL;
	rc = item_head(r, id, len, &it, &vid);
	if (rc == 0 && vec)
		rc = read_vec(r, vec_space_of(id, len), vid, it.dim, vec);
	if (rc)
		return rc;
	if (out) {
		*out = it;
		out->vec = vec;
	}
	return 0;
}

int sv_store_item_get(sv_store_read *r, const void *id, size_t len, float *out)
{
	if (!out)
		return -EINVAL;
	return sv_store_item_read(r, id, len, out, NULL);
}

static int walk_buf(sv_store_read *r)
{
	if (!r->walk_buf)
		r->walk_buf = malloc((size_t)r->st->d_in * sizeof(float));
	return r->walk_buf ? 0 : -ENOMEM;
}

int sv_store_item_walk(sv_store_read *r,
		       int (*fn)(void *ctx, const void *id, size_t len, const struct sv_store_item *it),
		       void *ctx)
{
	MDB_cursor *c = NULL;
	MDB_val k, v;
	int rc, mine = 0;
	if (!r || !fn)
		return -EINVAL;
	rc = walk_buf(r);
	if (rc)
		return rc;
	rc = mdb_cursor_open(r->txn, r->st->items, &c);
	if (rc)
		return neg(rc);
	while ((rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) == 0) {
		const unsigned char *p = v.mv_data;
		struct sv_store_item it;
		uint64_t vid;
		rc = item_vid(&v, &vid);
		if (rc == 0 && sv_get32(p + 4) != r->st->d_in)
			rc = SV_ERR_CORRUPT;
		if (rc == 0)
			rc = read_vec(r, vec_space_of(k.mv_data, k.mv_size), vid, r->st->d_in,
			              r->walk_buf);
		if (rc)
			break;
		it.flags = sv_get16(p + 2);
		it.dim = r->st->d_in;
		it.vec = r->walk_buf;
		rc = fn(ctx, k.mv_data, k.mv_size, &it);
		if (rc) {
			mine = 1;
			break;
		}
	}
	mdb_cursor_close(c);
	if (rc == MDB_NOTFOUND)
		return 0;
	return mine || rc == SV_ERR_CORRUPT ? rc : neg(rc);
}

int sv_store_stored_walk(sv_store_read *r,
			 int (*fn)(void *ctx, const void *id, size_t len, const struct sv_store_item *it),
			 void *ctx)
{
	return sv_store_stored_walk_to(r, NULL, fn, ctx);
}

/* One item of a stored walk's window: where its id is, its vector id. */
struct walk_ent {
	uint64_t vid;
	const void *id; /* in the map */
	uint32_t len;
	uint16_t flags;
};

static int cmp_walk_ent(const void *a, const void *b)
{
	uint64_t x = ((const struct walk_ent *)a)->vid, y = ((const struct walk_ent *)b)->vid;
	return x < y ? -1 : x > y;
}

/* Sort w by vector id.  The ids of a window are unique and most often
 * dense (given out one after another): then each entry goes straight to
 * its place in a table of max - min + 1 slots; else qsort. */
static int walk_sort(struct walk_ent *w, size_t n)
{
	uint64_t lo = UINT64_MAX, hi = 0, span;
	struct walk_ent *t;
	size_t j = 0;
	for (size_t i = 0; i < n; i++) {
		lo = w[i].vid < lo ? w[i].vid : lo;
		hi = w[i].vid > hi ? w[i].vid : hi;
	}
	span = n ? hi - lo + 1 : 0;
	if (n < 2 || span > 2 * (uint64_t)n || (t = calloc(span, sizeof *t)) == NULL) {
		qsort(w, n, sizeof *w, cmp_walk_ent);
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		struct walk_ent *slot = t + (w[i].vid - lo);
		if (slot->id) { /* two items naming one vector */
			free(t);
			return SV_ERR_CORRUPT;
		}
		*slot = w[i];
	}
	for (uint64_t s = 0; s < span; s++)
		if (t[s].id)
			w[j++] = t[s];
	free(t);
	return 0;
}

/* The stored walk reads the items in windows of WALK_WINDOW, each sorted
 * by vector id, so the vectors come in the order they lie in vecs: one
 * cursor step a record, whatever order the ids were written in (a store of
 * up to WALK_WINDOW items is read front to back once).  24 bytes an item
 * of the window. */
#define WALK_WINDOW ((size_t)1 << 20)

int sv_store_stored_walk_to(sv_store_read *r, float *(*dest)(void *ctx),
                            int (*fn)(void *ctx, const void *id, size_t len,
                                      const struct sv_store_item *it),
                            void *ctx)
{
	MDB_cursor *c = NULL;
	MDB_val k, v;
	struct walk_ent *w = NULL;
	size_t cap = 0;
	int rc, op = MDB_FIRST, end = 0;
	if (!r || !fn)
		return -EINVAL;
	rc = walk_buf(r);
	if (rc)
		return rc;
	rc = neg(mdb_cursor_open(r->txn, r->st->items, &c));
	trail_take(r);
	while (rc == 0 && !end) {
		size_t n = 0;
		int sorted = 1; /* items written in id order need no sort */
		while (n < WALK_WINDOW && (rc = mdb_cursor_get(c, &k, &v, op)) == 0) {
			op = MDB_NEXT;
			if (sv_store_id_reserved(k.mv_data, k.mv_size)) {
				/* every inline id sorts between "~v" and "~w": one seek past
				 * them, none of their vectors read */
				k.mv_data = (void *)"~w";
				k.mv_size = 2;
				op = MDB_SET_RANGE;
				continue;
			}
			if (n == cap) {
				size_t nc = cap ? 2 * cap : 4096;
				struct walk_ent *nw = realloc(w, nc * sizeof *w);
				if (!nw) {
					rc = -ENOMEM;
					break;
				}
				w = nw;
				cap = nc;
			}
			if (item_vid(&v, &w[n].vid) ||
			    sv_get32((const unsigned char *)v.mv_data + 4) != r->st->d_in) {
				rc = SV_ERR_CORRUPT;
				break;
			}
			w[n].id = k.mv_data;
			w[n].len = (uint32_t)k.mv_size;
			w[n].flags = sv_get16((const unsigned char *)v.mv_data + 2);
			sorted &= n == 0 || w[n - 1].vid < w[n].vid;
			n++;
		}
		if (rc == MDB_NOTFOUND) {
			end = 1;
			rc = 0;
		}
		if (rc) {
			rc = neg(rc);
			break;
		}
		if (!sorted) {
			rc = walk_sort(w, n);
			if (rc)
				break;
		}
		for (size_t i = 0; rc == 0 && i < n; i++) {
			struct sv_store_item it;
			float *to = dest ? dest(ctx) : r->walk_buf;
			rc = to ? read_vec(r, VEC_STORED, w[i].vid, r->st->d_in, to) : -EINVAL;
			if (rc)
				break;
			it.flags = w[i].flags;
			it.dim = r->st->d_in;
			it.vec = to;
			rc = fn(ctx, w[i].id, w[i].len, &it);
		}
	}
	trail_give(r);
	mdb_cursor_close(c);
	free(w);
	return rc;
}

static int decode_pair(const MDB_val *k, const MDB_val *v, struct sv_store_pair *out)
{
	const unsigned char *p = v->mv_data;
	size_t la, lb, lc;
	if (k->mv_size != 8 || v->mv_size < PAIR_HDR || sv_get16(p) != FMT)
		return SV_ERR_CORRUPT;
	la = p[4];
	lb = p[5];
	lc = p[6];
	if (v->mv_size != PAIR_HDR + la + lb + lc || !la || !lb || p[2] > 1)
		return SV_ERR_CORRUPT;
	out->seq = get_be64(k->mv_data);
	out->label = p[2];
	out->len_a = la;
	out->len_b = lb;
	out->id_a = p + PAIR_HDR;
	out->id_b = p + PAIR_HDR + la;
	out->client_len = lc;
	out->client = lc ? p + PAIR_HDR + la + lb : NULL;
	out->client_seq = sv_get64(p + 8);
	out->recv_ns = sv_get64(p + 16);
	return 0;
}

int sv_store_pair_get(sv_store_read *r, uint64_t seq, struct sv_store_pair *out)
{
	unsigned char kb[8];
	MDB_val k = {8, kb}, v;
	int rc;
	if (!r || !out)
		return -EINVAL;
	put_be64(kb, seq);
	rc = mdb_get(r->txn, r->st->pairs, &k, &v);
	if (rc == MDB_NOTFOUND)
		return SV_ERR_NOTFOUND;
	if (rc)
		return neg(rc);
	return decode_pair(&k, &v, out);
}

int sv_store_last_seq(sv_store_read *r, uint64_t *seq)
{
	if (!r || !seq)
		return -EINVAL;
	return last_be64(r->txn, r->st->pairs, seq);
}

int sv_store_cursor_open(sv_store_read *r, uint64_t from, sv_store_cursor **out)
{
	sv_store_cursor *c;
	int rc;
	if (!r || !out)
		return -EINVAL;
	c = calloc(1, sizeof *c);
	if (!c)
		return -ENOMEM;
	rc = mdb_cursor_open(r->txn, r->st->pairs, &c->cur);
	if (rc) {
		free(c);
		return neg(rc);
	}
	c->r = r;
	c->from = from;
	*out = c;
	return 0;
}

int sv_store_cursor_next(sv_store_cursor *c, struct sv_store_pair *out)
{
	unsigned char kb[8];
	MDB_val k, v;
	int rc;
	if (!c || !out)
		return -EINVAL;
	if (!c->started) {
		put_be64(kb, c->from);
		k.mv_size = 8;
		k.mv_data = kb;
		rc = mdb_cursor_get(c->cur, &k, &v, MDB_SET_RANGE);
		c->started = 1;
	} else {
		rc = mdb_cursor_get(c->cur, &k, &v, MDB_NEXT);
	}
	if (rc == MDB_NOTFOUND)
		return SV_ERR_NOTFOUND;
	if (rc)
		return neg(rc);
	return decode_pair(&k, &v, out);
}

void sv_store_cursor_close(sv_store_cursor *c)
{
	if (!c)
		return;
	mdb_cursor_close(c->cur);
	free(c);
}

/* The u64 under key (len bytes) in meta. */
static int meta_u64(sv_store_read *r, const void *key, size_t len, uint64_t *out)
{
	MDB_val k = {len, (void *)key}, v;
	int rc = mdb_get(r->txn, r->st->meta, &k, &v);
	if (rc == MDB_NOTFOUND)
		return SV_ERR_NOTFOUND;
	if (rc)
		return neg(rc);
	if (v.mv_size != 8)
		return SV_ERR_CORRUPT;
	*out = sv_get64(v.mv_data);
	return 0;
}

int sv_store_mark_get(sv_store_read *r, const char *name, uint64_t *value)
{
	char key[64];
	int n = mark_key(key, sizeof key, name);
	if (!r || !value || n < 0)
		return -EINVAL;
	return meta_u64(r, key, (size_t)n, value);
}

int sv_store_active(sv_store_read *r, uint64_t *version)
{
	if (!r || !version)
		return -EINVAL;
	return meta_u64(r, "active", 6, version);
}

/* A checkpoint record at v (whole, or only its header: head_only). */
static int decode_model(const sv_store *st, uint64_t version, const MDB_val *v, int head_only,
                        struct sv_store_model *out)
{
	const unsigned char *p = v->mv_data;
	size_t wn, ol, sl, cl;
	if (v->mv_size < MODEL_HDR)
		return SV_ERR_CORRUPT;
	if (sv_get16(p) != FMT)
		return sv_get16(p) > FMT ? SV_ERR_VERSION : SV_ERR_CORRUPT;
	if (sv_get32(p + 4) != st->d_in || sv_get32(p + 8) != st->d_out)
		return SV_ERR_CORRUPT;
	wn = (size_t)st->d_in * st->d_out * sizeof(float);
	ol = sv_get32(p + 64);
	sl = sv_get32(p + 68);
	cl = sv_get32(p + 72);
	if (!head_only && v->mv_size != MODEL_HDR + wn + ol + sl + cl)
		return SV_ERR_CORRUPT;
	memset(out, 0, sizeof *out);
	out->version = version;
	out->step = sv_get64(p + 16);
	out->applied_seq = sv_get64(p + 24);
	out->time_ns = sv_get64(p + 32);
	out->loss = sv_getf64(p + 40);
	out->auc = sv_getf64(p + 48);
	out->eer = sv_getf64(p + 56);
	if (head_only)
		return 0;
	out->W = p + MODEL_HDR;
	out->optim = p + MODEL_HDR + wn;
	out->optim_len = ol;
	out->settings = p + MODEL_HDR + wn + ol;
	out->settings_len = sl;
	out->calib = p + MODEL_HDR + wn + ol + sl;
	out->calib_len = cl;
	return 0;
}

int sv_store_model_get(sv_store_read *r, uint64_t version, struct sv_store_model *out)
{
	unsigned char *buf = NULL;
	void **bufs;
	MDB_val v;
	int rc;
	if (!r || !out)
		return -EINVAL;
	if (version == 0) {
		rc = sv_store_active(r, &version);
		if (rc)
			return neg(rc);
	}
	rc = model_load(r->st, r->txn, version, &v, &buf);
	if (rc == 0)
		rc = decode_model(r->st, version, &v, 0, out);
	if (rc || !buf) {
		free(buf);
		return rc;
	}
	/* the reader owns the copy: valid until sv_store_read_end, like the map */
	bufs = realloc(r->bufs, (r->nbufs + 1) * sizeof *bufs);
	if (!bufs) {
		free(buf);
		return -ENOMEM;
	}
	r->bufs = bufs;
	r->bufs[r->nbufs++] = buf;
	return 0;
}

void sv_store_model_weights(const sv_store *st, const struct sv_store_model *m, float *out)
{
	memcpy(out, m->W, (size_t)st->d_in * st->d_out * sizeof(float));
}

int sv_store_versions(sv_store_read *r, struct sv_store_version *out, size_t cap, size_t *n)
{
	MDB_cursor *c;
	MDB_val k, v;
	uint64_t active = 0;
	size_t i = 0;
	int rc;
	if (!r || !n || (cap && !out))
		return -EINVAL;
	rc = sv_store_active(r, &active);
	if (rc && rc != SV_ERR_NOTFOUND)
		return neg(rc);
	rc = mdb_cursor_open(r->txn, r->st->models, &c);
	if (rc)
		return neg(rc);
	rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
	while (rc == 0) {
		struct sv_store_model m;
		uint64_t ver;
		uint32_t chunk;
		rc = model_key_parse(&k, &ver, &chunk);
		if (rc == 0 && chunk != 0) {
			rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
			continue;
		}
		if (rc == 0)
			rc = decode_model(r->st, ver, &v, 1, &m);
		if (rc)
			break;
		if (i < cap) {
			out[i].version = m.version;
			out[i].step = m.step;
			out[i].applied_seq = m.applied_seq;
			out[i].time_ns = m.time_ns;
			out[i].loss = m.loss;
			out[i].auc = m.auc;
			out[i].eer = m.eer;
			out[i].active = m.version == active;
		}
		i++;
		rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(c);
	if (rc != MDB_NOTFOUND)
		return neg(rc);
	*n = i;
	return 0;
}

/* Pages on LMDB's free list (the free database, dbi 0: txn id -> a page
 * list whose first word is its length), as mdb_stat -f counts them. */
static int free_pages(sv_store_read *r, uint64_t *out)
{
	MDB_cursor *c;
	MDB_val k, v;
	int rc = mdb_cursor_open(r->txn, 0, &c);
	*out = 0;
	if (rc)
		return neg(rc);
	while ((rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) == 0) {
		size_t n;
		if (v.mv_size < sizeof n)
			continue;
		memcpy(&n, v.mv_data, sizeof n);
		*out += n;
	}
	mdb_cursor_close(c);
	return rc == MDB_NOTFOUND ? 0 : neg(rc);
}

int sv_store_stat(sv_store_read *r, struct sv_store_stat *out)
{
	MDB_stat ms;
	MDB_envinfo info;
	MDB_val k = {4, (void *)"meta"}, v;
	struct sv_store_stat s;
	int rc;
	if (!r || !out)
		return -EINVAL;
	memset(&s, 0, sizeof s);
	rc = mdb_stat(r->txn, r->st->items, &ms);
	if (rc)
		return neg(rc);
	s.items = ms.ms_entries;
	rc = mdb_stat(r->txn, r->st->vecs[VEC_INLINE], &ms);
	if (rc)
		return neg(rc);
	s.inline_items = ms.ms_entries / (r->st->vec_chunks ? r->st->vec_chunks : 1);
	rc = mdb_stat(r->txn, r->st->pairs, &ms);
	if (rc)
		return neg(rc);
	s.pairs = ms.ms_entries;
	s.log_bytes =
	    (size_t)(ms.ms_branch_pages + ms.ms_leaf_pages + ms.ms_overflow_pages) * ms.ms_psize;
	rc = model_count(r->st, r->txn, &s.models);
	if (rc)
		return rc;
	rc = sv_store_last_seq(r, &s.last_seq);
	if (rc)
		return neg(rc);
	mdb_env_info(r->st->env, &info);
	mdb_env_stat(r->st->env, &ms);
	s.map_size = info.me_mapsize;
	s.map_used = (info.me_last_pgno + 1) * (size_t)ms.ms_psize;
	s.page_size = ms.ms_psize;
	rc = free_pages(r, &s.free_pages);
	if (rc)
		return rc;
	s.used_bytes = s.map_used - (size_t)s.free_pages * ms.ms_psize;
	rc = mdb_stat(r->txn, r->st->producers, &ms);
	if (rc)
		return neg(rc);
	s.producers = ms.ms_entries;
	if (s.pairs) {
		MDB_cursor *c;
		MDB_val fk, fv;
		rc = mdb_cursor_open(r->txn, r->st->pairs, &c);
		if (rc)
			return neg(rc);
		rc = mdb_cursor_get(c, &fk, &fv, MDB_FIRST);
		mdb_cursor_close(c);
		if (rc || fk.mv_size != 8)
			return rc ? neg(rc) : SV_ERR_CORRUPT;
		s.first_seq = get_be64(fk.mv_data);
	}
	rc = mdb_get(r->txn, r->st->meta, &k, &v);
	if (rc)
		return rc == MDB_NOTFOUND ? SV_ERR_CORRUPT : rc;
	if (v.mv_size < META_LEN)
		return SV_ERR_CORRUPT;
	s.created_ns = sv_get64((unsigned char *)v.mv_data + 16);
	s.settings_fp = sv_get64((unsigned char *)v.mv_data + 24);
	*out = s;
	return 0;
}

/* ---- content ids and fingerprints ---- */

void sv_store_inline_id(const float *x, uint32_t d, char out[SV_STORE_INLINE_ID_LEN + 1])
{
	const uint8_t *b = (const uint8_t *)x;
	size_t n = (size_t)d * sizeof(float), i;
	uint64_t h1 = 0x9e3779b97f4a7c15ULL ^ n, h2 = 0xc2b2ae3d27d4eb4fULL;

	/* two multiply-xor lanes, 8 bytes at a time */
	for (i = 0; i + 8 <= n; i += 8) {
		uint64_t w;

		memcpy(&w, b + i, 8);
		h1 = (h1 ^ w) * 0xff51afd7ed558ccdULL;
		h1 ^= h1 >> 29;
		h2 = (h2 + w) * 0xc4ceb9fe1a85ec53ULL;
		h2 ^= h2 >> 31;
	}
	for (; i < n; i++) {
		h1 = (h1 ^ b[i]) * 0xff51afd7ed558ccdULL;
		h2 = (h2 + b[i]) * 0xc4ceb9fe1a85ec53ULL;
	}
	h1 ^= h2 >> 17;
	h2 ^= h1 >> 23;
	snprintf(out, SV_STORE_INLINE_ID_LEN + 1, "~v%016llx%016llx", (unsigned long long)h1,
	         (unsigned long long)h2);
}

int sv_store_id_reserved(const void *id, size_t len)
{
	return id != NULL && len >= 2 && memcmp(id, "~v", 2) == 0;
}

uint64_t sv_store_settings_fp(int loss_kind, int loss_mode, int optim_kind)
{
	int fixed[3] = {loss_kind, loss_mode, optim_kind};

	return sv_fnv1a64(SV_FNV1A64_INIT, fixed, sizeof(fixed));
}

void sv_store_set_keep_versions(sv_store *st, uint32_t n)
{
	if (st != NULL)
		st->keep_versions = n ? n : 1;
}

void sv_store_set_pins(sv_store *st, uint64_t trim_from, uint64_t version, uint64_t version2)
{
	if (st != NULL) {
		st->trim_pin = trim_from;
		st->pin_version = version;
		st->pin_version2 = version2;
	}
}

/* ---- retention, de-duplication windows, erasure ---- */

int sv_store_log_trim(sv_store_txn *t, uint64_t keep_from, uint64_t before_ns, size_t max_rows,
                      size_t *deleted)
{
	unsigned char a[16];
	uint64_t n = 0;
	int rc;
	if (!t || !deleted)
		return -EINVAL;
	sv_put64(a, keep_from);
	sv_put64(a + 8, before_ns);
	rc = run_op(t, OP_KIND_TRIM, a, sizeof a, NULL, 0, max_rows, &n);
	*deleted = rc == 0 ? (size_t)n : 0;
	return rc;
}

int sv_store_dedup_expire(sv_store_txn *t, uint64_t before_ns, size_t max_entries,
                          size_t *expired)
{
	unsigned char a[8];
	uint64_t n = 0;
	int rc;
	if (!t || !expired)
		return -EINVAL;
	sv_put64(a, before_ns);
	rc = run_op(t, OP_KIND_EXPIRE, a, sizeof a, NULL, 0, max_entries, &n);
	*expired = rc == 0 ? (size_t)n : 0;
	return rc;
}

int sv_store_purge(sv_store_txn *t, const void *id, size_t len, uint64_t from, size_t max_rows,
                   uint64_t *next, size_t *deleted)
{
	unsigned char b[8];
	uint64_t nx = 0;
	int rc;
	if (!t || !id || len < 1 || len > SV_STORE_ID_MAX || !next || !deleted || !max_rows)
		return -EINVAL;
	sv_put64(b, max_rows);
	rc = run_op(t, OP_KIND_PURGE, id, len, b, sizeof b, from, &nx);
	*next = rc == 0 ? nx : 0;
	*deleted = rc == 0 ? (size_t)t->count : 0;
	return rc;
}

int sv_store_producer_get(sv_store_read *r, const void *client, size_t len,
                          struct sv_store_producer *out)
{
	MDB_val k = {len, (void *)client}, v;
	int rc;
	if (!r || !client || !out || len < 1 || len > SV_STORE_ID_MAX)
		return -EINVAL;
	rc = mdb_get(r->txn, r->st->producers, &k, &v);
	if (rc == MDB_NOTFOUND)
		return SV_ERR_NOTFOUND;
	if (rc)
		return neg(rc);
	if (v.mv_size < PROD_LEN)
		return SV_ERR_CORRUPT;
	out->hwm = sv_get64((const unsigned char *)v.mv_data + 8);
	out->last_ns = sv_get64((const unsigned char *)v.mv_data + 16);
	out->depth = r->st->dedup_depth;
	return 0;
}

void sv_store_set_max_map_size(sv_store *st, size_t n)
{
	if (st != NULL && n >= ((size_t)1 << 20))
		st->max_map_size = n;
}

void sv_store_set_dedup_depth(sv_store *st, uint32_t n)
{
	if (st != NULL)
		st->dedup_depth = n ? n : 1;
}

/* ---- consistency of items and vectors ---- */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* A vector's place for sv_store_vec_check: its space in the top bit. */
#define CHECK_INLINE ((uint64_t)1 << 63)

int sv_store_vec_check(sv_store_read *r, struct sv_store_vec_check *out)
{
	struct sv_store_vec_check ck;
	MDB_stat ms;
	MDB_cursor *c = NULL;
	MDB_val k, v;
	uint64_t *vids = NULL, n = 0, want;
	size_t cap = 0, i;
	unsigned char *seen = NULL;
	int rc;

	if (!r || !out)
		return -EINVAL;
	memset(&ck, 0, sizeof ck);
	want = (uint64_t)r->st->d_in * sizeof(float);
	rc = neg(mdb_stat(r->txn, r->st->items, &ms));
	if (rc)
		return rc;
	cap = ms.ms_entries;
	vids = malloc((cap ? cap : 1) * sizeof *vids);
	seen = calloc(cap ? cap : 1, 1);
	if (!vids || !seen) {
		rc = -ENOMEM;
		goto out;
	}
	rc = mdb_cursor_open(r->txn, r->st->items, &c);
	while (rc == 0 && (rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) == 0) {
		uint64_t vid;
		if (n == cap || item_vid(&v, &vid) || vid >= CHECK_INLINE ||
		    sv_get32((const unsigned char *)v.mv_data + 4) != r->st->d_in) {
			ck.bad_items++;
			continue;
		}
		vids[n++] = vid | (vec_space_of(k.mv_data, k.mv_size) == VEC_INLINE ? CHECK_INLINE : 0);
	}
	mdb_cursor_close(c);
	c = NULL;
	if (rc != MDB_NOTFOUND)
		goto out;
	rc = 0;
	ck.items = n + ck.bad_items;
	qsort(vids, n, sizeof *vids, cmp_u64);
	for (i = 1; i < n; i++)
		ck.shared += vids[i] == vids[i - 1];
	/* in each vectors database, each run of records with one vector id:
	 * named by an item, whole */
	for (int sp = 0; rc == 0 && sp < 2; sp++) {
		uint64_t cur = 0, bytes = 0, tag = sp == VEC_INLINE ? CHECK_INLINE : 0;
		int have = 0;
		rc = mdb_cursor_open(r->txn, r->st->vecs[sp], &c);
		for (;;) {
			uint64_t key = 0;
			int more = rc == 0 && (rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) == 0;
			if (more) {
				if (k.mv_size != VEC_KEY) {
					ck.bad_records++;
					continue;
				}
				key = get_be64(k.mv_data);
				ck.records++;
			}
			if (have && (!more || key >> VEC_CHUNK_BITS != cur)) {
				uint64_t id = cur | tag, *hit = bsearch(&id, vids, n, sizeof *vids, cmp_u64);
				ck.vectors++;
				if (!hit) {
					ck.orphans++;
				} else if (bytes != want) {
					ck.bad_vectors++;
				} else {
					while (hit > vids && hit[-1] == id)
						hit--;
					for (; hit < vids + n && *hit == id; hit++)
						seen[hit - vids] = 1;
				}
				have = 0;
			}
			if (!more)
				break;
			if (!have) {
				cur = key >> VEC_CHUNK_BITS;
				bytes = 0;
				have = 1;
				if ((key & (((uint64_t)1 << VEC_CHUNK_BITS) - 1)) != 0)
					ck.bad_vectors++; /* its first record is missing */
			}
			bytes += v.mv_size;
		}
		mdb_cursor_close(c);
		c = NULL;
		if (rc != MDB_NOTFOUND)
			goto out;
		rc = 0;
	}
	for (i = 0; i < n; i++)
		ck.missing += !seen[i];
	*out = ck;
out:
	mdb_cursor_close(c);
	free(seen);
	free(vids);
	return neg(rc);
}
