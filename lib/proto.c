/* proto.c - the simverify wire codec (see sv/proto.h, docs/PROTOCOL.md).
 *
 * Pure byte work: frames in, structs out and back.  No sockets, no
 * allocation in the decoders, no printing.  Leaves out: transport, limits
 * policy (the caller passes struct sv_proto_limits), what a verb means. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bytes.h"
#include "sv/error.h"
#include "sv/proto.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "sv/proto.c assumes a little-endian host"
#endif

#define DEF_MAX_MSG ((size_t)1 << 30)
#define DEF_MAX_PAIRS ((size_t)1 << 20)
#define DEF_MAX_K 100000u

/* ---- names ---- */

static const char *const reason_names[SV_PROTO_REASON_COUNT_] = {
    [SV_PROTO_REASON_NONE] = "none",
    [SV_PROTO_REASON_NO_FRAMES] = "no_frames",
    [SV_PROTO_REASON_TRUNCATED] = "truncated",
    [SV_PROTO_REASON_BAD_MAGIC] = "bad_magic",
    [SV_PROTO_REASON_BAD_VERSION] = "bad_version",
    [SV_PROTO_REASON_UNKNOWN_VERB] = "unknown_verb",
    [SV_PROTO_REASON_BAD_FLAGS] = "bad_flags",
    [SV_PROTO_REASON_RESERVED] = "reserved_nonzero",
    [SV_PROTO_REASON_FRAME_COUNT] = "frame_count",
    [SV_PROTO_REASON_FRAME_SIZE] = "frame_size",
    [SV_PROTO_REASON_WRONG_DIM] = "wrong_dim",
    [SV_PROTO_REASON_NONFINITE] = "nonfinite",
    [SV_PROTO_REASON_EMPTY_ID] = "empty_id",
    [SV_PROTO_REASON_ID_TOO_LONG] = "id_too_long",
    [SV_PROTO_REASON_BAD_ID] = "bad_id",
    [SV_PROTO_REASON_BAD_LABEL] = "bad_label",
    [SV_PROTO_REASON_BAD_SIDE] = "bad_side",
    [SV_PROTO_REASON_OVERSIZE] = "oversize",
    [SV_PROTO_REASON_TOO_MANY] = "too_many",
    [SV_PROTO_REASON_BAD_COUNT] = "bad_count",
    [SV_PROTO_REASON_BAD_K] = "bad_k",
    [SV_PROTO_REASON_BAD_TEXT] = "bad_text",
    [SV_PROTO_REASON_BAD_STATUS] = "bad_status",
    [SV_PROTO_REASON_EMPTY_CLIENT] = "empty_client",
    [SV_PROTO_REASON_TOO_LARGE] = "too_large",
    [SV_PROTO_REASON_SEQ_WRAP] = "seq_wrap",
    [SV_PROTO_REASON_SEQ_STALE] = "seq_stale",
};

const char *sv_proto_reason_name(int reason)
{
	if (reason < 0 || reason >= SV_PROTO_REASON_COUNT_)
		return "unknown";
	return reason_names[reason];
}

const char *sv_proto_verb_name(int verb)
{
	switch (verb) {
	case SV_PROTO_VERB_NONE:
		return NULL;
	case SV_PROTO_VERB_ITEM_PUT:
		return "item_put";
	case SV_PROTO_VERB_ITEM_DEL:
		return "item_del";
	case SV_PROTO_VERB_ITEM_GET:
		return "item_get";
	case SV_PROTO_VERB_PAIR:
		return "pair";
	case SV_PROTO_VERB_PAIR_BATCH:
		return "pair_batch";
	case SV_PROTO_VERB_CLIENT_STATE:
		return "client_state";
	case SV_PROTO_VERB_SCORE:
		return "score";
	case SV_PROTO_VERB_SCORE_BATCH:
		return "score_batch";
	case SV_PROTO_VERB_TOPK:
		return "topk";
	case SV_PROTO_VERB_STATUS:
		return "status";
	case SV_PROTO_VERB_CHECKPOINT:
		return "checkpoint";
	case SV_PROTO_VERB_VERSIONS:
		return "versions";
	case SV_PROTO_VERB_ROLLBACK:
		return "rollback";
	case SV_PROTO_VERB_PAUSE:
		return "pause";
	case SV_PROTO_VERB_RESUME:
		return "resume";
	case SV_PROTO_VERB_FLUSH:
		return "flush";
	case SV_PROTO_VERB_BACKUP:
		return "backup";
	case SV_PROTO_VERB_RELOAD:
		return "reload";
	case SV_PROTO_VERB_CONFIG:
		return "config";
	case SV_PROTO_VERB_MODEL_GET:
		return "model_get";
	case SV_PROTO_VERB_MODEL_PUT:
		return "model_put";
	case SV_PROTO_VERB_METRICS:
		return "metrics";
	case SV_PROTO_VERB_PURGE:
		return "purge";
	default:
		return NULL;
	}
}

const char *sv_proto_status_name(int status)
{
	static const char *const names[SV_PROTO_STATUS_COUNT_] = {
	    "ok",   "malformed", "not_found", "duplicate", "paused",
	    "busy", "refused",   "internal",  "partial", "store_full", "behind",
	};
	if (status < 0 || status >= SV_PROTO_STATUS_COUNT_)
		return "unknown";
	return names[status];
}

void sv_proto_vec_copy(float *dst, const void *src, size_t dim)
{
	memcpy(dst, src, dim * sizeof(float));
}

int sv_proto_vec_aligned(const void *src)
{
	return ((uintptr_t)src % _Alignof(float)) == 0;
}

/* ---- decoding ---- */

enum vclass { V_ITEM, V_PAIRS, V_TOPK, V_ADMIN };

static int verb_class(int verb)
{
	switch (verb) {
	case SV_PROTO_VERB_ITEM_PUT:
	case SV_PROTO_VERB_ITEM_DEL:
	case SV_PROTO_VERB_ITEM_GET:
	case SV_PROTO_VERB_CLIENT_STATE:
		return V_ITEM;
	case SV_PROTO_VERB_PAIR:
	case SV_PROTO_VERB_PAIR_BATCH:
	case SV_PROTO_VERB_SCORE:
	case SV_PROTO_VERB_SCORE_BATCH:
		return V_PAIRS;
	case SV_PROTO_VERB_TOPK:
		return V_TOPK;
	default:
		return sv_proto_verb_name(verb) ? V_ADMIN : -1;
	}
}

static int is_single(int verb)
{
	return verb == SV_PROTO_VERB_PAIR || verb == SV_PROTO_VERB_SCORE;
}

static int is_pair_ingest(int verb)
{
	return verb == SV_PROTO_VERB_PAIR || verb == SV_PROTO_VERB_PAIR_BATCH;
}

/* Decoding context: limits resolved, error sink. */
struct dctx {
	const struct sv_proto_frame *f;
	size_t nf;
	uint32_t d_in;
	size_t max_msg, max_pairs, max_id;
	uint32_t max_k;
	uint64_t max_hits;
	struct sv_proto_error *err;
	int has_pos; /* flag POS: the last frame was taken off into pos */
	uint64_t pos[2];
};

#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
static int
fail(struct dctx *c, enum sv_proto_reason reason, int frame, const char *fmt, ...)
{
	va_list ap;
	int n = 0;

	c->err->reason = reason;
	c->err->frame = frame;
	if (frame >= 0)
		n = snprintf(c->err->msg, sizeof(c->err->msg), "frame %d ", frame);
	va_start(ap, fmt);
	vsnprintf(c->err->msg + n, sizeof(c->err->msg) - (size_t)n, fmt, ap);
	va_end(ap);
	return reason == SV_PROTO_REASON_UNKNOWN_VERB ? SV_ERR_PROTO_VERB : SV_ERR_PROTO;
}

static void limits_resolve(struct dctx *c, const struct sv_proto_limits *lim)
{
	c->d_in = lim ? lim->d_in : 0;
	c->max_msg = lim && lim->max_msg_bytes ? lim->max_msg_bytes : DEF_MAX_MSG;
	c->max_pairs = lim && lim->max_pairs ? lim->max_pairs : DEF_MAX_PAIRS;
	c->max_id = lim && lim->max_id_bytes && lim->max_id_bytes < SV_PROTO_MAX_ID
	                ? lim->max_id_bytes
	                : SV_PROTO_MAX_ID;
	c->max_k = lim && lim->max_k ? lim->max_k : DEF_MAX_K;
	c->max_hits = lim && lim->max_hits ? lim->max_hits : UINT64_MAX;
}

