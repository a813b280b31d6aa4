/* sv/store.h - everything simverify knows, in one LMDB environment.
 *
 * DESIGN
 *
 * The store is one LMDB environment (a directory holding data.mdb and
 * lock.mdb) with nine named databases:
 *
 *   items     id (1..255 arbitrary bytes) -> its vector's id (and flags, dim;
 *             an inline item's also how many log-row sides name it)
 *   vecs      vector id -> the feature vector (d_in float32) of an item
 *             stored by id, in records that each fit a leaf page (VECTORS)
 *   ivecs     the same for the inline vectors of pairs (content ids, below)
 *   pairs     64-bit log sequence -> one labeled pair (the pair log)
 *   clients   (client id, client sequence) -> log sequence: the recent
 *             sequences of each client (its de-duplication window)
 *   producers client id -> its high-water mark and last append time
 *   refs      empty from schema 4 on (schema 2 and 3 kept the counts there)
 *   models    version -> a checkpoint: W, optimizer state, step, applied_seq...
 *   meta      schema version, dims, settings fingerprint, active version...
 *
 * One thread writes; any number of threads read.  The writer gathers a group
 * of operations (item puts and deletes, pair appends, checkpoints, a move of
 * the active version) in an sv_store_txn and commits them as one LMDB write
 * transaction: a group is stored whole or not at all.  This is group commit;
 * how long the writer lets a group grow (a batch, a time window) is the
 * caller's choice.  Every operation is applied to the LMDB transaction at once
 * (so its result, e.g. the assigned sequence, is known at once) and also kept
 * in memory, so that when LMDB reports MDB_MAP_FULL the store can abort,
 * grow the map, and apply the whole group again on a fresh transaction.  The
 * replayed group starts from the same committed state and so gives the same
 * results.  Growth doubles the map up to sv_store_opts.max_map_size; past it
 * the group fails with SV_ERR_STORE_FULL.
 *
 * Readers open an sv_store_read (an LMDB read transaction, opened with
 * MDB_NOTLS so any thread may use one, one thread at a time).  A reader sees
 * the store as of its begin, unaffected by later commits.  Every pointer a
 * read function returns is borrowed from the map (or from a copy the
 * reader owns) and is VALID ONLY UNTIL sv_store_read_end on that reader.
 * Values sit in the map at whatever alignment LMDB gives them, which for
 * float data is often NOT 4-byte aligned: checkpoint weights are returned as
 * `const void *` and must be read with memcpy (or sv_store_model_weights).
 * Item vectors are never borrowed: a vector spans several records, so it is
 * copied into the caller's floats (sv_store_item_get, sv_store_item_read)
 * or, in a walk, into the reader's buffer for the length of one callback.
 *
 * Growing the map remaps it, which would pull the memory from under open
 * readers; the store keeps a reader/writer lock, held shared by every open
 * sv_store_read and by sv_store_backup, and taken exclusively by a growth.
 * So: a growth waits for open readers to end, and a thread must never hold an
 * sv_store_read while it calls write functions (it would wait for itself).
 *
 * Durability (sv_store_opts.sync) is LMDB's:
 *   SV_STORE_SYNC_FULL  (default) every commit fsyncs data and meta pages
 *       before returning.  A committed group survives a process kill, an OS
 *       crash and a power cut (as far as the disk honours fsync).
 *   SV_STORE_SYNC_META  (MDB_NOMETASYNC) data pages are fsynced at commit, the
 *       meta page that makes the commit visible is flushed only at the next
 *       commit or sv_store_sync.  A process kill loses nothing.  An OS crash or
 *       power cut may lose the last committed group(s): the store reopens at
 *       an earlier commit, intact (atomic, consistent, isolated, not durable).
 *   SV_STORE_SYNC_NONE  (MDB_NOSYNC) nothing is fsynced at commit; the OS
 *       writes pages back when it likes (or at sv_store_sync).  A process kill
 *       loses nothing (the pages are in the OS page cache).  An OS crash or
 *       power cut may lose any number of recent groups, and, unless the file
 *       system keeps writes in order, may leave the environment CORRUPT
 *       (unopenable or silently wrong).  Use it only for data you can rebuild.
 * In every mode a killed process leaves the store at its last commit, and
 * the caller (the daemon) re-derives the rest: the active model is loaded and
 * the pair log after its applied_seq is replayed through the same batching,
 * which reproduces W bit for bit (sv/train.h is deterministic).
 *
 * RECORD LAYOUTS (all integers little-endian except keys said big-endian;
 * every value starts with a 16-bit format version so the format can evolve)
 *
 *   meta     key "meta"   -> u16 fmt=1, u16 0, u32 schema, u32 d_in, u32 d_out,
 *                            u64 created (ns since the epoch), u64 settings_fp
 *            key "next_version" -> u64, the version the next checkpoint gets
 *            key "active" -> u64, the active model version (absent: none)
 *            key "mark." NAME -> u64, a caller's named position committed
 *                            with a group (the clustered trainer's stream
 *                            sequence: sv_store_mark_put)
 *   items    key id bytes -> u16 fmt=2, u16 flags, u32 dim, u64 vector id;
 *            a content id (sv_store_id_reserved): u16 fmt=3, u16 flags,
 *            u32 dim, u64 vector id, u64 log-row sides naming it
 *            flags: SV_STORE_ITEM_INLINE (bit 0) for a vector that arrived
 *            inline in a pair, stored under its content id (below)
 *   vecs, ivecs  key u64 BE (vector id << 16 | record) -> the next bytes
 *            of the vector's float32[dim]; records 0, 1, ... of one vector
 *            hold them in order and add up to dim * 4 bytes (no header: the
 *            items value says what the vector is).  An item's vector is in
 *            ivecs when its id is a content id (sv_store_id_reserved),
 *            else in vecs.
 *   pairs    key u64 BE seq -> u16 fmt=1, u8 label, u8 has_client,
 *                            u8 len_a, u8 len_b, u8 client_len, u8 0,
 *                            u64 client_seq, u64 recv_ns,
 *                            id_a[len_a], id_b[len_b], client[client_len]
 *   clients  key u8 client_len, client[client_len], u64 BE client_seq
 *                         -> u64 seq
 *   models   key u64 BE version -> u16 fmt=1, u16 0, u32 d_in, u32 d_out, u32 0,
 *                            u64 step, u64 applied_seq, u64 time_ns,
 *                            f64 loss, f64 auc, f64 eer,
 *                            u32 optim_len, u32 settings_len, u32 calib_len, u32 0,
 *                            float32[d_in*d_out] W, optim, settings, calib
 *
 *   producers key client id -> u16 fmt=1, u16 0, u32 0, u64 hwm, u64 last_ns
 *   refs     (schema 2 and 3) key content id -> u64 count
 *
 * VECTORS.  Each item put gives its vector the next vector id of its
 * database (one past the largest stored there, so the ids a group gives out
 * follow from the state it started from, and a group replayed after a
 * growth gives the same ones) and appends its records at the end
 * (MDB_APPEND): leaf pages fill whole, in the order items arrive.  Inline
 * vectors have a database of their own so that both are appended to at
 * their end, and the log's, dying oldest first, leave whole pages free
 * rather than holes between the items'.  A vector is split into equal records,
 * as many as pack the most vector bytes into a page (chosen at open from
 * the page size and d_in; a vector of up to about 2 KB is one record): 784
 * floats on 4 KB pages are 4 records of 784 bytes, 5 to a page, 3,277
 * bytes of vector pages a vector, about 3,330 of data.mdb with the items
 * B-tree, against 3,136 raw (an overflow page each, 4,129 in all, before
 * schema 3).  Replacing or deleting an item deletes
 * its vector's records.  sv_store_stored_walk reads vecs front to back,
 * one cursor step a record, asking for the pages a few ahead of the copy;
 * sv_store_item_walk (in id order) steps the same way over items written
 * in id order, and otherwise pays one B-tree descent an item.
 *
 * Sequences start at 1 and increase by one per appended pair; applied_seq 0
 * means "trained on nothing".  Versions start at 1 and only grow; after each
 * group that wrote a checkpoint, the oldest versions beyond keep_versions are
 * deleted, never the active one.
 *
 * BOUNDED GROWTH.  Nothing is deleted behind the caller's back; the writer
 * asks, in bounded steps inside its groups:
 *   - sv_store_log_trim deletes the oldest log rows past a count and an age,
 *     never one after the active model's applied_seq (recovery replays
 *     those).  An inline vector goes with the last row that names it (the
 *     reference counts in the items values, kept by every append and
 *     delete).  A row counts for a content id stored by the end of its
 *     group (before it or after it in the group, as the daemon puts a
 *     row's inline vectors after the row); put a row's content ids in its
 *     own group, or a later trim may free a vector a newer row names.
 *   - Each client's de-duplication state is a high-water mark (hwm, its
 *     highest client seq logged) and the entries of the last dedup_depth
 *     seqs below it.  An append with seq > hwm is new; one within
 *     (hwm - depth, hwm] is new unless that seq is logged (DUPLICATE); one at
 *     or below hwm - depth is STALE: not logged, as nothing can tell whether
 *     it was.  sv_store_dedup_expire forgets clients idle past a time:
 *     afterwards their seqs start over, as new.
 *   - sv_store_purge deletes the log rows naming one item (erasure).
 * A full map refuses groups that add data (SV_ERR_STORE_FULL) but keeps a
 * reserve (max_map_size / 64, at least SV_STORE_RESERVE_MIN) into which
 * groups that only delete may grow, so a full store can always be trimmed.
 *
 * Schema 1 stores (before producers and refs) are brought to schema 2,
 * schema 2 stores (vectors inside the items values: u16 fmt=1, u16 flags,
 * u32 dim, float32[dim]) to schema 3, and schema 3 stores (inline items'
 * counts in refs) to schema 4, at open, in bounded commits.
 *
 * NOT HERE: training (sv/train.h), serializing the optimizer, settings or
 * calibration (the caller hands the store opaque blobs; sv/journal.h encodes
 * the daemon's), when to trim (the daemon's store.retain_* policy).
 *
 * ERRORS: every function returns 0 or a negative code (sv/error.h).  LMDB's
 * own codes (MDB_*, -30799..-30600) pass through unchanged and sv_strerror
 * names them; -errno for the OS; SV_ERR_* for the store's own conditions.
 * After any failure inside a group the group is dead: its LMDB transaction
 * has been aborted whole, later operations return SV_ERR_STATE, and
 * sv_store_txn_commit returns the first error.  sv_store_errmsg gives the
 * last failure in words, with both values named (e.g. "store has d_in=784
 * d_out=64, config says d_in=512 d_out=64").
 */
