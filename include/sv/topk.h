/* sv/topk.h - exact 1:N top-k over the stored items, by cosine similarity.
 *
 * A projection cache (struct sv_topk_cache) holds, for ONE model version, the
 * normalized embedding of every stored item,
 *     e_i = z_i / max(||z_i||_2, 1e-12),   z_i = W^T x_i
 * (computed by sv_model_forward() of sv/model.h: a single upsert or query
 * row equals sv_model_forward(x, 1, ...) bit for bit; rows projected in a
 * batch may differ in the last bits, as GEMM rounding varies with shape)
 * as float32 rows of d_out floats, plus each row's item id (1..255 arbitrary
 * bytes) and an id -> row hash index.  A query is a normalized embedding q
 * (d_out floats); its score against item i is the float32 dot product q . e_i
 * (the cosine similarity).  Top-k is exact: every live row is scored.  Results
 * come sorted by score, descending; equal scores by row, ascending (rows are
 * numbered in insertion order), so results are deterministic.
 *
 * Building.  sv_topk_cache_add() projects a batch of m input rows with ONE
 * GEMM (X W, m x d_in times d_in x d_out) straight into the cache's rows and
 * normalizes them; a rebuild feeds all N items through it in batches.
 *
 * Mutations between rebuilds.  sv_topk_cache_add() / _upsert() append rows
 * (an upsert of an id already present tombstones its old row first);
 * sv_topk_cache_delete() tombstones the id's row.  Rows are never moved or
 * reused while the cache lives, so tombstoned rows cost scan time until the
 * next rebuild compacts them (sv_topk_cache_rows() vs _count() tells how
 * many).  A mutation is visible to every query that starts after the call
 * returns.  A query running concurrently with a mutation sees the item either
 * as before or as after the mutation, or, for an upsert of an id already
 * present, possibly not at all; it never returns a row twice, a torn row, or
 * a deleted row whose delete returned before the query started.
 *
 * Threading contract of one cache.
 *   - Any number of threads may query one cache at once, concurrently with
 *     mutations of it: queries take no lock (they read the published row count
 *     and tombstone flags atomically).
 *   - Mutations (_add, _upsert, _delete) and id lookups (_get, _query_id)
 *     serialize on a per-cache mutex held only for the mutation or lookup.
 *   - The reference count is atomic: _ref() and _release() from any thread.
 *
 * Versions: the holder (struct sv_topk_holder).  The holder owns the live
 * cache of the current model version and at most one cache being rebuilt for
 * a newer version:
 *   reader:   c = sv_topk_holder_acquire(h); sv_topk_cache_query*(c, ...);
 *             use hits (their ids point into c); sv_topk_cache_release(c);
 *             every result of c was computed from c's W only and is labeled
 *             with sv_topk_cache_version(c): versions never mix.
 *   writers:  sv_topk_holder_upsert() / _delete(): applied to the live cache
 *             at once (visible to the next acquire + query) and, while a
 *             rebuild is in flight, also logged for replay onto the new cache.
 *   builder:  n = begin_rebuild(h, W', v');  then TAKE THE SOURCE SNAPSHOT
 *             (e.g. open the store's read transaction) and feed every item to
 *             sv_topk_cache_add(n, ...);  then sv_topk_holder_publish(h)
 *             replays the logged mutations onto n (in order, projected with
 *             W') and swaps n in as the live cache.  Replay is idempotent for
 *             mutations already in the snapshot, so taking the snapshot after
 *             begin_rebuild loses nothing, provided writers commit each
 *             mutation to the source (the store) BEFORE calling the holder.
 *             Queries keep answering from the old cache throughout; readers
 *             still holding it finish undisturbed and the last release frees
 *             it.
 * The holder's mutex guards only its pointers and the mutation log (and the
 * last few replayed mutations at publish); no query's scan ever runs under it.
 *
 * Memory: about N * (4 d_out + 50) bytes per cache plus the id bytes (rows
 * are allocated 8192 at a time, as transparent huge pages when a chunk
 * reaches 2 MiB), and two caches during a rebuild.  The rows of the cache
 * released last stay allocated for the next cache of the same d_out (a
 * rebuild then faults in no fresh memory), so from the first rebuild on a
 * process holds two caches' rows.
 *
 * Leaves out: approximate search, other metrics, persistence (the store is the
 * source of truth; the cache is rebuilt from it), BLAS thread policy (sv/blas.h).
 */
#ifndef SV_TOPK_H
#define SV_TOPK_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Limits: id length, k, and rows per cache (live plus tombstoned). */
#define SV_TOPK_ID_MAX 255
#define SV_TOPK_K_MAX 100000
#define SV_TOPK_ROWS_MAX (1u << 30)

struct sv_topk_cache;
struct sv_topk_holder;