static int frame_ok(const struct sv_proto_frame *f)
{
	return f->data != NULL || f->len == 0;
}

/* Header, frame count bounds and total size. */
static int decode_header(struct dctx *c, int want_reply, struct sv_proto_header *h)
{
	const uint8_t *p;
	size_t total = 0;

	if (c->nf == 0)
		return fail(c, SV_PROTO_REASON_NO_FRAMES, -1, "message has no frames");
	for (size_t i = 0; i < c->nf; i++) {
		if (!frame_ok(&c->f[i]))
			return fail(c, SV_PROTO_REASON_TRUNCATED, (int)i,
			            "has NULL data and %zu bytes", c->f[i].len);
		total += c->f[i].len;
	}
	if (c->f[0].len < SV_PROTO_HEADER_SIZE)
		return fail(c, SV_PROTO_REASON_TRUNCATED, 0, "(header): %zu bytes, expected %d",
		            c->f[0].len, SV_PROTO_HEADER_SIZE);
	p = c->f[0].data;
	if (p[0] != SV_PROTO_MAGIC0 || p[1] != SV_PROTO_MAGIC1)
		return fail(c, SV_PROTO_REASON_BAD_MAGIC, 0,
		            "(header): magic 0x%02x%02x, expected \"SV\" (0x5356)", p[0], p[1]);
	if (c->f[0].len != SV_PROTO_HEADER_SIZE)
		return fail(c, SV_PROTO_REASON_FRAME_SIZE, 0, "(header): %zu bytes, expected %d",
		            c->f[0].len, SV_PROTO_HEADER_SIZE);
	if (p[2] != SV_PROTO_VERSION)
		return fail(c, SV_PROTO_REASON_BAD_VERSION, 0,
		            "(header): version %u, this end speaks %d", p[2], SV_PROTO_VERSION);
	h->version = p[2];
	h->verb = p[3];
	h->flags = sv_get16(p + 4);
	h->status = sv_get16(p + 6);
	h->request_id = sv_get64(p + 8);
	h->count = sv_get32(p + 16);
	h->dim = sv_get32(p + 20);
	h->arg = sv_get32(p + 24);
	h->reason = sv_get16(p + 28);
	c->err->have_header = 1;
	c->err->header = *h;
	if (verb_class(h->verb) < 0 && !(want_reply && h->verb == SV_PROTO_VERB_NONE))
		return fail(c, SV_PROTO_REASON_UNKNOWN_VERB, 0, "(header): unknown verb 0x%02x",
		            h->verb);
	if (total > c->max_msg)
		return fail(c, SV_PROTO_REASON_OVERSIZE, -1,
		            "message of %zu bytes exceeds limits.max_msg_bytes %zu", total,
		            c->max_msg);
	if (sv_get16(p + 30) != 0)
		return fail(c, SV_PROTO_REASON_RESERVED, 0, "(header): reserved bytes 30-31 not 0");
	if (h->flags & ~(SV_PROTO_FLAG_REPLY | SV_PROTO_FLAG_CLIENT | SV_PROTO_FLAG_POS))
		return fail(c, SV_PROTO_REASON_BAD_FLAGS, 0, "(header): undefined flags 0x%04x",
		            h->flags);
	if (!!(h->flags & SV_PROTO_FLAG_REPLY) != want_reply)
		return fail(c, SV_PROTO_REASON_BAD_FLAGS, 0,
		            want_reply ? "(header): a request where a reply was expected"
		                       : "(header): a reply where a request was expected");
	if ((h->flags & SV_PROTO_FLAG_CLIENT) && (want_reply || !is_pair_ingest(h->verb)))
		return fail(c, SV_PROTO_REASON_BAD_FLAGS, 0,
		            "(header): flag CLIENT not valid for %s", sv_proto_verb_name(h->verb));
	if (!want_reply && (h->status != 0 || h->reason != 0))
		return fail(c, SV_PROTO_REASON_RESERVED, 0,
		            "(header): status/reason must be 0 in a request");
	if (h->flags & SV_PROTO_FLAG_POS) {
		const struct sv_proto_frame *last = &c->f[c->nf - 1];
		int query = h->verb == SV_PROTO_VERB_SCORE || h->verb == SV_PROTO_VERB_SCORE_BATCH ||
		            h->verb == SV_PROTO_VERB_TOPK;

		if (!query && !(want_reply && (is_pair_ingest(h->verb) ||
		                               h->verb == SV_PROTO_VERB_ITEM_PUT ||
		                               h->verb == SV_PROTO_VERB_ITEM_DEL)))
			return fail(c, SV_PROTO_REASON_BAD_FLAGS, 0, "(header): flag POS not valid for %s",
			            sv_proto_verb_name(h->verb));
		if (c->nf < 2 || last->len != SV_PROTO_POS_SIZE)
			return fail(c, SV_PROTO_REASON_FRAME_SIZE, (int)c->nf - 1,
			            "(position): %zu bytes, expected %d (flag POS)",
			            c->nf < 2 ? (size_t)0 : last->len, SV_PROTO_POS_SIZE);
		c->pos[0] = sv_get64(last->data);
		c->pos[1] = sv_get64((const uint8_t *)last->data + 8);
		c->has_pos = 1;
		c->nf--; /* the verb's own frames are the rest */
	}
	return 0;
}

static int want_frames(struct dctx *c, size_t n, const char *verb)
{
	if (c->nf != n)
		return fail(c, SV_PROTO_REASON_FRAME_COUNT, -1, "%s: %zu frames, expected %zu",
		            verb, c->nf, n);
	return 0;
}

/* dim check: dim in header vs d_in; needed says whether vectors travel. */
static int check_dim(struct dctx *c, uint32_t dim, int needed)
{
	if (needed && dim == 0)
		return fail(c, SV_PROTO_REASON_WRONG_DIM, 0,
		            "(header): dim 0 but vectors are present");
	if (dim && c->d_in && dim != c->d_in)
		return fail(c, SV_PROTO_REASON_WRONG_DIM, 0,
		            "(header): dim %u, expected %u (model.d_in)", dim, c->d_in);
	if (dim > (1u << 24))
		return fail(c, SV_PROTO_REASON_WRONG_DIM, 0, "(header): dim %u over 2^24", dim);
	return 0;
}

/* Whether every one of n little-endian float32s at p is finite with
 * |x| < 2^17 (SV_PROTO_MAX_ABS), i.e. its exponent field is at most
 * 127 + 16.  No early exit, so the loop vectorizes: the fast path for frames
 * that are fine; check_vecs then finds the first bad element. */