#ifndef SV_STORE_H
#define SV_STORE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The schema this build reads and writes (meta.schema). */
#define SV_STORE_SCHEMA 4
/* Longest item or client id in bytes. */
#define SV_STORE_ID_MAX 255
/* The least room past max_map_size kept for groups that only delete. */
#define SV_STORE_RESERVE_MIN ((size_t)1 << 20)
/* Size of the error-message buffer sv_store_open fills (and sv_store_errmsg's). */
#define SV_STORE_ERRMSG_MAX 256

typedef struct sv_store sv_store;               /* an open environment */
typedef struct sv_store_txn sv_store_txn;       /* a write group (the one writer) */
typedef struct sv_store_read sv_store_read;     /* a read transaction */
typedef struct sv_store_cursor sv_store_cursor; /* a walk over the pair log */

enum sv_store_sync {
	SV_STORE_SYNC_FULL = 0, /* fsync every commit (see DESIGN for the risks) */
	SV_STORE_SYNC_META = 1, /* MDB_NOMETASYNC */
	SV_STORE_SYNC_NONE = 2, /* MDB_NOSYNC */
};

struct sv_store_opts {
	const char *path;     /* directory; made (0700) if missing */
	uint32_t d_in, d_out; /* must match an existing store; both 0: take the store's */
	uint64_t settings_fp; /* fingerprint of the settings that must not change;
	                       * 0 with an existing store: not checked */
	enum sv_store_sync sync;
	size_t map_size;        /* initial map size in bytes (store.map_size) */
	size_t max_map_size;    /* growth stops here (store.max_map_size) */
	uint32_t keep_versions; /* checkpoints kept, >= 1 (store.keep_versions) */
	uint32_t max_readers;   /* concurrent read transactions, >= 1 */
	uint32_t dedup_depth;   /* seqs below a client's hwm remembered (0: 1) */
};

