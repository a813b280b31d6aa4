/* sv/proto.h - the simverify wire protocol codec (docs/PROTOCOL.md is the
 * byte-by-byte specification; this header is the C manual).
 *
 * A message is a ZeroMQ multipart message: an array of frames.  This module
 * only turns frames into structs and structs into frames; it has no socket
 * code.  A frame is (pointer, length), struct sv_proto_frame, so the codec is
 * testable without ZeroMQ: the daemon fills the array from zmq_msg_data /
 * zmq_msg_size and hands it to the decoder.
 *
 * Frame 0 is always the 32-byte header (magic "SV", version, verb, flags,
 * status, request id, count, dim, arg, reason).  All integers are
 * little-endian; vectors are raw float32 little-endian, row after row, so a
 * numpy float32 array goes out as vec.tobytes() with no conversion.  The
 * codec assumes a little-endian host (it refuses to compile elsewhere).
 *
 * Ownership - ZERO COPY.  Decoded structs BORROW pointers into the frames:
 * ids, texts and vectors stay valid only as long as the frames' memory (for
 * ZeroMQ: until zmq_msg_close).  Nothing is allocated by the decoders.
 *
 * ALIGNMENT.  Vector pointers handed out by the decoders are `const void *`
 * on purpose: a frame may start at any address, so a vector inside it may
 * not be 4-byte aligned, and dereferencing it as float * would be undefined
 * behaviour.  Copy it out with sv_proto_vec_copy() (a memcpy of dim floats)
 * into an aligned buffer, or test sv_proto_vec_aligned() and cast only when it
 * says yes.  Every vector was already checked: right length, every value
 * finite.
 *
 * Errors.  Decoders return 0 or SV_ERR_PROTO / SV_ERR_PROTO_VERB and fill a
 * struct sv_proto_error: a reason code (enum sv_proto_reason, named by
 * sv_proto_reason_name() with a stable lowercase word fit for a Prometheus
 * label), the frame index at fault, and a message naming the frame and field
 * and what was expected, e.g.
 *   "frame 3 (vectors): 3132 bytes, expected 3136 = 1 x 784 x float32".
 * Decoded out-structs are written only on success.
 *
 * Encoders build frames in a struct sv_proto_msgbuf, which owns what it had
 * to build (header, tables, concatenations) and borrows what the caller gave
 * when it can go out as-is (single vectors, ids, texts).
 */
#ifndef SV_PROTO_H
#define SV_PROTO_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SV_PROTO_MAGIC0 'S'
#define SV_PROTO_MAGIC1 'V'
#define SV_PROTO_VERSION 1
#define SV_PROTO_HEADER_SIZE 32
#define SV_PROTO_MAX_FRAMES 8
#define SV_PROTO_MAX_ID 255    /* ids carry a u8 length in tables */
#define SV_PROTO_MAX_TEXT 4096 /* BACKUP path, reply message */

/* Fixed record sizes (bytes) of the table frames, see docs/PROTOCOL.md. */
#define SV_PROTO_PAIR_ROW 8
/* Every vector element (items, pairs, queries, W) must be finite with
 * |x| < SV_PROTO_MAX_ABS = 2^17: then no projection z = W^T x (d_in <= 2^20)
 * and no squared norm of z (d_out <= 2^16) overflows float32. */
#define SV_PROTO_MAX_ABS 131072.0f
#define SV_PROTO_QUERY_ROW 4
#define SV_PROTO_SCORE_ROW 24
#define SV_PROTO_TOPKQ_ROW 16
#define SV_PROTO_HIT_ROW 8
#define SV_PROTO_ACK_SIZE 24
#define SV_PROTO_ACK_ROW 4