#define EXP_MAX (127u + 16u)
#define EXP_CARRY ((255u - EXP_MAX) << 23) /* exponent > EXP_MAX carries into bit 31 */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC push_options
#pragma GCC optimize("O3")
#endif
static int all_in_range(const uint8_t *p, size_t n)
{
	uint32_t acc = 0;
	size_t i = 0;

	for (; i + 64 <= n; i += 64) {
		for (size_t k = i; k < i + 64; k++)
			acc |= (sv_get32(p + 4 * k) & 0x7f800000u) + EXP_CARRY;
		if (acc & 0x80000000u)
			return 0;
	}
	for (; i < n; i++)
		acc |= (sv_get32(p + 4 * i) & 0x7f800000u) + EXP_CARRY;
	return !(acc & 0x80000000u);
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC pop_options
#endif

/* Vector frame: exactly nvec*dim floats, all finite and in range. */
static int check_vecs(struct dctx *c, int fi, const char *what, size_t nvec, uint32_t dim)
{
	const uint8_t *p = c->f[fi].data;
	size_t want = nvec * dim * 4, len = c->f[fi].len;

	if (len != want) {
		if (nvec == 1)
			return fail(c, SV_PROTO_REASON_WRONG_DIM, fi,
			            "(%s): %zu bytes, expected %zu = %u x float32", what, len, want,
			            dim);
		return fail(c, SV_PROTO_REASON_WRONG_DIM, fi,
		            "(%s): %zu bytes, expected %zu = %zu x %u x float32", what, len, want,
		            nvec, dim);
	}
	if (all_in_range(p, nvec * dim))
		return 0;
	for (size_t i = 0; i < nvec * dim; i++) {
		uint32_t bits = sv_get32(p + 4 * i);
		if ((bits & 0x7f800000u) == 0x7f800000u)
			return fail(c, SV_PROTO_REASON_NONFINITE, fi,
			            "(%s): vector %zu element %zu is %s", what, i / dim, i % dim,
			            (bits & 0x007fffffu) ? "NaN" : "Inf");
		if (((bits & 0x7f800000u) >> 23) > EXP_MAX)
			return fail(c, SV_PROTO_REASON_TOO_LARGE, fi,
			            "(%s): vector %zu element %zu is %g; |x| must be < 131072",
			            what, i / dim, i % dim, (double)sv_getf32(p + 4 * i));
	}
	return 0;
}

static int check_id(struct dctx *c, int fi, const char *what, const uint8_t *id, size_t len)
{
	if (len == 0)
		return fail(c, SV_PROTO_REASON_EMPTY_ID, fi, "(%s): empty id", what);
	if (len > c->max_id)
		return fail(c, SV_PROTO_REASON_ID_TOO_LONG, fi,
		            "(%s): id of %zu bytes, limit %zu (limits.max_id_bytes)", what, len,
		            c->max_id);
	if (memchr(id, 0, len))
		return fail(c, SV_PROTO_REASON_BAD_ID, fi, "(%s): id contains a NUL byte", what);
	return 0;
}

static int check_text(struct dctx *c, int fi, const char *what, int allow_empty)
{
	size_t len = c->f[fi].len;

	if (!allow_empty && len == 0)
		return fail(c, SV_PROTO_REASON_BAD_TEXT, fi, "(%s): empty", what);
	if (len > SV_PROTO_MAX_TEXT)
		return fail(c, SV_PROTO_REASON_BAD_TEXT, fi, "(%s): %zu bytes, limit %d", what, len,
		            SV_PROTO_MAX_TEXT);
	if (len && memchr(c->f[fi].data, 0, len))
		return fail(c, SV_PROTO_REASON_BAD_TEXT, fi, "(%s): contains a NUL byte", what);
	return 0;
}

static int check_count(struct dctx *c, const struct sv_proto_header *h, int single)
{
	if (h->count == 0)
		return fail(c, SV_PROTO_REASON_BAD_COUNT, 0, "(header): count 0");
	if (single && h->count != 1)
		return fail(c, SV_PROTO_REASON_BAD_COUNT, 0,
		            "(header): count %u, %s carries exactly 1 (use the _batch verb)",
		            h->count, sv_proto_verb_name(h->verb));
	if (h->count > c->max_pairs)
		return fail(c, SV_PROTO_REASON_TOO_MANY, 0,
		            "(header): count %u exceeds limit %zu (limits.max_batch_pairs)",
		            h->count, c->max_pairs);
	return 0;
}

/* Table frame of exactly n*row bytes. */
static int check_table(struct dctx *c, int fi, const char *what, size_t n, size_t row)
{
	size_t len = c->f[fi].len;

	if (len != n * row)
		return fail(
		    c, len < n * row ? SV_PROTO_REASON_TRUNCATED : SV_PROTO_REASON_FRAME_SIZE, fi,
		    "(%s): %zu bytes, expected %zu = %zu rows x %zu", what, len, n * row, n, row);
	return 0;
}

/* One side's flags + id: accumulates id bytes and vector count. */
static int check_side(struct dctx *c, size_t row, const char *side, uint8_t flags, uint8_t id_len,
                      size_t *id_total, size_t *nvec)
{
	if (flags == 0 || (flags & ~(SV_PROTO_SIDE_ID | SV_PROTO_SIDE_VEC)))
		return fail(c, SV_PROTO_REASON_BAD_SIDE, 1,
		            "(table): row %zu side %s flags 0x%02x, expected 1 (id), 2 (vector) "
		            "or 3 (both)",
		            row, side, flags);
	if (flags & SV_PROTO_SIDE_ID) {
		if (id_len == 0)
			return fail(c, SV_PROTO_REASON_EMPTY_ID, 1,
			            "(table): row %zu side %s: empty id", row, side);
		if (id_len > c->max_id)
			return fail(c, SV_PROTO_REASON_ID_TOO_LONG, 1,
			            "(table): row %zu side %s: id of %u bytes, limit %zu "
			            "(limits.max_id_bytes)",
			            row, side, id_len, c->max_id);
	} else if (id_len != 0) {
		return fail(c, SV_PROTO_REASON_BAD_SIDE, 1,
		            "(table): row %zu side %s: id length %u without the id flag", row, side,
		            id_len);
	}
	*id_total += id_len;
	*nvec += (flags & SV_PROTO_SIDE_VEC) ? 1 : 0;
	return 0;
}

static int check_ids_frame(struct dctx *c, int fi, size_t id_total)
{
	if (c->f[fi].len != id_total)
		return fail(c,
		            c->f[fi].len < id_total ? SV_PROTO_REASON_TRUNCATED
		                                    : SV_PROTO_REASON_FRAME_SIZE,
		            fi, "(ids): %zu bytes, expected %zu (sum of the table's id lengths)",
		            c->f[fi].len, id_total);
	if (id_total && memchr(c->f[fi].data, 0, id_total))
		return fail(c, SV_PROTO_REASON_BAD_ID, fi, "(ids): an id contains a NUL byte");
	return 0;
}

static int decode_pairs(struct dctx *c, const struct sv_proto_header *h, struct sv_proto_request *r)
{
	const uint8_t *t;
	size_t id_total = 0, nvec = 0, nf = (h->flags & SV_PROTO_FLAG_CLIENT) ? 5 : 4;
	int rc, score = !is_pair_ingest(h->verb);

	if ((rc = want_frames(c, nf, sv_proto_verb_name(h->verb))))
		return rc;
	if ((rc = check_count(c, h, is_single(h->verb))))
		return rc;
	if (h->arg != 0)
		return fail(c, SV_PROTO_REASON_RESERVED, 0, "(header): arg %u, expected 0", h->arg);
	if ((rc = check_table(c, 1, "table", h->count, SV_PROTO_PAIR_ROW)))
		return rc;
	t = c->f[1].data;
	for (size_t i = 0; i < h->count; i++) {
		const uint8_t *row = t + i * SV_PROTO_PAIR_ROW;
		if (score ? row[0] != 0 : row[0] > 1)
			return fail(c, SV_PROTO_REASON_BAD_LABEL, 1,
			            score
			                ? "(table): row %zu label %u, expected 0 in a score request"
			                : "(table): row %zu label %u, expected 0 or 1",
			            i, row[0]);
		if ((rc = check_side(c, i, "a", row[1], row[3], &id_total, &nvec)))
			return rc;
		if ((rc = check_side(c, i, "b", row[2], row[4], &id_total, &nvec)))
			return rc;
		if (row[5] || row[6] || row[7])
			return fail(c, SV_PROTO_REASON_RESERVED, 1,
			            "(table): row %zu reserved bytes 5-7 not 0", i);
	}
	if ((rc = check_ids_frame(c, 2, id_total)))
		return rc;
	if ((rc = check_dim(c, h->dim, nvec > 0)))
		return rc;
	if ((rc = check_vecs(c, 3, "vectors", nvec, h->dim)))
		return rc;
	if (nf == 5) {
		const uint8_t *p = c->f[4].data;
		if (c->f[4].len < 8)
			return fail(c, SV_PROTO_REASON_TRUNCATED, 4,
			            "(client): %zu bytes, expected 8 (seq) + client id",
			            c->f[4].len);
		if (c->f[4].len == 8)
			return fail(c, SV_PROTO_REASON_EMPTY_CLIENT, 4,
			            "(client): empty client id");
		if ((rc = check_id(c, 4, "client", p + 8, c->f[4].len - 8)))
			return rc;
		if (sv_get64(p) > UINT64_MAX - (h->count ? h->count - 1 : 0))
			return fail(c, SV_PROTO_REASON_SEQ_WRAP, 4,
			            "(client): seq %llu + %u rows wraps past 2^64 - 1",
			            (unsigned long long)sv_get64(p), h->count);
		r->has_client = 1;
		r->client.seq = sv_get64(p);
		r->client.id = (const char *)p + 8;
		r->client.id_len = c->f[4].len - 8;
	}
	r->n = h->count;
	r->dim = h->dim;
	r->table = t;
	r->ids = c->f[2].data;
	r->vecs = c->f[3].data;
	return 0;
}

static int decode_topk(struct dctx *c, const struct sv_proto_header *h, struct sv_proto_request *r)
{
	const uint8_t *t;
	size_t id_total = 0, nvec = 0;
	int rc;

	if ((rc = want_frames(c, 4, "topk")))
		return rc;
	if ((rc = check_count(c, h, 0)))
		return rc;
	if (h->arg == 0 || h->arg > c->max_k)
		return fail(c, SV_PROTO_REASON_BAD_K, 0, "(header): k %u, expected 1..%u", h->arg,
		            c->max_k);
	if ((uint64_t)h->count * h->arg > c->max_hits)
		return fail(c, SV_PROTO_REASON_TOO_MANY, 0,
		            "(header): %u queries x k %u = %llu hits, over limits.max_topk_hits %llu",
		            h->count, h->arg, (unsigned long long)h->count * h->arg,
		            (unsigned long long)c->max_hits);
	if ((rc = check_table(c, 1, "table", h->count, SV_PROTO_QUERY_ROW)))
		return rc;
	t = c->f[1].data;
	for (size_t i = 0; i < h->count; i++) {
		const uint8_t *row = t + i * SV_PROTO_QUERY_ROW;
		if ((rc = check_side(c, i, "q", row[0], row[1], &id_total, &nvec)))
			return rc;
		if (row[2] || row[3])
			return fail(c, SV_PROTO_REASON_RESERVED, 1,
			            "(table): row %zu reserved bytes 2-3 not 0", i);
	}
	if ((rc = check_ids_frame(c, 2, id_total)))
		return rc;
	if ((rc = check_dim(c, h->dim, nvec > 0)))
		return rc;
	if ((rc = check_vecs(c, 3, "vectors", nvec, h->dim)))
		return rc;
	r->n = h->count;
	r->dim = h->dim;
	r->k = h->arg;
	r->table = t;
	r->ids = c->f[2].data;
	r->vecs = c->f[3].data;
	return 0;
}

static int decode_item(struct dctx *c, const struct sv_proto_header *h, struct sv_proto_request *r)
{
	int put = h->verb == SV_PROTO_VERB_ITEM_PUT, rc;

	if ((rc = want_frames(c, put ? 3 : 2, sv_proto_verb_name(h->verb))))
		return rc;
	if ((rc = check_count(c, h, 1)))
		return rc;
	if (h->arg != 0)
		return fail(c, SV_PROTO_REASON_RESERVED, 0, "(header): arg %u, expected 0", h->arg);
	if ((rc = check_id(c, 1, "id", c->f[1].data, c->f[1].len)))
		return rc;
	if ((rc = check_dim(c, h->dim, put)))
		return rc;
	if (put && (rc = check_vecs(c, 2, "vector", 1, h->dim)))
		return rc;
	r->n = 1;
	r->dim = h->dim;
	r->item.id = c->f[1].data;
	r->item.id_len = c->f[1].len;
	r->item.vec = put ? c->f[2].data : NULL;
	return 0;
}

static int decode_admin(struct dctx *c, const struct sv_proto_header *h, struct sv_proto_request *r)
{
	int rc, nf = (h->verb == SV_PROTO_VERB_ROLLBACK || h->verb == SV_PROTO_VERB_BACKUP ||
	              h->verb == SV_PROTO_VERB_MODEL_PUT || h->verb == SV_PROTO_VERB_PURGE)
	                 ? 2
	                 : 1;

	if ((rc = want_frames(c, (size_t)nf, sv_proto_verb_name(h->verb))))
		return rc;
	if (h->verb == SV_PROTO_VERB_MODEL_PUT) {
		/* count = d_out, dim = d_in, frame 1 = W row-major */
		if (h->arg)
			return fail(c, SV_PROTO_REASON_RESERVED, 0,
			            "(header): arg must be 0 for model_put");
		if (h->count == 0 || h->count > (1u << 24))
			return fail(c, SV_PROTO_REASON_BAD_COUNT, 0,
			            "(header): count (d_out) %u, expected 1..2^24", h->count);
		if ((rc = check_dim(c, h->dim, 1)) ||
		    (rc = check_vecs(c, 1, "W", h->count, h->dim)))
			return rc;
		r->n = h->count;
		r->dim = h->dim;
		r->w = c->f[1].data;
		return 0;
	}
	if (h->count || h->dim || h->arg)
		return fail(c, SV_PROTO_REASON_RESERVED, 0,
		            "(header): count/dim/arg must be 0 for %s",
		            sv_proto_verb_name(h->verb));
	if (h->verb == SV_PROTO_VERB_ROLLBACK) {
		if (c->f[1].len != 8)
			return fail(c,
			            c->f[1].len < 8 ? SV_PROTO_REASON_TRUNCATED
			                            : SV_PROTO_REASON_FRAME_SIZE,
			            1, "(version): %zu bytes, expected 8 (u64)", c->f[1].len);
		r->version = sv_get64(c->f[1].data);
	} else if (h->verb == SV_PROTO_VERB_BACKUP) {
		if ((rc = check_text(c, 1, "path", 0)))
			return rc;
		r->text = c->f[1].data;
		r->text_len = c->f[1].len;
	} else if (h->verb == SV_PROTO_VERB_PURGE) {
		if ((rc = check_id(c, 1, "id", c->f[1].data, c->f[1].len)))
			return rc;
		r->item.id = c->f[1].data;
		r->item.id_len = c->f[1].len;
	}
	return 0;
}

static int dctx_init(struct dctx *c, const struct sv_proto_frame *frames, size_t n_frames,
                     const struct sv_proto_limits *lim, struct sv_proto_error *err)
{
	memset(err, 0, sizeof(*err));
	memset(c, 0, sizeof(*c));
	err->frame = -1;
	c->f = frames;
	c->nf = n_frames;
	c->err = err;
	limits_resolve(c, lim);
	if (!frames && n_frames)
		return -EINVAL;
	return 0;
}

int sv_proto_decode_request(const struct sv_proto_frame *frames, size_t n_frames,
                            const struct sv_proto_limits *lim, struct sv_proto_request *out,
                            struct sv_proto_error *err)
{
	struct dctx c;
	struct sv_proto_request r;
	int rc;

	if (!out || !err || dctx_init(&c, frames, n_frames, lim, err))
		return -EINVAL;
	memset(&r, 0, sizeof(r));
	if ((rc = decode_header(&c, 0, &r.hdr)))
		return rc;
	switch (verb_class(r.hdr.verb)) {
	case V_ITEM:
		rc = decode_item(&c, &r.hdr, &r);
		break;
	case V_PAIRS:
		rc = decode_pairs(&c, &r.hdr, &r);
		break;
	case V_TOPK:
		rc = decode_topk(&c, &r.hdr, &r);
		break;
	default:
		rc = decode_admin(&c, &r.hdr, &r);
		break;
	}
	if (rc)
		return rc;
	r.has_pos = c.has_pos;
	r.pos_version = c.pos[0];
	r.pos_seq = c.pos[1];
	*out = r;
	return 0;
}

static void read_side(const struct sv_proto_request *r, struct sv_proto_iter *it, uint8_t flags,
                      uint8_t id_len, struct sv_proto_side *s)
{
	s->id = NULL;
	s->id_len = 0;
	s->vec = NULL;
	if (flags & SV_PROTO_SIDE_ID) {
		s->id = (const char *)r->ids + it->id_off;
		s->id_len = id_len;
		it->id_off += id_len;
	}
	if (flags & SV_PROTO_SIDE_VEC) {
		s->vec = r->vecs + it->vec_idx * r->dim * 4;
		it->vec_idx++;
	}
}

int sv_proto_next_pair(const struct sv_proto_request *r, struct sv_proto_iter *it,
                       struct sv_proto_pair *p)
{
	const uint8_t *row;

	if (!r || !it || !p || verb_class(r->hdr.verb) != V_PAIRS || it->row >= r->n)
		return 0;
	row = r->table + it->row * SV_PROTO_PAIR_ROW;
	p->label = row[0];
	read_side(r, it, row[1], row[3], &p->a);
	read_side(r, it, row[2], row[4], &p->b);
	it->row++;
	return 1;
}

int sv_proto_next_query(const struct sv_proto_request *r, struct sv_proto_iter *it,
                        struct sv_proto_side *q)
{
	const uint8_t *row;

	if (!r || !it || !q || r->hdr.verb != SV_PROTO_VERB_TOPK || it->row >= r->n)
		return 0;
	row = r->table + it->row * SV_PROTO_QUERY_ROW;
	read_side(r, it, row[0], row[1], q);
	it->row++;
	return 1;
}

/* ---- reply decoding ---- */

static int decode_reply_payload(struct dctx *c, const struct sv_proto_header *h,
                                struct sv_proto_reply *r)
{
	const char *vn = sv_proto_verb_name(h->verb);
	int rc, cls = verb_class(h->verb);

	switch (h->verb) {
	case SV_PROTO_VERB_ITEM_PUT:
	case SV_PROTO_VERB_ITEM_DEL:
		return want_frames(c, 2, vn);
	case SV_PROTO_VERB_ITEM_GET:
		if ((rc = want_frames(c, 3, vn)) || (rc = check_dim(c, h->dim, 1)) ||
		    (rc = check_vecs(c, 2, "vector", 1, h->dim)))
			return rc;
		r->dim = h->dim;
		r->vec = c->f[2].data;
		return 0;
	case SV_PROTO_VERB_SCORE:
	case SV_PROTO_VERB_SCORE_BATCH:
		if ((rc = want_frames(c, 3, vn)) || (rc = check_count(c, h, is_single(h->verb))) ||
		    (rc = check_table(c, 2, "scores", h->count, SV_PROTO_SCORE_ROW)))
			return rc;
		for (size_t i = 0; i < h->count; i++) {
			const uint8_t *row = (const uint8_t *)c->f[2].data + i * SV_PROTO_SCORE_ROW;
			if (row[12] > 1 || row[14] >= SV_PROTO_STATUS_COUNT_)
				return fail(c, SV_PROTO_REASON_BAD_STATUS, 2,
				            "(scores): row %zu match %u status %u out of range", i,
				            row[12], row[14]);
		}
		r->n = h->count;
		r->rows = c->f[2].data;
		return 0;
	case SV_PROTO_VERB_TOPK: {
		size_t hits = 0, id_total = 0;
		if ((rc = want_frames(c, 5, vn)) || (rc = check_count(c, h, 0)) ||
		    (rc = check_table(c, 2, "queries", h->count, SV_PROTO_TOPKQ_ROW)))
			return rc;
		if (h->arg == 0 || h->arg > c->max_k)
			return fail(c, SV_PROTO_REASON_BAD_K, 0, "(header): k %u, expected 1..%u",
			            h->arg, c->max_k);
		for (size_t i = 0; i < h->count; i++) {
			const uint8_t *row = (const uint8_t *)c->f[2].data + i * SV_PROTO_TOPKQ_ROW;
			uint32_t nh = sv_get32(row + 8);
			if (nh > h->arg || row[12] >= SV_PROTO_STATUS_COUNT_)
				return fail(c, SV_PROTO_REASON_BAD_STATUS, 2,
				            "(queries): row %zu: %u hits (k %u), status %u", i, nh,
				            h->arg, row[12]);
			hits += nh;
		}
		if ((rc = check_table(c, 3, "hits", hits, SV_PROTO_HIT_ROW)))
			return rc;
		for (size_t i = 0; i < hits; i++) {
			const uint8_t *row = (const uint8_t *)c->f[3].data + i * SV_PROTO_HIT_ROW;
			if (row[4] == 0)
				return fail(c, SV_PROTO_REASON_EMPTY_ID, 3,
				            "(hits): hit %zu has an empty id", i);
			id_total += row[4];
		}
		if ((rc = check_ids_frame(c, 4, id_total)))
			return rc;
		r->n = h->count;
		r->k = h->arg;
		r->n_hits = hits;
		r->rows = c->f[2].data;
		r->hits = c->f[3].data;
		r->ids = c->f[4].data;
		return 0;
	}
	case SV_PROTO_VERB_PAIR:
	case SV_PROTO_VERB_PAIR_BATCH: {
		const uint8_t *a;
		if ((rc = want_frames(c, 4, vn)) || (rc = check_count(c, h, is_single(h->verb))))
			return rc;
		if (c->f[2].len != SV_PROTO_ACK_SIZE)
			return fail(c,
			            c->f[2].len < SV_PROTO_ACK_SIZE ? SV_PROTO_REASON_TRUNCATED
			                                            : SV_PROTO_REASON_FRAME_SIZE,
			            2, "(ack): %zu bytes, expected %d", c->f[2].len,
			            SV_PROTO_ACK_SIZE);
		a = c->f[2].data;
		r->ack.client_seq = sv_get64(a);
		r->ack.n = sv_get32(a + 8);
		r->ack.n_committed = sv_get32(a + 12);
		r->ack.n_duplicate = sv_get32(a + 16);
		r->ack.n_rejected = sv_get32(a + 20);
		if (r->ack.n != h->count ||
		    (uint64_t)r->ack.n_committed + r->ack.n_duplicate + r->ack.n_rejected !=
		        r->ack.n)
			return fail(
			    c, SV_PROTO_REASON_BAD_COUNT, 2,
			    "(ack): n %u, committed+duplicate+rejected %llu, header count %u",
			    r->ack.n,
			    (unsigned long long)r->ack.n_committed + r->ack.n_duplicate +
			        r->ack.n_rejected,
			    h->count);
		if ((rc = check_table(c, 3, "ack rows", h->count, SV_PROTO_ACK_ROW)))
			return rc;
		for (size_t i = 0; i < h->count; i++) {
			const uint8_t *row = (const uint8_t *)c->f[3].data + i * SV_PROTO_ACK_ROW;
			if (row[0] > SV_PROTO_OUTCOME_REJECTED ||
			    row[1] >= SV_PROTO_REASON_COUNT_ ||
			    sv_get16(row + 2) >= SV_PROTO_STATUS_COUNT_)
				return fail(c, SV_PROTO_REASON_BAD_STATUS, 3,
				            "(ack rows): row %zu outcome %u reason %u status %u", i,
				            row[0], row[1], sv_get16(row + 2));
		}
		r->n = h->count;
		r->has_ack = 1;
		r->rows = c->f[3].data;
		return 0;
	}
	case SV_PROTO_VERB_MODEL_GET:
		if ((rc = want_frames(c, 4, vn)) || (rc = check_dim(c, h->dim, 1)))
			return rc;
		if (h->count == 0 || h->count > (1u << 24))
			return fail(c, SV_PROTO_REASON_BAD_COUNT, 0,
			            "(header): count (d_out) %u, expected 1..2^24", h->count);
		if ((rc = check_vecs(c, 3, "W", h->count, h->dim)))
			return rc;
		r->payload = c->f[2].data;
		r->payload_len = c->f[2].len;
		r->n = h->count;
		r->dim = h->dim;
		r->vec = c->f[3].data;
		return 0;
	default:
		(void)cls;
		if ((rc = want_frames(c, 3, vn)))
			return rc;
		r->payload = c->f[2].data;
		r->payload_len = c->f[2].len;
		return 0;
	}
}

int sv_proto_decode_reply(const struct sv_proto_frame *frames, size_t n_frames,
                          const struct sv_proto_limits *lim, struct sv_proto_reply *out,
                          struct sv_proto_error *err)
{
	struct dctx c;
	struct sv_proto_reply r;
	int rc;

	if (!out || !err || dctx_init(&c, frames, n_frames, lim, err))
		return -EINVAL;
	memset(&r, 0, sizeof(r));
	if ((rc = decode_header(&c, 1, &r.hdr)))
		return rc;
	if (r.hdr.status >= SV_PROTO_STATUS_COUNT_ || r.hdr.reason >= SV_PROTO_REASON_COUNT_)
		return fail(&c, SV_PROTO_REASON_BAD_STATUS, 0, "(header): status %u reason %u",
		            r.hdr.status, r.hdr.reason);
	if ((r.hdr.reason != 0) != (r.hdr.status == SV_PROTO_STATUS_MALFORMED))
		return fail(
		    &c, SV_PROTO_REASON_BAD_STATUS, 0,
		    "(header): reason %u with status %s (a reason goes with malformed only)",
		    r.hdr.reason, sv_proto_status_name(r.hdr.status));
	if (c.nf < 2)
		return fail(&c, SV_PROTO_REASON_FRAME_COUNT, -1,
		            "reply: %zu frames, expected at least 2 (header, message)", c.nf);
	if ((rc = check_text(&c, 1, "message", 1)))
		return rc;
	r.status = r.hdr.status;
	r.reason = r.hdr.reason;
	r.has_pos = c.has_pos;
	r.pos_version = c.pos[0];
	r.pos_seq = c.pos[1];
	r.msg = c.f[1].data;
	r.msg_len = c.f[1].len;
	if (r.status == SV_PROTO_STATUS_OK || r.status == SV_PROTO_STATUS_PARTIAL)
		rc = decode_reply_payload(&c, &r.hdr, &r);
	else
		rc = want_frames(&c, 2, "error reply");
	if (rc)
		return rc;
	*out = r;
	return 0;
}

int sv_proto_reply_score(const struct sv_proto_reply *r, size_t i, struct sv_proto_score *s)
{
	const uint8_t *row;

	if (!r || !s || !r->rows || i >= r->n ||
	    (r->hdr.verb != SV_PROTO_VERB_SCORE && r->hdr.verb != SV_PROTO_VERB_SCORE_BATCH))
		return SV_ERR_RANGE;
	row = r->rows + i * SV_PROTO_SCORE_ROW;
	s->score = sv_getf32(row);
	s->threshold = sv_getf32(row + 4);
	s->margin = sv_getf32(row + 8);
	s->match = row[12];
	s->policy = row[13];
	s->status = row[14];
	s->model_version = sv_get64(row + 16);
	return 0;
}

int sv_proto_reply_topk_query(const struct sv_proto_reply *r, size_t i,
                              struct sv_proto_topk_query *q)
{
	const uint8_t *row;

	if (!r || !q || !r->rows || i >= r->n || r->hdr.verb != SV_PROTO_VERB_TOPK)
		return SV_ERR_RANGE;
	row = r->rows + i * SV_PROTO_TOPKQ_ROW;
	q->model_version = sv_get64(row);
	q->n_hits = sv_get32(row + 8);
	q->status = row[12];
	return 0;
}

/* it->row: hit index; it->vec_idx: its query; it->base: hits before that
 * query; it->id_off: id bytes used.  O(1) amortized per hit. */
int sv_proto_next_hit(const struct sv_proto_reply *r, struct sv_proto_iter *it, size_t *query,
                      struct sv_proto_hit *h)
{
	const uint8_t *row;

	if (!r || !it || !h || !query || r->hdr.verb != SV_PROTO_VERB_TOPK || !r->hits ||
	    it->row >= r->n_hits)
		return 0;
	while (it->vec_idx < r->n &&
	       it->base + sv_get32(r->rows + it->vec_idx * SV_PROTO_TOPKQ_ROW + 8) <= it->row) {
		it->base += sv_get32(r->rows + it->vec_idx * SV_PROTO_TOPKQ_ROW + 8);
		it->vec_idx++;
	}
	row = r->hits + it->row * SV_PROTO_HIT_ROW;
	h->score = sv_getf32(row);
	h->id_len = row[4];
	h->id = (const char *)r->ids + it->id_off;
	it->id_off += row[4];
	*query = it->vec_idx;
	it->row++;
	return 1;
}

int sv_proto_reply_ack_row(const struct sv_proto_reply *r, size_t i, struct sv_proto_ack_row *a)
{
	const uint8_t *row;

	if (!r || !a || !r->has_ack || i >= r->n)
		return SV_ERR_RANGE;
	row = r->rows + i * SV_PROTO_ACK_ROW;
	a->outcome = row[0];
	a->reason = row[1];
	a->status = sv_get16(row + 2);
	return 0;
}

/* ---- encoding ---- */

void sv_proto_msgbuf_init(struct sv_proto_msgbuf *mb)
{
	memset(mb, 0, sizeof(*mb));
}

void sv_proto_msgbuf_free(struct sv_proto_msgbuf *mb)
{
	if (!mb)
		return;
	free(mb->heap);
	memset(mb, 0, sizeof(*mb));
}

static int heap_reserve(struct sv_proto_msgbuf *mb, size_t need)
{
	unsigned char *p;
	size_t cap = mb->heap_cap ? mb->heap_cap : 256;

	if (need <= mb->heap_cap)
		return 0;
	while (cap < need)
		cap *= 2;
	p = realloc(mb->heap, cap);
	if (!p)
		return -ENOMEM;
	mb->heap = p;
	mb->heap_cap = cap;
	return 0;
}

static void put_header(struct sv_proto_msgbuf *mb, int verb, uint16_t flags, int status, int reason,
                       uint64_t req_id, uint32_t count, uint32_t dim, uint32_t arg)
{
	uint8_t *p = mb->hdr;

	memset(p, 0, SV_PROTO_HEADER_SIZE);
	p[0] = SV_PROTO_MAGIC0;
	p[1] = SV_PROTO_MAGIC1;
	p[2] = SV_PROTO_VERSION;
	p[3] = (uint8_t)verb;
	sv_put16(p + 4, flags);
	sv_put16(p + 6, (uint16_t)status);
	sv_put64(p + 8, req_id);
	sv_put32(p + 16, count);
	sv_put32(p + 20, dim);
	sv_put32(p + 24, arg);
	sv_put16(p + 28, (uint16_t)reason);
	mb->n = 1;
	mb->frames[0].data = mb->hdr;
	mb->frames[0].len = SV_PROTO_HEADER_SIZE;
}

static void add_frame(struct sv_proto_msgbuf *mb, const void *data, size_t len)
{
	mb->frames[mb->n].data = len ? data : "";
	mb->frames[mb->n].len = len;
	mb->n++;
}

static int side_valid(const struct sv_proto_side *s)
{
	if (!s->id && !s->vec)
		return 0;
	if (s->id && (s->id_len == 0 || s->id_len > SV_PROTO_MAX_ID))
		return 0;
	return 1;
}

static uint8_t side_flags(const struct sv_proto_side *s)
{
	return (uint8_t)((s->id ? SV_PROTO_SIDE_ID : 0) | (s->vec ? SV_PROTO_SIDE_VEC : 0));
}

int sv_proto_encode_item_put(struct sv_proto_msgbuf *mb, uint64_t req_id, const char *id,
                             size_t id_len, const float *vec, uint32_t dim)
{
	if (!mb || !id || !id_len || !vec || !dim)
		return -EINVAL;
	put_header(mb, SV_PROTO_VERB_ITEM_PUT, 0, 0, 0, req_id, 1, dim, 0);
	add_frame(mb, id, id_len);
	add_frame(mb, vec, (size_t)dim * 4);
	return 0;
}

int sv_proto_encode_item(struct sv_proto_msgbuf *mb, int verb, uint64_t req_id, const char *id,
                         size_t id_len)
{
	if (!mb || !id || !id_len ||
	    (verb != SV_PROTO_VERB_ITEM_DEL && verb != SV_PROTO_VERB_ITEM_GET &&
	     verb != SV_PROTO_VERB_CLIENT_STATE))
		return -EINVAL;
	put_header(mb, verb, 0, 0, 0, req_id, 1, 0, 0);
	add_frame(mb, id, id_len);
	return 0;
}

/* Lays out table | ids | vectors in the heap and adds the three frames. */
static int build_tables(struct sv_proto_msgbuf *mb, const struct sv_proto_side *const *sides,
                        size_t n_sides, size_t table_len, size_t *t_off, uint32_t dim, size_t extra,
                        size_t *extra_off)
{
	size_t ids = 0, nvec = 0, id_off, vec_off, end;
	int rc;

	for (size_t i = 0; i < n_sides; i++) {
		ids += sides[i]->id ? sides[i]->id_len : 0;
		nvec += sides[i]->vec ? 1 : 0;
	}
	if (nvec && !dim)
		return -EINVAL;
	/* vectors first so they are 8-byte aligned in our own buffer */
	vec_off = 0;
	*t_off = vec_off + nvec * dim * 4;
	id_off = *t_off + table_len;
	end = id_off + ids;
	if (extra_off)
		*extra_off = end;
	end += extra;
	if ((rc = heap_reserve(mb, end ? end : 1)))
		return rc;
	memset(mb->heap + *t_off, 0, table_len);
	for (size_t i = 0, io = id_off, vi = 0; i < n_sides; i++) {
		if (sides[i]->id) {
			memcpy(mb->heap + io, sides[i]->id, sides[i]->id_len);
			io += sides[i]->id_len;
		}
		if (sides[i]->vec) {
			memcpy(mb->heap + vec_off + vi * dim * 4, sides[i]->vec, (size_t)dim * 4);
			vi++;
		}
	}
	add_frame(mb, mb->heap + *t_off, table_len);
	add_frame(mb, mb->heap + id_off, ids);
	add_frame(mb, mb->heap + vec_off, nvec * dim * 4);
	return 0;
}

int sv_proto_encode_pairs(struct sv_proto_msgbuf *mb, int verb, uint64_t req_id,
                          const struct sv_proto_pair *pairs, size_t n, uint32_t dim,
                          const struct sv_proto_client *client)
{
	const struct sv_proto_side **sides = NULL;
	size_t t_off, c_off;
	int rc = -EINVAL;
	uint16_t flags = client ? SV_PROTO_FLAG_CLIENT : 0;

	if (!mb || !pairs || n == 0 || n > UINT32_MAX || verb_class(verb) != V_PAIRS ||
	    (is_single(verb) && n != 1))
		return -EINVAL;
	if (client && (!is_pair_ingest(verb) || !client->id || client->id_len == 0 ||
	               client->id_len > SV_PROTO_MAX_ID))
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!side_valid(&pairs[i].a) || !side_valid(&pairs[i].b))
			return -EINVAL;
	sides = malloc(2 * n * sizeof(*sides));
	if (!sides)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		sides[2 * i] = &pairs[i].a;
		sides[2 * i + 1] = &pairs[i].b;
	}
	put_header(mb, verb, flags, 0, 0, req_id, (uint32_t)n, dim, 0);
	if ((rc = build_tables(mb, sides, 2 * n, n * SV_PROTO_PAIR_ROW, &t_off, dim,
	                       client ? 8 + client->id_len : 0, &c_off)))
		goto out;
	for (size_t i = 0; i < n; i++) {
		uint8_t *row = mb->heap + t_off + i * SV_PROTO_PAIR_ROW;
		row[0] = pairs[i].label;
		row[1] = side_flags(&pairs[i].a);
		row[2] = side_flags(&pairs[i].b);
		row[3] = (uint8_t)(pairs[i].a.id ? pairs[i].a.id_len : 0);
		row[4] = (uint8_t)(pairs[i].b.id ? pairs[i].b.id_len : 0);
	}
	if (client) {
		sv_put64(mb->heap + c_off, client->seq);
		memcpy(mb->heap + c_off + 8, client->id, client->id_len);
		add_frame(mb, mb->heap + c_off, 8 + client->id_len);
	}
	rc = 0;