/* Defaults: sync full, map 64 MiB, max 64 GiB, keep 5 versions, 126 readers,
 * dedup depth 65536; path NULL, dims 0, fingerprint 0. */
void sv_store_opts_default(struct sv_store_opts *o);

/* Open or create the store at o->path.  Clears stale reader slots left by
 * dead processes (mdb_reader_check).  A new store records o's dims, schema
 * and fingerprint; an existing one must agree.  err (may be NULL) receives
 * errlen bytes at most of a message naming both values on failure.
 * Returns 0, -EINVAL (NULL arguments, no path, keep_versions 0, map_size 0 or
 * above max_map_size, one dim 0 but not the other), SV_ERR_RANGE (new store
 * without dims), SV_ERR_STORE_DIMS, SV_ERR_STORE_SCHEMA,
 * SV_ERR_STORE_SETTINGS, SV_ERR_CORRUPT (meta unreadable), SV_ERR_STORE_FULL
 * (map_size cannot hold the existing data and max_map_size forbids more),
 * -ENOMEM, -errno from mkdir, or an LMDB code. */
int sv_store_open(sv_store **out, const struct sv_store_opts *o, char *err, size_t errlen);

/* Close.  Every reader, cursor and group must have ended.  Accepts NULL. */
void sv_store_close(sv_store *st);

