/* topk.c - the projection cache and its holder (see sv/topk.h): chunked
 * append-only rows of normalized embeddings, an id -> row hash index,
 * tombstones, blocked GEMM + k-heap queries, and versioned rebuilds with a
 * mutation log.
 *
 * Layout: rows live in fixed chunks of CHUNK_ROWS rows that never move once
 * allocated, so a query can scan while a writer appends.  A writer fills rows
 * past the published count, then publishes the new count with a release
 * store; a query reads the count once with an acquire load and scans only
 * rows below it.  Row contents and ids never change after publication; only
 * the alive flag goes from 1 to 0, once.  Leaves out: slot reuse and
 * compaction (a rebuild compacts).
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "bytes.h"
#include "sv/blas.h"
#include "sv/error.h"
#include "sv/model.h"
#include "sv/store.h"
#include "sv/topk.h"

#define CHUNK_SHIFT 13
#define CHUNK_ROWS (1u << CHUNK_SHIFT)
#define CHUNK_MASK (CHUNK_ROWS - 1u)
#define MAX_CHUNKS (SV_TOPK_ROWS_MAX / CHUNK_ROWS)
#define ID_BLOCK 65536u
#define SCORE_BLOCK_FLOATS 65536u /* 256 KiB of scores per GEMM block */
#define HUGE_PAGE ((size_t)2 << 20)

struct row_meta {
	const uint8_t *id;
	size_t len;
};

struct chunk {
	float *E; /* CHUNK_ROWS x d_out */
	uint32_t d_out;
	struct chunk *next; /* in the spares */
	struct row_meta meta[CHUNK_ROWS];
	_Atomic unsigned char alive[CHUNK_ROWS];
};

struct id_block {
	struct id_block *next;
	size_t used, cap;
	uint8_t data[];
};

struct sv_topk_cache {
	atomic_uint refs;
	uint64_t version;
	uint32_t d_in, d_out;
	float *W;
	pthread_mutex_t wmu;     /* writers and id lookups */
	_Atomic uint32_t n_rows; /* published rows */
	atomic_size_t n_live;
	struct chunk **chunks; /* MAX_CHUNKS slots, filled in order */
	uint32_t n_chunks;
	struct id_block *ids;
	uint64_t *table;  /* entry(row, hash), 0 = empty; linear probing */
	size_t table_cap; /* power of two */
	size_t table_used;
};

/* ---- small helpers ------------------------------------------------------ */

static int all_finite(const float *x, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isfinite(x[i]))
			return 0;
	return 1;
}

/* ids hashed and their slots prefetched this far ahead, the id bytes twice as far */
#define INDEX_AHEAD 8

static uint32_t hash_id(const uint8_t *id, size_t len)
{
	uint64_t h = sv_fnv1a64(SV_FNV1A64_INIT, id, len); /* folded */

	return (uint32_t)(h ^ (h >> 32));
}

/* E (m x d_out) = rownorm(X W) through sv_model_forward(), so that cached
 * embeddings are bit for bit those of the rest of simverify.
 * SV_ERR_NONFINITE when X holds NaN or Inf (or X W overflows float): then E
 * does too, since NaN * w and Inf * w are never finite (w = 0 included) and
 * the norm of a non-finite row is non-finite. */
static int project(const struct sv_topk_cache *c, const float *X, size_t m, float *E)
{
	int rc = sv_model_forward(X, m, c->W, c->d_in, c->d_out, E, NULL);
	if (rc < 0)
		return rc;
	return all_finite(E, m * c->d_out) ? 0 : SV_ERR_NONFINITE;
}

static struct row_meta *meta_of(struct sv_topk_cache *c, uint32_t row)
{
	return &c->chunks[row >> CHUNK_SHIFT]->meta[row & CHUNK_MASK];
}

static const float *emb_of(const struct sv_topk_cache *c, uint32_t row)
{
	return c->chunks[row >> CHUNK_SHIFT]->E + (size_t)(row & CHUNK_MASK) * c->d_out;
}

/* ---- the id index (caller holds wmu) ------------------------------------- */

/* A table entry packs the id's hash (high half) and row + 1 (low half), so
 * probing compares hashes without touching the rows; 0 is an empty slot. */
static uint64_t entry(uint32_t row, uint32_t h)
{
	return (uint64_t)h << 32 | (uint64_t)(row + 1u);
}

static uint32_t entry_row(uint64_t v)
{
	return (uint32_t)v - 1u;
}

static uint32_t entry_hash(uint64_t v)
{
	return (uint32_t)(v >> 32);
}