out:
	free(sides);
	return rc;
}

int sv_proto_encode_topk(struct sv_proto_msgbuf *mb, uint64_t req_id,
                         const struct sv_proto_side *queries, size_t n, uint32_t dim, uint32_t k)
{
	const struct sv_proto_side **sides;
	size_t t_off;
	int rc;

	if (!mb || !queries || n == 0 || n > UINT32_MAX || k == 0)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!side_valid(&queries[i]))
			return -EINVAL;
	sides = malloc(n * sizeof(*sides));
	if (!sides)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		sides[i] = &queries[i];
	put_header(mb, SV_PROTO_VERB_TOPK, 0, 0, 0, req_id, (uint32_t)n, dim, k);
	rc = build_tables(mb, sides, n, n * SV_PROTO_QUERY_ROW, &t_off, dim, 0, NULL);
	if (rc == 0)
		for (size_t i = 0; i < n; i++) {
			uint8_t *row = mb->heap + t_off + i * SV_PROTO_QUERY_ROW;
			row[0] = side_flags(&queries[i]);
			row[1] = (uint8_t)(queries[i].id ? queries[i].id_len : 0);
		}
	free(sides);
	return rc;
}

int sv_proto_encode_admin(struct sv_proto_msgbuf *mb, int verb, uint64_t req_id, uint64_t version,
                          const char *path)
{
	if (!mb || verb_class(verb) != V_ADMIN || verb == SV_PROTO_VERB_MODEL_PUT)
		return -EINVAL;
	if (verb == SV_PROTO_VERB_BACKUP && (!path || !*path || strlen(path) > SV_PROTO_MAX_TEXT))
		return -EINVAL;
	if (verb == SV_PROTO_VERB_PURGE && (!path || !*path || strlen(path) > SV_PROTO_MAX_ID))
		return -EINVAL;
	put_header(mb, verb, 0, 0, 0, req_id, 0, 0, 0);
	if (verb == SV_PROTO_VERB_ROLLBACK) {
		sv_put64(mb->small, version);
		add_frame(mb, mb->small, 8);
	} else if (verb == SV_PROTO_VERB_BACKUP || verb == SV_PROTO_VERB_PURGE) {
		add_frame(mb, path, strlen(path));
	}
	return 0;
}