/* The last failure on st in words (never NULL; "" when none).  The text is
 * owned by st and valid until the next call on st from the writer. */
const char *sv_store_errmsg(const sv_store *st);

/* The store's dims and the map size now in use. */
void sv_store_dims(const sv_store *st, uint32_t *d_in, uint32_t *d_out);
size_t sv_store_map_size(const sv_store *st);

/* Flush everything committed to disk (mdb_env_sync, forced): what SYNC_META
 * and SYNC_NONE leave to later.  Returns 0 or -errno / an LMDB code. */
/* Change how many checkpoints are kept (store.keep_versions reloaded); the
 * next group that writes a checkpoint prunes to it.  The writer thread only.
 * n 0 is taken as 1. */
void sv_store_set_keep_versions(sv_store *st, uint32_t n);

/* Pins for what recovery will need (the daemon's replay, sv/replay.h):
 * retention never deletes a log row at or after trim_from, and pruning
 * never deletes checkpoint version or version2 (the gate's best W and its
 * baseline; 0: no pin, each).  The writer thread
 * only; they hold until changed. */
void sv_store_set_pins(sv_store *st, uint64_t trim_from, uint64_t version, uint64_t version2);

int sv_store_sync(sv_store *st);

/* Change the growth cap (store.max_map_size reloaded; at least 1 MiB, else
 * ignored) and the de-duplication depth (0 is taken as 1).  The writer
 * thread only; the next group sees them.  A lower cap never shrinks data
 * already there. */
void sv_store_set_max_map_size(sv_store *st, size_t n);
void sv_store_set_dedup_depth(sv_store *st, uint32_t n);

/* Hot backup: a compacting copy (mdb_env_copy2, MDB_CP_COMPACT) of the store
 * as of the moment the call begins, into directory path, atomically: the
 * copy is written to path.partial, fsynced, and renamed to path (which must
 * not exist, or be an empty directory), so path holds a whole copy or
 * nothing.  Writes in other threads continue meanwhile; a map growth waits
 * for the copy to finish.  The copy opens as a normal store.  Returns 0,
 * -EINVAL, -EEXIST (path holds a data.mdb), -errno or an LMDB code. */
int sv_store_backup(sv_store *st, const char *path);

/* Restore: put the backup in directory from (a data.mdb, as sv_store_backup
 * writes) in place of the store at o->path, which must not exist: the file
 * is copied to o->path.restoring, fsynced, opened once with o (so a backup
 * of other dims or settings is refused by name, a truncated one too, and one of
 * an older schema is migrated), then renamed to o->path.  from is never
 * written.  err (may be NULL) gets what failed.  Returns 0, -EEXIST (o->path
 * holds a store), -EINVAL, -errno or what sv_store_open returns.  Not while
 * a daemon runs on o->path (the daemon's --restore takes its lock). */