enum sv_proto_verb {
	SV_PROTO_VERB_NONE = 0x00, /* only in a MALFORMED reply to a message whose
	                            * header could not be read (no verb to echo) */
	SV_PROTO_VERB_ITEM_PUT = 0x01,
	SV_PROTO_VERB_ITEM_DEL = 0x02,
	SV_PROTO_VERB_ITEM_GET = 0x03,
	SV_PROTO_VERB_PAIR = 0x10,
	SV_PROTO_VERB_PAIR_BATCH = 0x11,
	SV_PROTO_VERB_CLIENT_STATE = 0x12, /* frame 1: a client id; reply: JSON, its committed
	                                    * high-water mark and de-duplication window */
	SV_PROTO_VERB_SCORE = 0x20,
	SV_PROTO_VERB_SCORE_BATCH = 0x21,
	SV_PROTO_VERB_TOPK = 0x22,
	SV_PROTO_VERB_STATUS = 0x40,
	SV_PROTO_VERB_CHECKPOINT = 0x41,
	SV_PROTO_VERB_VERSIONS = 0x42,
	SV_PROTO_VERB_ROLLBACK = 0x43,
	SV_PROTO_VERB_PAUSE = 0x44,
	SV_PROTO_VERB_RESUME = 0x45,
	SV_PROTO_VERB_FLUSH = 0x46,
	SV_PROTO_VERB_BACKUP = 0x47,
	SV_PROTO_VERB_RELOAD = 0x48,
	SV_PROTO_VERB_CONFIG = 0x49,
	SV_PROTO_VERB_MODEL_GET = 0x4A, /* reply: JSON metadata + W (d_in x d_out f32) */
	SV_PROTO_VERB_MODEL_PUT = 0x4B, /* W (d_in x d_out f32): becomes a new version */
	SV_PROTO_VERB_METRICS = 0x4C,   /* reply: the Prometheus text exposition */
	SV_PROTO_VERB_PURGE = 0x4D,     /* frame 1: an item id; erase it and its log rows */
};

/* Header flags (u16).  Undefined bits must be 0. */
enum sv_proto_flag {
	SV_PROTO_FLAG_REPLY = 0x0001,  /* this message is a reply */
	SV_PROTO_FLAG_CLIENT = 0x0002, /* PAIR/PAIR_BATCH: frame 4 holds client id + seq */
	SV_PROTO_FLAG_POS = 0x0004,    /* a last frame of SV_PROTO_POS_SIZE bytes: in a
	                                * SCORE/SCORE_BATCH/TOPK request the least (model
	                                * version, items sequence) to answer at; in a reply
	                                * of those or of an ingest verb, where the node
	                                * stood (docs/SCALING.md) */
};
#define SV_PROTO_POS_SIZE 16 /* u64 model version, u64 sequence */

/* Side flags in pair/query tables. */
enum sv_proto_side_flag {
	SV_PROTO_SIDE_ID = 0x01,  /* the side names an item id */
	SV_PROTO_SIDE_VEC = 0x02, /* the side carries a vector (with ID: upsert, then use) */
};

/* Reply status (u16 in the header; u8 in score/topk rows). */
enum sv_proto_status {
	SV_PROTO_STATUS_OK = 0,
	SV_PROTO_STATUS_MALFORMED = 1, /* header.reason says why */
	SV_PROTO_STATUS_NOT_FOUND = 2, /* an id or version does not exist */
	SV_PROTO_STATUS_DUPLICATE = 3, /* every row's (client id, seq + row) already committed */
	SV_PROTO_STATUS_PAUSED = 4,    /* training paused; ingest refused */
	SV_PROTO_STATUS_BUSY = 5,      /* queue full, retry later */
	SV_PROTO_STATUS_REFUSED = 6,   /* not allowed here (e.g. admin verb on query socket) */
	SV_PROTO_STATUS_INTERNAL = 7,  /* store or other internal failure */
	SV_PROTO_STATUS_PARTIAL = 8,   /* batch: some rows failed, see rows */
	SV_PROTO_STATUS_STORE_FULL = 9, /* store full (max_map_size or min_free): nothing stored */
	SV_PROTO_STATUS_BEHIND = 10,   /* a cluster node had not reached the request's
	                                * position within its wait: ask again, or elsewhere */
	SV_PROTO_STATUS_COUNT_
};