/* One result.  id points into the cache queried and stays valid while the
 * caller holds its reference to that cache; it is not NUL-terminated. */
struct sv_topk_hit {
	const uint8_t *id;
	size_t id_len;
	float score;  /* q . e_i, float32 (cosine similarity for normalized q) */
	uint32_t row; /* the item's row in this cache (the tie-break order) */
};

/* ---- the projection cache ---------------------------------------------- */

/* A new, empty cache for model version `version`, with its own copy of W
 * (d_in x d_out, row-major), reference count 1.
 * Returns 0, -EINVAL (NULL W or out, zero dims), SV_ERR_NONFINITE (W holds
 * NaN or Inf), -ENOMEM. */
int sv_topk_cache_new(const float *W, uint32_t d_in, uint32_t d_out, uint64_t version,
                      struct sv_topk_cache **out);

/* Take one more reference (returns c).  c must already be referenced. */
struct sv_topk_cache *sv_topk_cache_ref(struct sv_topk_cache *c);

/* Drop one reference; the last one frees the cache, its rows and ids.
 * Accepts NULL. */
void sv_topk_cache_release(struct sv_topk_cache *c);

/* The model version, dims and W copy (d_in x d_out; valid while referenced)
 * given at creation. */
uint64_t sv_topk_cache_version(const struct sv_topk_cache *c);
uint32_t sv_topk_cache_d_in(const struct sv_topk_cache *c);
uint32_t sv_topk_cache_d_out(const struct sv_topk_cache *c);
const float *sv_topk_cache_weights(const struct sv_topk_cache *c);

/* Live items, and rows in use (live plus tombstoned), at the moment of the
 * call. */
size_t sv_topk_cache_count(struct sv_topk_cache *c);
size_t sv_topk_cache_rows(struct sv_topk_cache *c);

/* Upsert m items: X is m x d_in (row-major, caller-owned, only read); ids[i]
 * points at ids_len[i] bytes (1..SV_TOPK_ID_MAX), copied.  All m rows are
 * projected with one GEMM, appended, and published at once on return; an id
 * already present (or repeated in the batch: the last one wins) has its old
 * row tombstoned.  m = 0 does nothing.  On failure nothing changed.
 * Returns 0, -EINVAL (NULL pointers with m > 0), SV_ERR_RANGE (an id length
 * out of 1..255), SV_ERR_NONFINITE (X holds NaN or Inf, or X W overflows
 * float), SV_ERR_TOOBIG (rows would exceed SV_TOPK_ROWS_MAX), -ENOMEM. */
int sv_topk_cache_add(struct sv_topk_cache *c, const float *X, size_t m, const uint8_t *const *ids,
                      const size_t *ids_len);

/* A rebuild's feed: every item of the store read r (sv/store.h) whose
 * vector has c's d_in and whose id fits SV_TOPK_ID_MAX, upserted into c in
 * the order the store wrote them, SV_TOPK_LOAD_ROWS rows per sv_topk_cache_add (one
 * GEMM each), after sizing the id index from the store's count of items
 * stored by id.  Inline pair vectors (SV_STORE_ITEM_INLINE) are passed over
 * unread (sv_store_stored_walk_to).  The walk copies each vector straight
 * into one reused buffer of SV_TOPK_LOAD_ROWS rows.
 * Returns 0, -EINVAL, what sv_topk_cache_add returns, or a store code. */
#define SV_TOPK_LOAD_ROWS 1024
struct sv_store_read;
int sv_topk_cache_load(struct sv_topk_cache *c, struct sv_store_read *r);

/* Size the id index for `items` live items at once, sparing a rebuild its
 * growth steps (optional; a hint).  Returns 0, -EINVAL, SV_ERR_TOOBIG (more
 * than SV_TOPK_ROWS_MAX), -ENOMEM. */
int sv_topk_cache_reserve(struct sv_topk_cache *c, size_t items);

/* sv_topk_cache_add() for one item: x is d_in floats. */
int sv_topk_cache_upsert(struct sv_topk_cache *c, const uint8_t *id, size_t id_len, const float *x);

/* Tombstone the item's row.  Returns 0, -EINVAL (NULL), SV_ERR_RANGE (bad
 * length), SV_ERR_NOTFOUND (no such live item). */
int sv_topk_cache_delete(struct sv_topk_cache *c, const uint8_t *id, size_t id_len);

/* Copy the item's embedding (d_out floats) into emb.  Returns 0, -EINVAL,
 * SV_ERR_RANGE, SV_ERR_NOTFOUND. */
int sv_topk_cache_get(struct sv_topk_cache *c, const uint8_t *id, size_t id_len, float *emb);