int sv_store_restore(const struct sv_store_opts *o, const char *from, char *err, size_t errlen);

/* ---- writing: one group at a time, from one thread ---- */

/* Begin a group.  Returns 0, SV_ERR_STATE when a group is already open,
 * -ENOMEM, or an LMDB code. */
int sv_store_txn_begin(sv_store *st, sv_store_txn **out);

/* Commit the group as one LMDB transaction and free it (even on failure).
 * Prunes old checkpoints first if the group wrote one.  On failure nothing of
 * the group is stored.  Returns 0, the group's first error, SV_ERR_STORE_FULL,
 * -errno (I/O) or an LMDB code. */
int sv_store_txn_commit(sv_store_txn *t);

/* Drop the group; nothing of it is stored.  Accepts NULL. */
void sv_store_txn_abort(sv_store_txn *t);

/* Insert or replace item id (len 1..255 bytes) with x (d_in floats, borrowed
 * for the call).  flags are the caller's, stored as is.  Returns 0, -EINVAL
 * (NULL, bad len), SV_ERR_STATE (dead group), SV_ERR_STORE_FULL or an LMDB
 * code (the last two kill the group). */
int sv_store_item_put(sv_store_txn *t, const void *id, size_t len, const float *x, uint16_t flags);

/* Insert item id only if it is not stored yet (in the store or earlier in
 * this group): for content-addressed ids, where an existing one already
 * holds the same vector.  One B-tree descent either way.  Returns 0 (put),
 * SV_ERR_DUPLICATE (already there; nothing written, the group stays alive),
 * or what sv_store_item_put returns. */
int sv_store_item_put_new(sv_store_txn *t, const void *id, size_t len, const float *x,
                          uint16_t flags);

/* Items made from inline pair vectors.  A pair side that carries a vector
 * and no id is stored as an item under a CONTENT ID, "~v" and 32 lowercase
 * hex digits of a 128-bit hash of the vector's bytes (not cryptographic: a
 * collision would merge two anonymous vectors), with the flag
 * SV_STORE_ITEM_INLINE.  So the pair log holds ids only and replays.  Ids
 * starting with "~v" are reserved for these: sv_store_id_reserved says
 * whether an id is one, and the daemon refuses client writes to them. */
#define SV_STORE_ITEM_INLINE 0x0001
#define SV_STORE_INLINE_ID_LEN 34

/* Write the content id of x (d floats) to out (NUL-terminated). */
void sv_store_inline_id(const float *x, uint32_t d, char out[SV_STORE_INLINE_ID_LEN + 1]);
int sv_store_id_reserved(const void *id, size_t len);

/* The fingerprint of the settings a store's history depends on (the loss,
 * its label mode, the optimizer kind: sv_store_opts.settings_fp). */
uint64_t sv_store_settings_fp(int loss_kind, int loss_mode, int optim_kind);

/* Delete item id.  Returns 0, SV_ERR_NOTFOUND (group stays alive), -EINVAL,
 * SV_ERR_STATE or an LMDB code. */
int sv_store_item_del(sv_store_txn *t, const void *id, size_t len);

/* One pair, as appended and as read back.  On append seq is ignored, the
 * pointers are borrowed for the call, and recv_ns 0 means "now"
 * (CLOCK_REALTIME).  On read every pointer is valid until the reader ends. */
struct sv_store_pair {
	uint64_t seq;
	const void *id_a, *id_b; /* 1..255 bytes each */
	size_t len_a, len_b;
	uint8_t label;      /* 0 different, 1 same */
	const void *client; /* NULL / 0: no idempotency key */
	size_t client_len;  /* 0..255 */
	uint64_t client_seq;
	uint64_t recv_ns; /* receive time, ns since the epoch */
};

/* Append a pair to the log; *seq gets its sequence.  When it carries a
 * client id already logged with the same client_seq (in the store or earlier
 * in this group), nothing is written, *seq gets the original sequence and
 * SV_ERR_DUPLICATE is returned.  When its client_seq lies at or below the
 * client's hwm - dedup_depth (DESIGN), nothing is written, *seq gets the hwm
 * and SV_ERR_STALE is returned.  (The group stays alive in both; the
 * exceptions to "out-parameters only on success".)  Returns 0,
 * SV_ERR_DUPLICATE, SV_ERR_STALE, -EINVAL (NULL, bad id lengths, label not
 * 0/1), SV_ERR_STATE, SV_ERR_STORE_FULL or an LMDB code. */