/* Why a message was malformed.  Values are stable (they travel in replies). */
enum sv_proto_reason {
	SV_PROTO_REASON_NONE = 0,
	SV_PROTO_REASON_NO_FRAMES = 1, /* zero frames */
	SV_PROTO_REASON_TRUNCATED = 2, /* a frame shorter than its fixed part */
	SV_PROTO_REASON_BAD_MAGIC = 3,
	SV_PROTO_REASON_BAD_VERSION = 4,
	SV_PROTO_REASON_UNKNOWN_VERB = 5,
	SV_PROTO_REASON_BAD_FLAGS = 6,   /* undefined flag, or flag not valid for the verb */
	SV_PROTO_REASON_RESERVED = 7,    /* a reserved field is not 0 */
	SV_PROTO_REASON_FRAME_COUNT = 8, /* wrong number of frames for the verb */
	SV_PROTO_REASON_FRAME_SIZE = 9,  /* a frame longer/other than its exact size */
	SV_PROTO_REASON_WRONG_DIM = 10,  /* vector dim or vector frame length wrong */
	SV_PROTO_REASON_NONFINITE = 11,  /* NaN or Inf in a vector */
	SV_PROTO_REASON_EMPTY_ID = 12,
	SV_PROTO_REASON_ID_TOO_LONG = 13,  /* longer than limits.max_id_bytes */
	SV_PROTO_REASON_BAD_ID = 14,       /* id contains a NUL byte */
	SV_PROTO_REASON_BAD_LABEL = 15,    /* label not 0/1 (must be 0 in SCORE) */
	SV_PROTO_REASON_BAD_SIDE = 16,     /* side flags 0 or undefined bits */
	SV_PROTO_REASON_OVERSIZE = 17,     /* message over limits.max_msg_bytes */
	SV_PROTO_REASON_TOO_MANY = 18,     /* count over limits.max_pairs */
	SV_PROTO_REASON_BAD_COUNT = 19,    /* count 0, or not 1 for a single verb */
	SV_PROTO_REASON_BAD_K = 20,        /* k 0 or over limits.max_k */
	SV_PROTO_REASON_BAD_TEXT = 21,     /* path/message empty, too long or with NUL */
	SV_PROTO_REASON_BAD_STATUS = 22,   /* reply status or row field out of range */
	SV_PROTO_REASON_EMPTY_CLIENT = 23, /* CLIENT flag with an empty client id */
	SV_PROTO_REASON_TOO_LARGE = 24,    /* a vector element with |x| >= 2^17 (SV_PROTO_MAX_ABS) */
	SV_PROTO_REASON_SEQ_WRAP = 25,     /* client seq + count - 1 wraps past 2^64 - 1 */
	SV_PROTO_REASON_SEQ_STALE = 26,    /* client seq at or below the client's hwm - window */
	SV_PROTO_REASON_COUNT_
};

/* One frame, borrowed. */
struct sv_proto_frame {
	const void *data;
	size_t len;
};

/* What the decoder accepts.  d_in 0 accepts any dim (clients decoding
 * replies); 0 in any other field means "the built-in maximum". */
struct sv_proto_limits {
	uint32_t d_in;        /* expected vector dim (model.d_in) */
	size_t max_msg_bytes; /* sum of all frame lengths */
	size_t max_pairs;     /* rows in PAIR_BATCH / SCORE_BATCH / TOPK */
	size_t max_id_bytes;  /* <= 255 */
	uint32_t max_k;       /* TOPK k */
	uint64_t max_hits;    /* TOPK queries x k: bounds the reply (0: no bound) */
};