int sv_proto_encode_model_put(struct sv_proto_msgbuf *mb, uint64_t req_id, const float *W,
                              uint32_t d_in, uint32_t d_out)
{
	if (!mb || !W || d_in == 0 || d_out == 0 || d_in > (1u << 24) || d_out > (1u << 24))
		return -EINVAL;
	put_header(mb, SV_PROTO_VERB_MODEL_PUT, 0, 0, 0, req_id, d_out, d_in, 0);
	add_frame(mb, W, (size_t)d_in * d_out * sizeof(float));
	return 0;
}

static int reply_start(struct sv_proto_msgbuf *mb, int verb, uint64_t req_id, int status,
                       int reason, const char *msg, uint32_t count, uint32_t dim, uint32_t arg)
{
	size_t len = msg ? strlen(msg) : 0;

	if (!mb ||
	    (!sv_proto_verb_name(verb) &&
	     !(verb == SV_PROTO_VERB_NONE && status == SV_PROTO_STATUS_MALFORMED)) ||
	    status < 0 || status >= SV_PROTO_STATUS_COUNT_ || reason < 0 ||
	    reason >= SV_PROTO_REASON_COUNT_ ||
	    (reason != 0) != (status == SV_PROTO_STATUS_MALFORMED))
		return -EINVAL;
	if (len > SV_PROTO_MAX_TEXT)
		len = SV_PROTO_MAX_TEXT; /* truncate rather than fail an error reply */
	put_header(mb, verb, SV_PROTO_FLAG_REPLY, status, reason, req_id, count, dim, arg);
	add_frame(mb, msg, len);
	return 0;
}