int sv_store_pair_append(sv_store_txn *t, const struct sv_store_pair *p, uint64_t *seq);

/* A checkpoint, as written and as read back.  On write the pointers are
 * borrowed for the call; on read they point into the map (valid until the
 * reader ends) and W is NOT necessarily 4-byte aligned: memcpy it, or use
 * sv_store_model_weights. */
struct sv_store_model {
	uint64_t version;      /* assigned by the store on write */
	uint64_t step;         /* optimizer steps taken */
	uint64_t applied_seq;  /* last log sequence trained on (0: none) */
	uint64_t time_ns;      /* 0 on write: now */
	double loss, auc, eer; /* for listing; NaN when unknown */
	const void *W;         /* d_in*d_out float32, row-major */
	const void *optim;     /* sv_optim_save bytes (opaque here) */
	size_t optim_len;
	const void *settings; /* the caller's settings blob (opaque) */
	size_t settings_len;
	const void *calib; /* calibration state (opaque); may be empty */
	size_t calib_len;
};

/* Store a checkpoint under the next version, written to *version.  It does
 * not become active by itself: see sv_store_set_active.  Returns 0, -EINVAL
 * (NULL m or W, a NULL blob with nonzero length, a blob over 4 GiB),
 * SV_ERR_STATE, SV_ERR_STORE_FULL or an LMDB code. */
int sv_store_checkpoint_put(sv_store_txn *t, const struct sv_store_model *m, uint64_t *version);

/* Make version the active model (roll forward or back): the active W and its
 * applied_seq move together at commit.  Returns 0, SV_ERR_NOTFOUND (no such
 * version; the group stays alive), SV_ERR_STATE or an LMDB code. */
int sv_store_set_active(sv_store_txn *t, uint64_t version);

/* Retention: delete log rows from the oldest on, while a row's seq is
 * below keep_from or its recv_ns below before_ns (0, 0: nothing), at most
 * max_rows, and never a row after the active model's applied_seq (no
 * active model: none).  Inline items no retained row names go too.
 * *deleted gets the rows deleted.  Returns 0, -EINVAL, SV_ERR_STATE,
 * SV_ERR_CORRUPT or an LMDB code. */
int sv_store_log_trim(sv_store_txn *t, uint64_t keep_from, uint64_t before_ns, size_t max_rows,
                      size_t *deleted);

/* Forget the de-duplication state of clients whose last append is older
 * than before_ns, deleting at most max_entries window entries (a client
 * left half done is finished by the next call).  *expired gets the clients
 * forgotten.  Returns like sv_store_log_trim. */
int sv_store_dedup_expire(sv_store_txn *t, uint64_t before_ns, size_t max_entries,
                          size_t *expired);

/* Erasure: examine up to max_rows log rows from seq from on and delete
 * those naming id on either side (their inline vectors with their last
 * reference).  The item itself is not touched (sv_store_item_del).  *next
 * gets the seq to go on from, 0 when the log's end was reached; *deleted
 * the rows deleted.  Unlike trimming this may delete rows after the active
 * model's applied_seq: the caller checkpoints first.  Returns like
 * sv_store_log_trim. */
int sv_store_purge(sv_store_txn *t, const void *id, size_t len, uint64_t from, size_t max_rows,
                   uint64_t *next, size_t *deleted);

/* ---- reading: any thread, one reader per thread at a time ---- */

/* Begin a read transaction.  Returns 0, -ENOMEM, or an LMDB code
 * (MDB_READERS_FULL when max_readers are open). */
int sv_store_read_begin(sv_store *st, sv_store_read **out);

/* End it; every pointer it gave out dies.  Accepts NULL. */
void sv_store_read_end(sv_store_read *r);

/* An item as read.  vec: its dim floats, in memory the caller named (or,
 * in a walk, the reader's, valid until the callback returns); NULL when
 * the vector was not asked for. */