/* The decoded header (frame 0). */
struct sv_proto_header {
	uint8_t version;
	uint8_t verb;        /* enum sv_proto_verb */
	uint16_t flags;      /* enum sv_proto_flag */
	uint16_t status;     /* replies: enum sv_proto_status; requests: 0 */
	uint16_t reason;     /* replies: enum sv_proto_reason when MALFORMED; else 0 */
	uint64_t request_id; /* chosen by the client, echoed in the reply */
	uint32_t count;      /* rows (pairs, queries, scores, ack rows) */
	uint32_t dim;        /* vector dim, 0 when no vector travels */
	uint32_t arg;        /* TOPK: k; else 0 */
};

/* A decode failure.  frame is the index at fault (-1: the message as a
 * whole).  When have_header is 1, header holds frame 0 (so the daemon can
 * echo request_id and verb in its error reply); when it is 0, or the verb is
 * unknown, reply with SV_PROTO_VERB_NONE and request_id 0:
 *     sv_proto_encode_reply(mb, known ? e.header.verb : SV_PROTO_VERB_NONE,
 *                           e.have_header ? e.header.request_id : 0,
 *                           SV_PROTO_STATUS_MALFORMED, e.reason, e.msg); */
struct sv_proto_error {
	enum sv_proto_reason reason;
	int frame;
	int have_header;
	struct sv_proto_header header;
	char msg[256];
};

/* One side of a pair or one query: id (borrowed, id_len bytes, not
 * NUL-terminated, NULL when absent) and/or vector (borrowed, dim float32,
 * maybe unaligned, NULL when absent). */
struct sv_proto_side {
	const char *id;
	size_t id_len;
	const void *vec;
};

struct sv_proto_pair {
	uint8_t label; /* 1 same, 0 different; 0 in SCORE */
	struct sv_proto_side a, b;
};

/* Client identity for idempotent ingest.  Keys are per pair: row i of the
 * message is (id, seq + i), and the daemon stores each key once, so a pair
 * re-sent in any batching is a duplicate.  A client advances seq by the row
 * count of each message (e.g. seq = index of the message's first record). */
struct sv_proto_client {
	const char *id; /* 1..255 bytes, borrowed */
	size_t id_len;
	uint64_t seq; /* the client's sequence number of row 0 (row i: seq + i) */
};

/* A decoded request.  Which fields mean something depends on hdr.verb:
 *   ITEM_PUT           item (id + vec)
 *   ITEM_DEL/ITEM_GET  item.id
 *   CLIENT_STATE       item.id: the client id asked about
 *   PAIR, PAIR_BATCH,
 *   SCORE, SCORE_BATCH n rows, read them with sv_proto_next_pair();
 *                      PAIR*: has_client/client when FLAG_CLIENT
 *   TOPK               n queries (sv_proto_next_query()), k
 *   ROLLBACK           version
 *   PURGE              item.id: the item to erase
 *   BACKUP             text (the path, text_len bytes, not NUL-terminated)
 *   MODEL_PUT          w: dim (d_in) x n (d_out) float32, row-major, borrowed,
 *                      maybe unaligned (copy with sv_proto_vec_copy), finite
 *   other admin verbs  nothing beyond hdr
 * The table/ids/vecs fields are the codec's view of the frames, used by the
 * iterators; every row in them was validated by the decoder. */
struct sv_proto_request {
	struct sv_proto_header hdr;
	size_t n;
	uint32_t dim;
	uint32_t k;
	struct sv_proto_side item;
	int has_client;
	struct sv_proto_client client;
	uint64_t version;
	const char *text;
	size_t text_len;
	const uint8_t *table, *ids, *vecs;
	const void *w;
	int has_pos;                 /* flag POS: answer at (version, seq) or later */
	uint64_t pos_version, pos_seq;
};

/* Iteration state for rows; zero it (= {0}) before the first call. */
struct sv_proto_iter {
	size_t row;     /* rows (or hits) consumed */
	size_t id_off;  /* id bytes consumed */
	size_t vec_idx; /* vectors consumed (hits: the current query) */
	size_t base;    /* hits: hits of the queries before the current one */
};

/* The next pair of a PAIR/PAIR_BATCH/SCORE/SCORE_BATCH request.  Returns 1
 * and fills *p, or 0 at the end (also for other verbs).  O(1) per call. */