/* Project m input rows X (m x d_in) with this cache's W into normalized
 * embeddings E (m x d_out, caller-owned), as sv_topk_cache_add() does: use it
 * to build a mixed batch (embeddings of stored ids from _get(), of vectors
 * from here) for one sv_topk_cache_query().  Returns 0, -EINVAL (NULL with
 * m > 0), SV_ERR_NONFINITE (X holds NaN or Inf, or X W overflows). */
int sv_topk_cache_project(struct sv_topk_cache *c, const float *X, size_t m, float *E);

/* Top-k for Q query embeddings E (Q x d_out, row-major; normalize them for
 * cosine scores).  hits is Q x k (caller-owned): query j's results go to
 * hits[j*k .. j*k + counts[j] - 1], best first, with counts[j] = min(k, live
 * items); the rest of its k slots are left untouched.  Up to 4 queries are
 * scored with one GEMV each, more with one blocked GEMM for all Q; the two
 * kernels round differently, so a batched score can differ from the single
 * query's in the last bits (the ids agree unless two scores tie that closely).
 * Q = 0 does nothing.  Returns 0, -EINVAL (NULL pointers with Q > 0),
 * SV_ERR_RANGE (k = 0 or k > SV_TOPK_K_MAX), SV_ERR_NONFINITE (E holds NaN or
 * Inf), -ENOMEM (scratch: about 256 KiB + Q * 8 * min(k, rows) bytes). */
int sv_topk_cache_query(struct sv_topk_cache *c, const float *E, size_t Q, size_t k,
                        struct sv_topk_hit *hits, size_t *counts);

/* As sv_topk_cache_query() for Q raw input rows X (Q x d_in), first projected
 * and normalized with this cache's W (so query and items share one version). */
int sv_topk_cache_query_vec(struct sv_topk_cache *c, const float *X, size_t Q, size_t k,
                            struct sv_topk_hit *hits, size_t *counts);

/* Top-k for a stored item's own cached embedding.  With exclude_self != 0
 * the item itself is left out of its results.  hits holds k entries.
 * Returns as sv_topk_cache_query(), and SV_ERR_NOTFOUND for an unknown id. */
int sv_topk_cache_query_id(struct sv_topk_cache *c, const uint8_t *id, size_t id_len, size_t k,
                           int exclude_self, struct sv_topk_hit *hits, size_t *count);

/* ---- the holder: versions, rebuilds, atomic publication ------------------ */

/* A holder whose live cache is a new empty cache (W, version).
 * Returns as sv_topk_cache_new(), or a negative errno from pthread. */
int sv_topk_holder_new(const float *W, uint32_t d_in, uint32_t d_out, uint64_t version,
                       struct sv_topk_holder **out);

/* Free the holder: abort any rebuild, drop its reference to the live cache
 * (readers' references stay valid).  No other call may be in progress on h.
 * Accepts NULL. */
void sv_topk_holder_free(struct sv_topk_holder *h);

/* A new reference to the live cache (never NULL); release it with
 * sv_topk_cache_release(). */
struct sv_topk_cache *sv_topk_holder_acquire(struct sv_topk_holder *h);

/* Upsert / delete on the live cache (and into the log during a rebuild).
 * Visible to every query on a cache acquired after the call returns.
 * Returns as sv_topk_cache_upsert() / _delete(); a delete of an id missing
 * from the live cache returns SV_ERR_NOTFOUND (and is still logged). */
int sv_topk_holder_upsert(struct sv_topk_holder *h, const uint8_t *id, size_t id_len,
                          const float *x);
int sv_topk_holder_delete(struct sv_topk_holder *h, const uint8_t *id, size_t id_len);

/* Start a rebuild for model version `version` with W (d_in x d_out, same dims
 * as the holder, copied).  *next receives the empty new cache, owned by the
 * holder: the builder fills it with sv_topk_cache_add() (only the builder
 * touches it) and then calls _publish() or _abort().  Returns 0, -EINVAL,
 * SV_ERR_NONFINITE, SV_ERR_STATE (a rebuild is already in flight), -ENOMEM. */
int sv_topk_holder_begin_rebuild(struct sv_topk_holder *h, const float *W, uint64_t version,
                                 struct sv_topk_cache **next);

/* Replay the mutations logged since begin_rebuild onto the new cache, then
 * make it the live cache atomically: later acquires get it; earlier ones keep
 * the old cache until they release it.  Call from the builder once it has
 * added everything; _publish() and _abort() are the builder's calls and must
 * not run concurrently with each other or with _begin_rebuild().  On failure
 * the rebuild is aborted and the old cache stays live.  Returns 0,
 * SV_ERR_STATE (no rebuild in flight), -ENOMEM (while logging or replaying a
 * mutation). */
int sv_topk_holder_publish(struct sv_topk_holder *h);

/* Drop the rebuild in flight (if any) and its log. */
void sv_topk_holder_abort(struct sv_topk_holder *h);

#ifdef __cplusplus
}
#endif
#endif