struct sv_store_item {
	const float *vec;
	uint32_t dim;
	uint16_t flags;
};

/* Item id: its dim and flags into *out (may be NULL), and, when vec is not
 * NULL, its vector copied into vec (caller-owned, d_in floats; out->vec =
 * vec).  Two B-tree descents (the items value, then the vector's first
 * record); none for the vector when it is the one stored after the vector
 * this reader read last.  Returns 0, SV_ERR_NOTFOUND, -EINVAL (NULL r or
 * id, both vec and out NULL, bad len), SV_ERR_CORRUPT or an LMDB code. */
int sv_store_item_read(sv_store_read *r, const void *id, size_t len, float *vec,
                       struct sv_store_item *out);

/* Copy item id's d_in floats into out (caller-owned, d_in floats).  Returns
 * what sv_store_item_read returns. */
int sv_store_item_get(sv_store_read *r, const void *id, size_t len, float *out);

/* Walk every item in id order (bytewise), calling fn(ctx, id, len, item)
 * with id valid until r ends and item->vec (the vector copied into the
 * reader's buffer) until fn returns; fn returns 0 to go on, anything else
 * to stop the walk and be returned.  For brute-force top-k and cache
 * rebuilds.  Items written in id order are read with one cursor step per
 * vector record (DESIGN, VECTORS).  Returns 0, fn's value, SV_ERR_CORRUPT,
 * -EINVAL, -ENOMEM or an LMDB code.  (Added by the daemon for TOPK.) */
int sv_store_item_walk(sv_store_read *r,
		       int (*fn)(void *ctx, const void *id, size_t len, const struct sv_store_item *it),
		       void *ctx);
/* A walk over the items stored by id only, in the order their vectors
 * were written (not in id order): the inline namespace
 * (sv_store_id_reserved, one contiguous range of ids) is passed over with
 * one seek, without reading its vectors, so a walk costs the items, not
 * the pair log's inline vectors.  The items are taken 2^20 at a time (24
 * bytes of memory each, and up to 48 more while a window written out of
 * id order is sorted), sorted by vector id, and their vectors read in
 * the order they lie in vecs, one cursor step a record, whatever order
 * the ids came in.  The store keeps where each vector's records lay (24
 * bytes a stored vector, from the first walk on) so the next walk
 * prefetches them exactly; one walk at a time has that, others (walking
 * at once) prefetch by a guess from the file order.  Callbacks and
 * returns as sv_store_item_walk. */
int sv_store_stored_walk(sv_store_read *r,
			 int (*fn)(void *ctx, const void *id, size_t len, const struct sv_store_item *it),
			 void *ctx);

/* sv_store_stored_walk copying each vector straight to where dest(ctx)
 * says (d_in floats, the caller's; item->vec is that pointer) instead of
 * into the reader's buffer: a caller gathering rows saves a copy.  dest
 * returning NULL stops the walk with -EINVAL. */
int sv_store_stored_walk_to(sv_store_read *r, float *(*dest)(void *ctx),
                            int (*fn)(void *ctx, const void *id, size_t len,
                                      const struct sv_store_item *it),
                            void *ctx);

/* What sv_store_vec_check found: items and vector records agree when
 * bad_items, shared, missing, orphans, bad_vectors and bad_records are 0. */
struct sv_store_vec_check {
	uint64_t items;       /* in the items database */
	uint64_t vectors;     /* distinct vector ids in vecs */
	uint64_t records;     /* vector records */
	uint64_t bad_items;   /* items values of another format or dim */
	uint64_t shared;      /* items naming a vector another item names too */
	uint64_t missing;     /* items whose vector is absent or not whole */
	uint64_t orphans;     /* vectors no item names (leaked records) */
	uint64_t bad_vectors; /* named vectors not dim floats, or without record 0 */
	uint64_t bad_records; /* records under a key of another size */
};

/* Check every item against the vector records, as of r: one pass over each
 * database and 9 bytes of memory an item (for sv_fsck and the tests).
 * Returns 0 (the findings in *out), -EINVAL, -ENOMEM or an LMDB code. */
int sv_store_vec_check(sv_store_read *r, struct sv_store_vec_check *out);