/* The table slot holding id, or the empty slot where it would go. */
static size_t table_find(struct sv_topk_cache *c, const uint8_t *id, size_t len, uint32_t h)
{
	size_t mask = c->table_cap - 1;
	for (size_t i = h & mask;; i = (i + 1) & mask) {
		uint64_t v = c->table[i];
		if (v == 0)
			return i;
		if (entry_hash(v) != h)
			continue;
		struct row_meta *rm = meta_of(c, entry_row(v));
		if (rm->len == len && memcmp(rm->id, id, len) == 0)
			return i;
	}
}

static int table_reserve(struct sv_topk_cache *c, size_t more)
{
	size_t need = c->table_used + more;
	if (need * 2 <= c->table_cap)
		return 0;
	size_t cap = c->table_cap ? c->table_cap : 64;
	while (need * 2 > cap)
		cap *= 2;
	uint64_t *t = calloc(cap, sizeof(*t));
	if (t == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < c->table_cap; i++) {
		uint64_t v = c->table[i];
		if (v == 0)
			continue;
		size_t j = entry_hash(v) & (cap - 1);
		while (t[j] != 0)
			j = (j + 1) & (cap - 1);
		t[j] = v;
	}
	free(c->table);
	c->table = t;
	c->table_cap = cap;
	return 0;
}

/* Backward-shift deletion keeps linear probing tombstone-free. */
static void table_remove(struct sv_topk_cache *c, size_t i)
{
	size_t mask = c->table_cap - 1;
	size_t j = i;
	for (;;) {
		j = (j + 1) & mask;
		uint64_t v = c->table[j];
		if (v == 0)
			break;
		size_t home = entry_hash(v) & mask;
		/* move v into the hole at i unless its home lies in (i, j] */
		if (((j - home) & mask) >= ((j - i) & mask)) {
			c->table[i] = v;
			i = j;
		}
	}
	c->table[i] = 0;
	c->table_used--;
}

/* Look id up; the live row or UINT32_MAX. */
static uint32_t lookup(struct sv_topk_cache *c, const uint8_t *id, size_t len)
{
	if (c->table_cap == 0)
		return UINT32_MAX;
	size_t i = table_find(c, id, len, hash_id(id, len));
	return c->table[i] ? entry_row(c->table[i]) : UINT32_MAX;
}

/* ---- id storage (caller holds wmu) --------------------------------------- */

/* Make room for `bytes` more id bytes in the current block, so that one
 * batch's ids are then copied without failing. */
static int ids_reserve(struct sv_topk_cache *c, size_t bytes)
{
	if (c->ids != NULL && c->ids->cap - c->ids->used >= bytes)
		return 0;
	size_t cap = bytes > ID_BLOCK ? bytes : ID_BLOCK;
	struct id_block *b = malloc(sizeof(*b) + cap);
	if (b == NULL)
		return -ENOMEM;
	b->used = 0;
	b->cap = cap;
	b->next = c->ids;
	c->ids = b;
	return 0;
}

/* Copy one id into the current block (room reserved by ids_reserve). */
static const uint8_t *ids_copy(struct sv_topk_cache *c, const uint8_t *id, size_t len)
{
	uint8_t *p = c->ids->data + c->ids->used;
	memcpy(p, id, len);
	c->ids->used += len;
	return p;
}

/* ---- spare chunks ------------------------------------------------------ */

/* The chunks of the cache released last, for the next cache to take: a
 * rebuild fills a new cache about the size of the one it replaces, and a
 * chunk taken from here costs no page faults and no zeroing by the kernel
 * (at 1M items, 400 MB of fresh memory, a tenth of a rebuild in a profile).
 * Holding one released cache's chunks, never more, bounds the memory to
 * what a rebuild holds anyway: two caches' rows. */
static pthread_mutex_t spares_mu = PTHREAD_MUTEX_INITIALIZER;
static struct chunk *spares;

static void chunk_free(struct chunk *ch)
{
	free(ch->E);
	free(ch);
}

/* Keep chunks[0..n) as the spares, freeing the ones kept before. */
static void spares_keep(struct chunk **chunks, uint32_t n)
{
	struct chunk *old;
	for (uint32_t i = 0; i < n; i++)
		chunks[i]->next = i + 1 < n ? chunks[i + 1] : NULL;
	pthread_mutex_lock(&spares_mu);
	old = spares;
	spares = n ? chunks[0] : NULL;
	pthread_mutex_unlock(&spares_mu);
	while (old) {
		struct chunk *next = old->next;
		chunk_free(old);
		old = next;
	}
}

/* A spare chunk of rows d_out floats wide, or NULL. */
static struct chunk *spares_take(uint32_t d_out)
{
	struct chunk *ch, **at;
	pthread_mutex_lock(&spares_mu);
	for (at = &spares; (ch = *at) != NULL && ch->d_out != d_out; at = &ch->next)
		;
	if (ch)
		*at = ch->next;
	pthread_mutex_unlock(&spares_mu);
	return ch;
}