int sv_proto_next_pair(const struct sv_proto_request *r, struct sv_proto_iter *it,
                       struct sv_proto_pair *p);
/* The next query of a TOPK request.  Returns 1 and fills *q, or 0 at the end. */
int sv_proto_next_query(const struct sv_proto_request *r, struct sv_proto_iter *it,
                        struct sv_proto_side *q);

/* One SCORE reply row. */
struct sv_proto_score {
	float score;     /* cosine similarity in [-1, 1] */
	float threshold; /* the threshold the decision used */
	float margin;    /* score - threshold */
	uint8_t match;   /* 1 when score >= threshold */
	uint8_t policy;  /* operating-point code, e.g. enum sv_metrics_policy */
	uint8_t status;  /* per row: enum sv_proto_status (NOT_FOUND for unknown id) */
	uint64_t model_version;
};

/* One TOPK query's result header and one hit. */
struct sv_proto_topk_query {
	uint64_t model_version;
	uint32_t n_hits; /* <= k; hits follow in order of queries */
	uint8_t status;  /* enum sv_proto_status */
};
struct sv_proto_hit {
	const char *id; /* borrowed, not NUL-terminated */
	size_t id_len;
	float score;
};

/* ACK (reply to PAIR / PAIR_BATCH on the acked endpoint). */
enum sv_proto_outcome {
	SV_PROTO_OUTCOME_COMMITTED = 0,
	SV_PROTO_OUTCOME_DUPLICATE = 1,
	SV_PROTO_OUTCOME_REJECTED = 2,
};
struct sv_proto_ack {
	uint64_t client_seq;
	uint32_t n; /* rows, == header count */
	uint32_t n_committed, n_duplicate, n_rejected;
};
struct sv_proto_ack_row {
	uint8_t outcome; /* enum sv_proto_outcome */
	uint8_t reason;  /* enum sv_proto_reason for a malformed row, else 0 */
	uint16_t status; /* enum sv_proto_status (NOT_FOUND for unknown id, ...) */
};

/* A decoded reply.  Every reply has a status and a message (msg, msg_len
 * bytes of UTF-8, not NUL-terminated, may be empty).  Payload by verb, only
 * when status is OK or PARTIAL (error replies have no payload):
 *   ITEM_GET      vec (dim float32)
 *   SCORE*        n rows: sv_proto_reply_score()
 *   TOPK          n queries: sv_proto_reply_topk_query(), hits: sv_proto_next_hit()
 *   PAIR*         ack summary + n rows: sv_proto_reply_ack_row()
 *   admin verbs,
 *   CLIENT_STATE  payload (JSON text, payload_len bytes, may be empty)
 *   MODEL_GET     payload (JSON metadata) and vec: W, dim (d_in) x n (d_out)
 *                 float32, row-major, maybe unaligned
 *   ITEM_PUT/DEL  nothing */
struct sv_proto_reply {
	struct sv_proto_header hdr;
	int has_pos;                 /* flag POS: the node's (model version, sequence) */
	uint64_t pos_version, pos_seq;
	uint16_t status;
	uint16_t reason;
	const char *msg;
	size_t msg_len;
	size_t n;
	uint32_t dim;
	uint32_t k;
	const void *vec;
	const char *payload;
	size_t payload_len;
	int has_ack;
	struct sv_proto_ack ack;
	size_t n_hits;
	const uint8_t *rows, *hits, *ids;
};

int sv_proto_reply_score(const struct sv_proto_reply *r, size_t i, struct sv_proto_score *s);
int sv_proto_reply_topk_query(const struct sv_proto_reply *r, size_t i,
                              struct sv_proto_topk_query *q);
/* Hits of all queries in order; *query gets the query index of the hit.
 * Returns 1 and fills, 0 at the end. */
int sv_proto_next_hit(const struct sv_proto_reply *r, struct sv_proto_iter *it, size_t *query,
                      struct sv_proto_hit *h);