int sv_proto_encode_reply(struct sv_proto_msgbuf *mb, int verb, uint64_t req_id, int status,
                          int reason, const char *msg)
{
	return reply_start(mb, verb, req_id, status, reason, msg, 0, 0, 0);
}

int sv_proto_encode_reply_vec(struct sv_proto_msgbuf *mb, uint64_t req_id, const char *msg,
                              const float *vec, uint32_t dim)
{
	int rc;

	if (!vec || !dim)
		return -EINVAL;
	if ((rc = reply_start(mb, SV_PROTO_VERB_ITEM_GET, req_id, 0, 0, msg, 1, dim, 0)))
		return rc;
	add_frame(mb, vec, (size_t)dim * 4);
	return 0;
}

int sv_proto_encode_reply_scores(struct sv_proto_msgbuf *mb, int verb, uint64_t req_id, int status,
                                 const char *msg, const struct sv_proto_score *s, size_t n)
{
	int rc;

	if (!s || !n || n > UINT32_MAX ||
	    (verb != SV_PROTO_VERB_SCORE && verb != SV_PROTO_VERB_SCORE_BATCH) ||
	    (verb == SV_PROTO_VERB_SCORE && n != 1) ||
	    (status != SV_PROTO_STATUS_OK && status != SV_PROTO_STATUS_PARTIAL))
		return -EINVAL;
	if ((rc = heap_reserve(mb, n * SV_PROTO_SCORE_ROW)))
		return rc;
	if ((rc = reply_start(mb, verb, req_id, status, 0, msg, (uint32_t)n, 0, 0)))
		return rc;
	memset(mb->heap, 0, n * SV_PROTO_SCORE_ROW);
	for (size_t i = 0; i < n; i++) {
		uint8_t *row = mb->heap + i * SV_PROTO_SCORE_ROW;
		sv_putf32(row, s[i].score);
		sv_putf32(row + 4, s[i].threshold);
		sv_putf32(row + 8, s[i].margin);
		row[12] = s[i].match;
		row[13] = s[i].policy;
		row[14] = s[i].status;
		sv_put64(row + 16, s[i].model_version);
	}
	add_frame(mb, mb->heap, n * SV_PROTO_SCORE_ROW);
	return 0;
}