/* ---- the cache ----------------------------------------------------------- */

int sv_topk_cache_new(const float *W, uint32_t d_in, uint32_t d_out, uint64_t version,
                      struct sv_topk_cache **out)
{
	int rc = 0;
	struct sv_topk_cache *c = NULL;

	if (W == NULL || out == NULL || d_in == 0 || d_out == 0)
		return -EINVAL;
	if (!all_finite(W, (size_t)d_in * d_out))
		return SV_ERR_NONFINITE;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return -ENOMEM;
	c->W = malloc((size_t)d_in * d_out * sizeof(float));
	c->chunks = calloc(MAX_CHUNKS, sizeof(*c->chunks));
	if (c->W == NULL || c->chunks == NULL) {
		rc = -ENOMEM;
		goto fail;
	}
	rc = -pthread_mutex_init(&c->wmu, NULL);
	if (rc < 0)
		goto fail;
	memcpy(c->W, W, (size_t)d_in * d_out * sizeof(float));
	atomic_init(&c->refs, 1);
	atomic_init(&c->n_rows, 0);
	atomic_init(&c->n_live, 0);
	c->version = version;
	c->d_in = d_in;
	c->d_out = d_out;
	*out = c;
	return 0;
fail:
	free(c->chunks);
	free(c->W);
	free(c);
	return rc;
}

struct sv_topk_cache *sv_topk_cache_ref(struct sv_topk_cache *c)
{
	atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
	return c;
}