int sv_proto_reply_ack_row(const struct sv_proto_reply *r, size_t i, struct sv_proto_ack_row *a);
/* (The three accessors return 0, or SV_ERR_RANGE for i out of range or a
 * reply without that payload.) */

/* Decode a request (frames[0..n_frames)).  lim may be NULL (built-in
 * maxima, any dim).  Returns 0 and fills *out; SV_ERR_PROTO_VERB for an
 * unknown verb; SV_ERR_PROTO for anything else malformed (err says which);
 * -EINVAL for NULL frames/out/err.  A reply (FLAG_REPLY) is malformed here. */
int sv_proto_decode_request(const struct sv_proto_frame *frames, size_t n_frames,
                            const struct sv_proto_limits *lim, struct sv_proto_request *out,
                            struct sv_proto_error *err);
/* Decode a reply; the same contract (a request is malformed here). */
int sv_proto_decode_reply(const struct sv_proto_frame *frames, size_t n_frames,
                          const struct sv_proto_limits *lim, struct sv_proto_reply *out,
                          struct sv_proto_error *err);

/* Stable names: "truncated", "bad_magic", ... ("unknown" outside the enum). */
const char *sv_proto_reason_name(int reason);
const char *sv_proto_verb_name(int verb);     /* "pair_batch", ...; NULL if unknown */
const char *sv_proto_status_name(int status); /* "ok", "not_found", ... */

/* Vector helpers for borrowed (maybe unaligned) vectors. */
void sv_proto_vec_copy(float *dst, const void *src, size_t dim);
int sv_proto_vec_aligned(const void *src);

/* ---- encoding ---- */

/* Frames under construction.  frames[0..n) are ready to send, in order
 * (zmq_send(..., ZMQ_SNDMORE) for all but the last).  They point into the
 * msgbuf itself (do not copy or move it while frames are in use) or into
 * caller memory that the encoder borrowed (it must outlive the send).
 * sv_proto_msgbuf_init once, reuse for many messages (each encode resets
 * it), sv_proto_msgbuf_free at the end (accepts NULL). */
struct sv_proto_msgbuf {
	struct sv_proto_frame frames[SV_PROTO_MAX_FRAMES];
	size_t n;
	unsigned char hdr[SV_PROTO_HEADER_SIZE];
	unsigned char small[SV_PROTO_ACK_SIZE + 8];
	unsigned char pos[SV_PROTO_POS_SIZE];
	unsigned char *heap; /* owned, grows */
	size_t heap_cap;
};
void sv_proto_msgbuf_init(struct sv_proto_msgbuf *mb);
void sv_proto_msgbuf_free(struct sv_proto_msgbuf *mb);
/* A message as one byte string (fuzz corpora; one JetStream message of the
 * clustered pair log, docs/SCALING.md): u32 frame count, then per frame u32
 * length + bytes.  Returns the size, or the needed size when cap is too
 * small (nothing written then). */
size_t sv_proto_flatten(const struct sv_proto_frame *frames, size_t n, void *buf, size_t cap);
size_t sv_proto_msgbuf_flatten(const struct sv_proto_msgbuf *mb, void *buf, size_t cap);
/* The inverse, borrowing from buf: fills up to cap frames.  Returns the frame
 * count, or -1 when buf is not a well-formed flattening. */
long sv_proto_unflatten(const void *buf, size_t len, struct sv_proto_frame *frames, size_t cap);

/* Append the POS frame to the message just encoded in mb and set the flag:
 * a request's least position (SCORE, SCORE_BATCH, TOPK), or a reply's
 * position (those, ITEM_PUT, ITEM_DEL, PAIR, PAIR_BATCH).  Returns 0, or
 * -EINVAL for another verb or a full message. */
int sv_proto_add_pos(struct sv_proto_msgbuf *mb, uint64_t version, uint64_t seq);

/* Every encoder returns 0, -EINVAL (NULL or sizes the protocol cannot carry:
 * id 0 or > 255 bytes, n 0, bad side) or -ENOMEM.  Encoders do not check
 * values against limits: the decoder on the other side does. */