int sv_proto_encode_reply_topk(struct sv_proto_msgbuf *mb, uint64_t req_id, int status,
                               const char *msg, uint32_t k, const struct sv_proto_topk_query *q,
                               size_t n, const struct sv_proto_hit *hits)
{
	size_t nh = 0, ids = 0, qo, ho, io;
	int rc;

	if (!q || !n || n > UINT32_MAX || !k ||
	    (status != SV_PROTO_STATUS_OK && status != SV_PROTO_STATUS_PARTIAL))
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (q[i].n_hits > k)
			return -EINVAL;
		nh += q[i].n_hits;
	}
	if (nh && !hits)
		return -EINVAL;
	for (size_t i = 0; i < nh; i++) {
		if (!hits[i].id || !hits[i].id_len || hits[i].id_len > SV_PROTO_MAX_ID)
			return -EINVAL;
		ids += hits[i].id_len;
	}
	qo = 0;
	ho = n * SV_PROTO_TOPKQ_ROW;
	io = ho + nh * SV_PROTO_HIT_ROW;
	if ((rc = heap_reserve(mb, io + ids + 1)))
		return rc;
	if ((rc = reply_start(mb, SV_PROTO_VERB_TOPK, req_id, status, 0, msg, (uint32_t)n, 0, k)))
		return rc;
	memset(mb->heap, 0, io);
	for (size_t i = 0; i < n; i++) {
		uint8_t *row = mb->heap + qo + i * SV_PROTO_TOPKQ_ROW;
		sv_put64(row, q[i].model_version);
		sv_put32(row + 8, q[i].n_hits);
		row[12] = q[i].status;
	}
	for (size_t i = 0, o = io; i < nh; i++) {
		uint8_t *row = mb->heap + ho + i * SV_PROTO_HIT_ROW;
		sv_putf32(row, hits[i].score);
		row[4] = (uint8_t)hits[i].id_len;
		memcpy(mb->heap + o, hits[i].id, hits[i].id_len);
		o += hits[i].id_len;
	}
	add_frame(mb, mb->heap + qo, n * SV_PROTO_TOPKQ_ROW);
	add_frame(mb, mb->heap + ho, nh * SV_PROTO_HIT_ROW);
	add_frame(mb, mb->heap + io, ids);
	return 0;
}