void sv_topk_cache_release(struct sv_topk_cache *c)
{
	if (c == NULL || atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
		return;
	spares_keep(c->chunks, c->n_chunks);
	while (c->ids) {
		struct id_block *b = c->ids;
		c->ids = b->next;
		free(b);
	}
	pthread_mutex_destroy(&c->wmu);
	free(c->table);
	free(c->chunks);
	free(c->W);
	free(c);
}

uint64_t sv_topk_cache_version(const struct sv_topk_cache *c)
{
	return c->version;
}

uint32_t sv_topk_cache_d_in(const struct sv_topk_cache *c)
{
	return c->d_in;
}

uint32_t sv_topk_cache_d_out(const struct sv_topk_cache *c)
{
	return c->d_out;
}

const float *sv_topk_cache_weights(const struct sv_topk_cache *c)
{
	return c->W;
}

size_t sv_topk_cache_count(struct sv_topk_cache *c)
{
	return atomic_load_explicit(&c->n_live, memory_order_relaxed);
}

size_t sv_topk_cache_rows(struct sv_topk_cache *c)
{
	return atomic_load_explicit(&c->n_rows, memory_order_acquire);
}

/* Chunk rows: 2 MiB-aligned and advised as transparent huge pages when big
 * enough, which spares the page faults of filling a fresh chunk 4 KiB at a
 * time (a rebuild writes N * d_out floats of fresh memory). */
static float *alloc_rows(size_t bytes)
{
	if (bytes < HUGE_PAGE)
		return aligned_alloc(64, (bytes + 63) & ~(size_t)63);
	size_t len = (bytes + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
	float *p = aligned_alloc(HUGE_PAGE, len);
	if (p != NULL)
		(void)madvise(p, len, MADV_HUGEPAGE); /* advice only */
	return p;
}

static int ensure_chunks(struct sv_topk_cache *c, size_t rows)
{
	while ((size_t)c->n_chunks * CHUNK_ROWS < rows) {
		struct chunk *ch = spares_take(c->d_out);
		if (ch == NULL) {
			ch = malloc(sizeof(*ch));
			float *E = NULL;
			if (ch != NULL)
				E = alloc_rows((size_t)CHUNK_ROWS * c->d_out * sizeof(float));
			if (E == NULL) {
				free(ch);
				return -ENOMEM;
			}
			ch->E = E;
			ch->d_out = c->d_out;
		}
		for (uint32_t i = 0; i < CHUNK_ROWS; i++)
			atomic_init(&ch->alive[i], 0);
		c->chunks[c->n_chunks++] = ch;
	}
	return 0;
}

/* Tombstone a live row (caller holds wmu and has removed it from the table). */
static void kill_row(struct sv_topk_cache *c, uint32_t row)
{
	atomic_store_explicit(&c->chunks[row >> CHUNK_SHIFT]->alive[row & CHUNK_MASK], 0,
	                      memory_order_release);
	atomic_fetch_sub_explicit(&c->n_live, 1, memory_order_relaxed);
}

int sv_topk_cache_add(struct sv_topk_cache *c, const float *X, size_t m, const uint8_t *const *ids,
                      const size_t *ids_len)
{
	int rc = 0;
	size_t id_bytes = 0;

	if (c == NULL)
		return -EINVAL;
	if (m == 0)
		return 0;
	if (X == NULL || ids == NULL || ids_len == NULL)
		return -EINVAL;
	for (size_t i = 0; i < m; i++) {
		if (ids[i] == NULL)
			return -EINVAL;
		if (ids_len[i] == 0 || ids_len[i] > SV_TOPK_ID_MAX)
			return SV_ERR_RANGE;
		id_bytes += ids_len[i];
	}

	pthread_mutex_lock(&c->wmu);
	uint32_t base = atomic_load_explicit(&c->n_rows, memory_order_relaxed);
	if (m > SV_TOPK_ROWS_MAX - base) {
		rc = SV_ERR_TOOBIG;
		goto out;
	}
	/* Reserve everything first so that nothing below can fail half-way. */
	rc = ensure_chunks(c, base + m);
	if (rc == 0)
		rc = ids_reserve(c, id_bytes);
	if (rc == 0)
		rc = table_reserve(c, m);
	if (rc < 0)
		goto out;

	/* One GEMM per chunk segment, straight into the unpublished rows. */
	for (size_t done = 0; done < m;) {
		uint32_t row = base + (uint32_t)done;
		size_t seg = CHUNK_ROWS - (row & CHUNK_MASK);
		if (seg > m - done)
			seg = m - done;
		/* unpublished rows: a failure here leaves the cache as it was */
		rc = project(c, X + done * c->d_in, seg,
		             c->chunks[row >> CHUNK_SHIFT]->E +
		                 (size_t)(row & CHUNK_MASK) * c->d_out);
		if (rc < 0)
			goto out;
		done += seg;
	}
	/* The id index: each id's slot is prefetched INDEX_AHEAD ids before it
	 * is probed (at 1M items the table is out of cache; one miss after
	 * another was a fifth of a rebuild), and the id's bytes INDEX_AHEAD
	 * before it is hashed (a rebuild's ids point into store pages read in
	 * vector order, not id order: each one another miss). */
	size_t added = 0, mask = c->table_cap - 1;
	uint32_t hs[INDEX_AHEAD];
	for (size_t i = 0; i < m && i < 2 * INDEX_AHEAD; i++)
		__builtin_prefetch(ids[i]);
	for (size_t i = 0; i < m && i < INDEX_AHEAD; i++) {
		hs[i] = hash_id(ids[i], ids_len[i]);
		__builtin_prefetch(&c->table[hs[i] & mask]);
	}
	for (size_t i = 0; i < m; i++) {
		uint32_t row = base + (uint32_t)i;
		uint32_t h = hs[i % INDEX_AHEAD];
		if (i + 2 * INDEX_AHEAD < m)
			__builtin_prefetch(ids[i + 2 * INDEX_AHEAD]);
		if (i + INDEX_AHEAD < m) {
			uint32_t hn = hash_id(ids[i + INDEX_AHEAD], ids_len[i + INDEX_AHEAD]);
			hs[i % INDEX_AHEAD] = hn;
			__builtin_prefetch(&c->table[hn & mask]);
		}
		size_t slot = table_find(c, ids[i], ids_len[i], h);
		if (c->table[slot] != 0) {
			uint32_t old = entry_row(c->table[slot]);
			atomic_store_explicit(
			    &c->chunks[old >> CHUNK_SHIFT]->alive[old & CHUNK_MASK], 0,
			    memory_order_release);
		} else {
			c->table_used++;
			added++;
		}
		struct row_meta *rm = meta_of(c, row);
		rm->id = ids_copy(c, ids[i], ids_len[i]);
		rm->len = ids_len[i];
		c->table[slot] = entry(row, h);
		atomic_store_explicit(&c->chunks[row >> CHUNK_SHIFT]->alive[row & CHUNK_MASK], 1,
		                      memory_order_relaxed);
	}
	atomic_fetch_add_explicit(&c->n_live, added, memory_order_relaxed);
	atomic_store_explicit(&c->n_rows, base + (uint32_t)m, memory_order_release);
out:
	pthread_mutex_unlock(&c->wmu);
	return rc;
}

int sv_topk_cache_reserve(struct sv_topk_cache *c, size_t items)
{
	if (c == NULL)
		return -EINVAL;
	if (items > SV_TOPK_ROWS_MAX)
		return SV_ERR_TOOBIG;
	pthread_mutex_lock(&c->wmu);
	int rc = items > c->table_used ? table_reserve(c, items - c->table_used) : 0;
	pthread_mutex_unlock(&c->wmu);
	return rc;
}

struct load {
	struct sv_topk_cache *c;
	float *X; /* SV_TOPK_LOAD_ROWS x d_in: the vectors walked, copied */
	const uint8_t *ids[SV_TOPK_LOAD_ROWS]; /* in the map, valid while the read lasts */
	size_t lens[SV_TOPK_LOAD_ROWS];
	size_t n;
};

/* Project the rows gathered. */
static int load_flush(struct load *f)
{
	int rc = f->n > 0 ? sv_topk_cache_add(f->c, f->X, f->n, f->ids, f->lens) : 0;
	f->n = 0;
	return rc;
}

/* The walk copies each vector to the next free row (load_row); an item
 * passed over leaves that row free for the next. */
static float *load_row(void *ctx)
{
	struct load *f = ctx;

	return f->X + f->n * f->c->d_in;
}

static int load_item(void *ctx, const void *id, size_t len, const struct sv_store_item *it)
{
	struct load *f = ctx;

	if ((it->flags & SV_STORE_ITEM_INLINE) || it->dim != f->c->d_in || len == 0 ||
	    len > SV_TOPK_ID_MAX)
		return 0;
	f->ids[f->n] = id;
	f->lens[f->n] = len;
	return ++f->n == SV_TOPK_LOAD_ROWS ? load_flush(f) : 0;
}

int sv_topk_cache_load(struct sv_topk_cache *c, struct sv_store_read *r)
{
	struct sv_store_stat st = {0};
	struct load f = {.c = c};
	int rc;

	if (c == NULL || r == NULL)
		return -EINVAL;
	rc = sv_store_stat(r, &st);
	if (rc == 0) /* the items stored by id: a pair log's inline vectors are not fed */
		rc = sv_topk_cache_reserve(c, (size_t)(st.items - (st.inline_items < st.items
		                                                       ? st.inline_items
		                                                       : st.items)));
	if (rc < 0)
		return rc;
	f.X = malloc((size_t)SV_TOPK_LOAD_ROWS * c->d_in * sizeof(float));
	if (f.X == NULL)
		return -ENOMEM;
	rc = sv_store_stored_walk_to(r, load_row, load_item, &f);
	if (rc == 0)
		rc = load_flush(&f);
	free(f.X);
	return rc;
}

int sv_topk_cache_upsert(struct sv_topk_cache *c, const uint8_t *id, size_t id_len, const float *x)
{
	return sv_topk_cache_add(c, x, 1, &id, &id_len);
}

int sv_topk_cache_delete(struct sv_topk_cache *c, const uint8_t *id, size_t id_len)
{
	int rc = SV_ERR_NOTFOUND;

	if (c == NULL || id == NULL)
		return -EINVAL;
	if (id_len == 0 || id_len > SV_TOPK_ID_MAX)
		return SV_ERR_RANGE;
	pthread_mutex_lock(&c->wmu);
	if (c->table_cap != 0) {
		size_t slot = table_find(c, id, id_len, hash_id(id, id_len));
		if (c->table[slot] != 0) {
			uint32_t row = entry_row(c->table[slot]);
			table_remove(c, slot);
			kill_row(c, row);
			rc = 0;
		}
	}
	pthread_mutex_unlock(&c->wmu);
	return rc;
}

int sv_topk_cache_project(struct sv_topk_cache *c, const float *X, size_t m, float *E)
{
	if (c == NULL || (m > 0 && (X == NULL || E == NULL)))
		return -EINVAL;
	if (m == 0)
		return 0;
	return project(c, X, m, E);
}

/* The live row of id with its embedding copied to emb, or a negative code. */
static int get_row(struct sv_topk_cache *c, const uint8_t *id, size_t id_len, float *emb,
                   uint32_t *row_out)
{
	if (c == NULL || id == NULL || emb == NULL)
		return -EINVAL;
	if (id_len == 0 || id_len > SV_TOPK_ID_MAX)
		return SV_ERR_RANGE;
	pthread_mutex_lock(&c->wmu);
	uint32_t row = lookup(c, id, id_len);
	if (row != UINT32_MAX)
		memcpy(emb, emb_of(c, row), c->d_out * sizeof(float));
	pthread_mutex_unlock(&c->wmu);
	if (row == UINT32_MAX)
		return SV_ERR_NOTFOUND;
	*row_out = row;
	return 0;
}

int sv_topk_cache_get(struct sv_topk_cache *c, const uint8_t *id, size_t id_len, float *emb)
{
	uint32_t row;
	return get_row(c, id, id_len, emb, &row);
}

/* ---- queries ------------------------------------------------------------- */

struct cand {
	float s;
	uint32_t row;
};

/* a ranks below b: lower score, or equal score and later row. */
static int worse(struct cand a, struct cand b)
{
	return a.s < b.s || (a.s == b.s && a.row > b.row);
}

/* Min-heap on `worse`: heap[0] is the weakest of the kept candidates. */
static void sift_down(struct cand *heap, size_t n, size_t i)
{
	struct cand x = heap[i];
	for (;;) {
		size_t l = 2 * i + 1;
		if (l >= n)
			break;
		size_t w = l;
		if (l + 1 < n && worse(heap[l + 1], heap[l]))
			w = l + 1;
		if (!worse(heap[w], x))
			break;
		heap[i] = heap[w];
		i = w;
	}
	heap[i] = x;
}

static void sift_up(struct cand *heap, size_t i)
{
	struct cand x = heap[i];
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (!worse(x, heap[p]))
			break;
		heap[i] = heap[p];
		i = p;
	}
	heap[i] = x;
}

static int cmp_best_first(const void *pa, const void *pb)
{
	struct cand a = *(const struct cand *)pa, b = *(const struct cand *)pb;
	if (worse(b, a))
		return -1;
	return worse(a, b) ? 1 : 0;
}

/* Fold one block of scores (rows first_row ..) into one query's heap. */
static void select_block(const float *S, size_t nrows, uint32_t first_row,
                         const _Atomic unsigned char *alive, uint32_t exclude, struct cand *heap,
                         size_t k, size_t *cnt)
{
	size_t n = *cnt;
	float thr = n < k ? -INFINITY : heap[0].s;
	for (size_t j = 0; j < nrows; j++) {
		float s = S[j];
		if (!(s > thr) && (n >= k || isnan(s)))
			continue;
		uint32_t row = first_row + (uint32_t)j;
		if (!atomic_load_explicit(&alive[j], memory_order_relaxed) || row == exclude)
			continue;
		struct cand x = {s, row};
		if (n < k) {
			heap[n] = x;
			sift_up(heap, n);
			n++;
		} else {
			/* s > heap[0].s here, and rows arrive in ascending order */
			heap[0] = x;
			sift_down(heap, n, 0);
		}
		if (n == k)
			thr = heap[0].s;
	}
	*cnt = n;
}

/* Up to this many queries are scored one GEMV each, more with one GEMM. */
#define GEMV_MAX_QUERIES 4

static int query_core(struct sv_topk_cache *c, const float *E, size_t Q, size_t k, uint32_t exclude,
                      struct sv_topk_hit *hits, size_t *counts)
{
	int rc = 0;
	float *S = NULL;
	struct cand *heaps = NULL;
	size_t *cnt = NULL;

	uint32_t n = atomic_load_explicit(&c->n_rows, memory_order_acquire);
	size_t kk = k < n ? k : (n ? n : 1);
	size_t block = SCORE_BLOCK_FLOATS / Q;
	if (block < 256)
		block = 256;
	if (block > CHUNK_ROWS)
		block = CHUNK_ROWS;
	if (block > n)
		block = n ? n : 1;
	S = malloc(Q * block * sizeof(float));
	heaps = malloc(Q * kk * sizeof(*heaps));
	cnt = calloc(Q, sizeof(*cnt));
	if (S == NULL || heaps == NULL || cnt == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	for (uint32_t base = 0; base < n; base += CHUNK_ROWS) {
		const struct chunk *ch = c->chunks[base >> CHUNK_SHIFT];
		size_t in_chunk = n - base < CHUNK_ROWS ? n - base : CHUNK_ROWS;
		for (size_t off = 0; off < in_chunk; off += block) {
			size_t nr = in_chunk - off < block ? in_chunk - off : block;
			const float *rows = ch->E + off * c->d_out;
			/* a few queries: GEMV reads the rows in place; a GEMM would
			 * repack the whole block for every call */
			if (Q <= GEMV_MAX_QUERIES)
				for (size_t q = 0; q < Q; q++)
					sv_blas_gemv(nr, c->d_out, 1.0f, rows, c->d_out,
					             E + q * c->d_out, 0.0f, S + q * nr);
			else
				sv_blas_gemm(0, 1, Q, nr, c->d_out, 1.0f, E, c->d_out, rows,
				             c->d_out, 0.0f, S, nr);
			for (size_t q = 0; q < Q; q++)
				select_block(S + q * nr, nr, base + (uint32_t)off, ch->alive + off,
				             exclude, heaps + q * kk, kk, &cnt[q]);
		}
	}
	for (size_t q = 0; q < Q; q++) {
		struct cand *h = heaps + q * kk;
		qsort(h, cnt[q], sizeof(*h), cmp_best_first);
		for (size_t j = 0; j < cnt[q]; j++) {
			const struct row_meta *rm = meta_of(c, h[j].row);
			struct sv_topk_hit *o = &hits[q * k + j];
			o->id = rm->id;
			o->id_len = rm->len;
			o->score = h[j].s;
			o->row = h[j].row;
		}
		counts[q] = cnt[q];
	}
out:
	free(cnt);
	free(heaps);
	free(S);
	return rc;
}

static int check_query_args(struct sv_topk_cache *c, const void *in, size_t Q, size_t k,
                            const void *hits, const void *counts)
{
	if (c == NULL)
		return -EINVAL;
	if (k == 0 || k > SV_TOPK_K_MAX)
		return SV_ERR_RANGE;
	if (Q > 0 && (in == NULL || hits == NULL || counts == NULL))
		return -EINVAL;
	return 0;
}

int sv_topk_cache_query(struct sv_topk_cache *c, const float *E, size_t Q, size_t k,
                        struct sv_topk_hit *hits, size_t *counts)
{
	int rc = check_query_args(c, E, Q, k, hits, counts);
	if (rc < 0 || Q == 0)
		return rc;
	if (!all_finite(E, Q * c->d_out))
		return SV_ERR_NONFINITE;
	return query_core(c, E, Q, k, UINT32_MAX, hits, counts);
}

int sv_topk_cache_query_vec(struct sv_topk_cache *c, const float *X, size_t Q, size_t k,
                            struct sv_topk_hit *hits, size_t *counts)
{
	int rc = check_query_args(c, X, Q, k, hits, counts);
	if (rc < 0 || Q == 0)
		return rc;
	float *E = malloc(Q * c->d_out * sizeof(float));
	if (E == NULL)
		return -ENOMEM;
	rc = project(c, X, Q, E);
	if (rc == 0)
		rc = query_core(c, E, Q, k, UINT32_MAX, hits, counts);
	free(E);
	return rc;
}

int sv_topk_cache_query_id(struct sv_topk_cache *c, const uint8_t *id, size_t id_len, size_t k,
                           int exclude_self, struct sv_topk_hit *hits, size_t *count)
{
	uint32_t row;
	int rc = check_query_args(c, id, 1, k, hits, count);
	if (rc < 0)
		return rc;
	float *e = malloc(c->d_out * sizeof(float));
	if (e == NULL)
		return -ENOMEM;
	rc = get_row(c, id, id_len, e, &row);
	if (rc == 0)
		rc = query_core(c, e, 1, k, exclude_self ? row : UINT32_MAX, hits, count);
	free(e);
	return rc;
}

/* ---- the holder ---------------------------------------------------------- */

enum log_op {
	LOG_OP_UPSERT,
	LOG_OP_DELETE,
};

/* One logged mutation; immutable once linked, freed at publish or abort. */
struct log_entry {
	struct log_entry *next;
	enum log_op op;
	size_t id_len;
	uint8_t id[SV_TOPK_ID_MAX];
	float x[]; /* d_in floats for an upsert */
};

struct sv_topk_holder {
	pthread_mutex_t mu; /* cur, next, the log; never held across a scan */
	struct sv_topk_cache *cur;
	struct sv_topk_cache *next; /* the rebuild in flight, or NULL */
	int failed;                 /* a mutation could not be logged: publish must fail */
	struct log_entry *head, *tail;
	uint32_t d_in, d_out;
};

int sv_topk_holder_new(const float *W, uint32_t d_in, uint32_t d_out, uint64_t version,
                       struct sv_topk_holder **out)
{
	int rc;
	struct sv_topk_holder *h;

	if (out == NULL)
		return -EINVAL;
	h = calloc(1, sizeof(*h));
	if (h == NULL)
		return -ENOMEM;
	rc = sv_topk_cache_new(W, d_in, d_out, version, &h->cur);
	if (rc < 0)
		goto fail;
	rc = -pthread_mutex_init(&h->mu, NULL);
	if (rc < 0)
		goto fail;
	h->d_in = d_in;
	h->d_out = d_out;
	*out = h;
	return 0;
fail:
	sv_topk_cache_release(h->cur);
	free(h);
	return rc;
}

static void log_clear(struct sv_topk_holder *h)
{
	while (h->head) {
		struct log_entry *e = h->head;
		h->head = e->next;
		free(e);
	}
	h->tail = NULL;
}

/* Caller holds mu. */
static void abort_locked(struct sv_topk_holder *h)
{
	sv_topk_cache_release(h->next);
	h->next = NULL;
	h->failed = 0;
	log_clear(h);
}

void sv_topk_holder_free(struct sv_topk_holder *h)
{
	if (h == NULL)
		return;
	abort_locked(h);
	sv_topk_cache_release(h->cur);
	pthread_mutex_destroy(&h->mu);
	free(h);
}

struct sv_topk_cache *sv_topk_holder_acquire(struct sv_topk_holder *h)
{
	pthread_mutex_lock(&h->mu);
	struct sv_topk_cache *c = sv_topk_cache_ref(h->cur);
	pthread_mutex_unlock(&h->mu);
	return c;
}

/* Caller holds mu and a rebuild is in flight. */
static void log_append(struct sv_topk_holder *h, enum log_op op, const uint8_t *id, size_t id_len,
                       const float *x)
{
	size_t nx = op == LOG_OP_UPSERT ? h->d_in : 0;
	struct log_entry *e = malloc(sizeof(*e) + nx * sizeof(float));
	if (e == NULL) {
		h->failed = -ENOMEM;
		return;
	}
	e->next = NULL;
	e->op = op;
	e->id_len = id_len;
	memcpy(e->id, id, id_len);
	if (nx)
		memcpy(e->x, x, nx * sizeof(float));
	if (h->tail)
		h->tail->next = e;
	else
		h->head = e;
	h->tail = e;
}

int sv_topk_holder_upsert(struct sv_topk_holder *h, const uint8_t *id, size_t id_len,
                          const float *x)
{
	if (h == NULL)
		return -EINVAL;
	pthread_mutex_lock(&h->mu);
	int rc = sv_topk_cache_upsert(h->cur, id, id_len, x);
	if (rc == 0 && h->next)
		log_append(h, LOG_OP_UPSERT, id, id_len, x);
	pthread_mutex_unlock(&h->mu);
	return rc;
}

int sv_topk_holder_delete(struct sv_topk_holder *h, const uint8_t *id, size_t id_len)
{
	if (h == NULL)
		return -EINVAL;
	pthread_mutex_lock(&h->mu);
	int rc = sv_topk_cache_delete(h->cur, id, id_len);
	if ((rc == 0 || rc == SV_ERR_NOTFOUND) && h->next)
		log_append(h, LOG_OP_DELETE, id, id_len, NULL);
	pthread_mutex_unlock(&h->mu);
	return rc;
}

int sv_topk_holder_begin_rebuild(struct sv_topk_holder *h, const float *W, uint64_t version,
                                 struct sv_topk_cache **next)
{
	struct sv_topk_cache *n;

	if (h == NULL || next == NULL)
		return -EINVAL;
	int rc = sv_topk_cache_new(W, h->d_in, h->d_out, version, &n);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&h->mu);
	if (h->next != NULL) {
		rc = SV_ERR_STATE;
	} else {
		h->next = n;
		h->failed = 0;
	}
	pthread_mutex_unlock(&h->mu);
	if (rc < 0) {
		sv_topk_cache_release(n);
		return rc;
	}
	*next = n;
	return 0;
}

/* Apply entries from `from` through `last` (inclusive) to c. */
static int replay(struct sv_topk_cache *c, struct log_entry *from, const struct log_entry *last)
{
	for (struct log_entry *e = from; e != NULL; e = e->next) {
		int rc;
		if (e->op == LOG_OP_UPSERT)
			rc = sv_topk_cache_upsert(c, e->id, e->id_len, e->x);
		else
			rc = sv_topk_cache_delete(c, e->id, e->id_len);
		if (rc < 0 && rc != SV_ERR_NOTFOUND)
			return rc;
		if (e == last)
			break;
	}
	return 0;
}

int sv_topk_holder_publish(struct sv_topk_holder *h)
{
	int rc = 0;
	struct log_entry *done = NULL; /* the last entry replayed */
	struct sv_topk_cache *old = NULL;

	if (h == NULL)
		return -EINVAL;
	/* Replay outside the lock while the log grows, a few rounds at most;
	 * then replay the rest and swap under the lock. */
	for (int round = 0;; round++) {
		pthread_mutex_lock(&h->mu);
		if (h->next == NULL) {
			rc = SV_ERR_STATE;
			goto unlock;
		}
		if (h->failed) {
			rc = h->failed;
			abort_locked(h);
			goto unlock;
		}
		struct log_entry *from = done ? done->next : h->head;
		struct log_entry *last = h->tail;
		struct sv_topk_cache *n = h->next;
		if (from == NULL || round >= 3) {
			rc = replay(n, from, last);
			if (rc < 0) {
				abort_locked(h);
				goto unlock;
			}
			old = h->cur;
			h->cur = n;
			h->next = NULL;
			log_clear(h);
			goto unlock;
		}
		pthread_mutex_unlock(&h->mu);
		rc = replay(n, from, last);
		if (rc < 0) {
			sv_topk_holder_abort(h);
			return rc;
		}
		done = last;
	}
unlock:
	pthread_mutex_unlock(&h->mu);
	sv_topk_cache_release(old);
	return rc;
}

void sv_topk_holder_abort(struct sv_topk_holder *h)
{
	if (h == NULL)
		return;
	pthread_mutex_lock(&h->mu);
	abort_locked(h);
	pthread_mutex_unlock(&h->mu);
}