/* The pair with sequence seq.  Returns 0, SV_ERR_NOTFOUND, SV_ERR_CORRUPT or
 * an LMDB code. */
int sv_store_pair_get(sv_store_read *r, uint64_t seq, struct sv_store_pair *out);

/* The last sequence logged (0 when the log is empty). */
int sv_store_last_seq(sv_store_read *r, uint64_t *seq);

/* A walk over the log in sequence order from the first pair with sequence
 * >= from (replay after applied_seq: from = applied_seq + 1).  The cursor
 * belongs to r and must be closed before r ends.  Returns 0, -EINVAL,
 * -ENOMEM or an LMDB code. */
int sv_store_cursor_open(sv_store_read *r, uint64_t from, sv_store_cursor **out);

/* The next pair (pointers valid until r ends).  Returns 0, SV_ERR_NOTFOUND at
 * the end, SV_ERR_CORRUPT or an LMDB code. */
int sv_store_cursor_next(sv_store_cursor *c, struct sv_store_pair *out);

/* Accepts NULL. */
void sv_store_cursor_close(sv_store_cursor *c);

/* A named u64 the writer commits with a group: where the group's input
 * ended in some outer sequence (the clustered trainer stores the JetStream
 * stream sequence of the last message it applied, so it resumes exactly
 * there).  name: 1..58 bytes, NUL-terminated.  put returns 0, -EINVAL or a
 * group error; get returns 0, SV_ERR_NOTFOUND (never put), -EINVAL,
 * SV_ERR_CORRUPT or an LMDB code. */
int sv_store_mark_put(sv_store_txn *t, const char *name, uint64_t value);
int sv_store_mark_get(sv_store_read *r, const char *name, uint64_t *value);

/* The active version.  Returns 0 or SV_ERR_NOTFOUND (no model yet). */
int sv_store_active(sv_store_read *r, uint64_t *version);

/* Checkpoint version (0: the active one).  Returns 0, SV_ERR_NOTFOUND,
 * SV_ERR_CORRUPT, SV_ERR_VERSION (newer record format) or an LMDB code. */
int sv_store_model_get(sv_store_read *r, uint64_t version, struct sv_store_model *out);

/* Copy a model's W (as got from sv_store_model_get) into out (d_in*d_out
 * floats, caller-owned). */
void sv_store_model_weights(const sv_store *st, const struct sv_store_model *m, float *out);

/* One line of the version list. */
struct sv_store_version {
	uint64_t version, step, applied_seq, time_ns;
	double loss, auc, eer;
	int active; /* 1 for the active version */
};

/* List up to cap versions, oldest first, into out; *n gets the number of
 * versions stored (which may exceed cap).  Returns 0, -EINVAL, SV_ERR_CORRUPT
 * or an LMDB code. */
int sv_store_versions(sv_store_read *r, struct sv_store_version *out, size_t cap, size_t *n);

/* A client's de-duplication state (committed). */
struct sv_store_producer {
	uint64_t hwm;     /* highest client seq logged */
	uint64_t last_ns; /* receive time of its last append */
	uint32_t depth;   /* seqs below hwm still told apart (dedup_depth) */
};

/* Client's state.  Returns 0, SV_ERR_NOTFOUND (unknown or expired),
 * -EINVAL, SV_ERR_CORRUPT or an LMDB code. */
int sv_store_producer_get(sv_store_read *r, const void *client, size_t len,
                          struct sv_store_producer *out);

/* Counts for status displays. */
struct sv_store_stat {
	uint64_t items, pairs, models, producers;
	uint64_t inline_items;        /* of items: inline vectors (those in ivecs) */
	size_t log_bytes;             /* pages of the pair log's B-tree, in bytes */
	uint64_t first_seq, last_seq; /* of the retained log (0, 0: empty) */
	size_t map_size, map_used;    /* bytes; map_used: up to LMDB's last page */
	size_t used_bytes;            /* map_used less the free list: pages holding data */
	uint64_t free_pages;          /* on LMDB's free list, reusable */
	uint32_t page_size;
	uint64_t created_ns;
	uint64_t settings_fp;
};
int sv_store_stat(sv_store_read *r, struct sv_store_stat *out);

#ifdef __cplusplus
}
#endif
#endif