int sv_proto_encode_item_put(struct sv_proto_msgbuf *mb, uint64_t req_id, const char *id,
                             size_t id_len, const float *vec, uint32_t dim);
/* verb ITEM_DEL, ITEM_GET or CLIENT_STATE (id: the client id). */
int sv_proto_encode_item(struct sv_proto_msgbuf *mb, int verb, uint64_t req_id, const char *id,
                         size_t id_len);
/* verb PAIR (n == 1), PAIR_BATCH, SCORE (n == 1), SCORE_BATCH.  Side
 * vectors are dim floats; client may be NULL (PAIR* only).  Copies ids and
 * vectors into the msgbuf. */
int sv_proto_encode_pairs(struct sv_proto_msgbuf *mb, int verb, uint64_t req_id,
                          const struct sv_proto_pair *pairs, size_t n, uint32_t dim,
                          const struct sv_proto_client *client);
int sv_proto_encode_topk(struct sv_proto_msgbuf *mb, uint64_t req_id,
                         const struct sv_proto_side *queries, size_t n, uint32_t dim, uint32_t k);
/* Any admin verb; version is read for ROLLBACK, path (NUL-terminated) for
 * BACKUP, and for PURGE the item id (NUL-terminated, 1..255 bytes). */
int sv_proto_encode_admin(struct sv_proto_msgbuf *mb, int verb, uint64_t req_id, uint64_t version,
                          const char *path);

/* MODEL_PUT: W is d_in x d_out float32, row-major (borrowed). */
int sv_proto_encode_model_put(struct sv_proto_msgbuf *mb, uint64_t req_id, const float *W,
                              uint32_t d_in, uint32_t d_out);

/* Replies.  msg may be NULL (empty message); it is borrowed. */
/* A reply without payload: errors (status != OK, reason for MALFORMED), ITEM_PUT/DEL. */
int sv_proto_encode_reply(struct sv_proto_msgbuf *mb, int verb, uint64_t req_id, int status,
                          int reason, const char *msg);
/* Reply to ITEM_GET with the vector (borrowed). */
int sv_proto_encode_reply_vec(struct sv_proto_msgbuf *mb, uint64_t req_id, const char *msg,
                              const float *vec, uint32_t dim);
/* Reply to SCORE / SCORE_BATCH: n rows. */
int sv_proto_encode_reply_scores(struct sv_proto_msgbuf *mb, int verb, uint64_t req_id, int status,
                                 const char *msg, const struct sv_proto_score *s, size_t n);
/* Reply to TOPK: n queries; hits holds sum(q[i].n_hits) hits in query order. */
int sv_proto_encode_reply_topk(struct sv_proto_msgbuf *mb, uint64_t req_id, int status,
                               const char *msg, uint32_t k, const struct sv_proto_topk_query *q,
                               size_t n, const struct sv_proto_hit *hits);
/* ACK: reply to PAIR / PAIR_BATCH; rows has ack->n entries. */
int sv_proto_encode_reply_ack(struct sv_proto_msgbuf *mb, int verb, uint64_t req_id, int status,
                              const char *msg, const struct sv_proto_ack *ack,
                              const struct sv_proto_ack_row *rows);
/* Reply to MODEL_GET: JSON metadata and W (d_in x d_out float32), both borrowed. */
int sv_proto_encode_reply_model(struct sv_proto_msgbuf *mb, uint64_t req_id, const char *msg,
                                const char *json, size_t json_len, const float *W, uint32_t d_in,
                                uint32_t d_out);
/* Reply to an admin verb or CLIENT_STATE with a payload (JSON text,
 * borrowed, may be NULL). */
int sv_proto_encode_reply_admin(struct sv_proto_msgbuf *mb, int verb, uint64_t req_id, int status,
                                const char *msg, const char *payload, size_t payload_len);

#ifdef __cplusplus
}
#endif
#endif