int sv_proto_encode_reply_ack(struct sv_proto_msgbuf *mb, int verb, uint64_t req_id, int status,
                              const char *msg, const struct sv_proto_ack *ack,
                              const struct sv_proto_ack_row *rows)
{
	int rc;

	if (!ack || !rows || !ack->n || !is_pair_ingest(verb) ||
	    (verb == SV_PROTO_VERB_PAIR && ack->n != 1) ||
	    (status != SV_PROTO_STATUS_OK && status != SV_PROTO_STATUS_PARTIAL))
		return -EINVAL;
	if ((rc = heap_reserve(mb, (size_t)ack->n * SV_PROTO_ACK_ROW)))
		return rc;
	if ((rc = reply_start(mb, verb, req_id, status, 0, msg, ack->n, 0, 0)))
		return rc;
	sv_put64(mb->small, ack->client_seq);
	sv_put32(mb->small + 8, ack->n);
	sv_put32(mb->small + 12, ack->n_committed);
	sv_put32(mb->small + 16, ack->n_duplicate);
	sv_put32(mb->small + 20, ack->n_rejected);
	for (size_t i = 0; i < ack->n; i++) {
		uint8_t *row = mb->heap + i * SV_PROTO_ACK_ROW;
		row[0] = rows[i].outcome;
		row[1] = rows[i].reason;
		sv_put16(row + 2, rows[i].status);
	}
	add_frame(mb, mb->small, SV_PROTO_ACK_SIZE);
	add_frame(mb, mb->heap, (size_t)ack->n * SV_PROTO_ACK_ROW);
	return 0;
}

int sv_proto_encode_reply_admin(struct sv_proto_msgbuf *mb, int verb, uint64_t req_id, int status,
                                const char *msg, const char *payload, size_t payload_len)
{
	int rc;

	if ((verb_class(verb) != V_ADMIN && verb != SV_PROTO_VERB_CLIENT_STATE) ||
	    verb == SV_PROTO_VERB_MODEL_GET || (!payload && payload_len) ||
	    (status != SV_PROTO_STATUS_OK && status != SV_PROTO_STATUS_PARTIAL))
		return -EINVAL;
	if ((rc = reply_start(mb, verb, req_id, status, 0, msg, 0, 0, 0)))
		return rc;
	add_frame(mb, payload, payload_len);
	return 0;
}

int sv_proto_encode_reply_model(struct sv_proto_msgbuf *mb, uint64_t req_id, const char *msg,
                                const char *json, size_t json_len, const float *W, uint32_t d_in,
                                uint32_t d_out)
{
	int rc;

	if (!W || (!json && json_len) || d_in == 0 || d_out == 0 || d_in > (1u << 24) ||
	    d_out > (1u << 24))
		return -EINVAL;
	if ((rc = reply_start(mb, SV_PROTO_VERB_MODEL_GET, req_id, SV_PROTO_STATUS_OK, 0, msg,
	                      d_out, d_in, 0)))
		return rc;
	add_frame(mb, json, json_len);
	add_frame(mb, W, (size_t)d_in * d_out * sizeof(float));
	return 0;
}

/* ---- flattening (tests, fuzz corpora) ---- */

int sv_proto_add_pos(struct sv_proto_msgbuf *mb, uint64_t version, uint64_t seq)
{
	int verb = mb->hdr[3], reply = sv_get16(mb->hdr + 4) & SV_PROTO_FLAG_REPLY;
	int query = verb == SV_PROTO_VERB_SCORE || verb == SV_PROTO_VERB_SCORE_BATCH ||
	            verb == SV_PROTO_VERB_TOPK;

	if (mb->n == 0 || mb->n >= SV_PROTO_MAX_FRAMES ||
	    !(query || (reply && (verb == SV_PROTO_VERB_PAIR || verb == SV_PROTO_VERB_PAIR_BATCH ||
	                          verb == SV_PROTO_VERB_ITEM_PUT || verb == SV_PROTO_VERB_ITEM_DEL))))
		return -EINVAL;
	sv_put64(mb->pos, version);
	sv_put64(mb->pos + 8, seq);
	mb->frames[mb->n].data = mb->pos;
	mb->frames[mb->n].len = SV_PROTO_POS_SIZE;
	mb->n++;
	sv_put16(mb->hdr + 4, (uint16_t)(sv_get16(mb->hdr + 4) | SV_PROTO_FLAG_POS));
	return 0;
}

size_t sv_proto_flatten(const struct sv_proto_frame *frames, size_t n, void *buf, size_t cap)
{
	size_t need = 4;
	uint8_t *p = buf;

	for (size_t i = 0; i < n; i++)
		need += 4 + frames[i].len;
	if (!buf || cap < need)
		return need;
	sv_put32(p, (uint32_t)n);
	p += 4;
	for (size_t i = 0; i < n; i++) {
		sv_put32(p, (uint32_t)frames[i].len);
		if (frames[i].len)
			memcpy(p + 4, frames[i].data, frames[i].len);
		p += 4 + frames[i].len;
	}
	return need;
}

size_t sv_proto_msgbuf_flatten(const struct sv_proto_msgbuf *mb, void *buf, size_t cap)
{
	return sv_proto_flatten(mb->frames, mb->n, buf, cap);
}

long sv_proto_unflatten(const void *buf, size_t len, struct sv_proto_frame *frames, size_t cap)
{
	const uint8_t *p = buf;
	size_t off = 4, n;

	if (!buf || len < 4)
		return -1;
	n = sv_get32(p);
	if (n > cap)
		return -1;
	for (size_t i = 0; i < n; i++) {
		size_t fl;
		if (len - off < 4)
			return -1;
		fl = sv_get32(p + off);
		off += 4;
		if (len - off < fl)
			return -1;
		frames[i].data = p + off;
		frames[i].len = fl;
		off += fl;
	}
	return off == len ? (long)n : -1;
}
