/* test_proto.c - the wire codec: round trips of every message kind, every
 * malformed class with its exact reason and a message naming the frame or
 * field, and random truncation/corruption of valid messages. */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sv/error.h"
#include "sv/proto.h"

#define D 8

static struct sv_proto_msgbuf mb;
static struct sv_proto_limits lim = {
    .d_in = D, .max_msg_bytes = 1 << 20, .max_pairs = 64, .max_id_bytes = 255, .max_k = 100};
static float va[D], vb[D];

static void setup(void)
{
	sv_proto_msgbuf_init(&mb);
	for (int i = 0; i < D; i++) {
		va[i] = (float)i * 0.5f - 1.0f;
		vb[i] = (float)(D - i) * 0.25f;
	}
}

static void teardown(void)
{
	sv_proto_msgbuf_free(&mb);
}

TestSuite(proto, .init = setup, .fini = teardown);

/* Copies of the frames (so tests can corrupt them without touching mb). */
struct copy {
	struct sv_proto_frame f[SV_PROTO_MAX_FRAMES];
	unsigned char *buf[SV_PROTO_MAX_FRAMES];
	size_t n;
};

static void copy_of(struct copy *c, const struct sv_proto_msgbuf *m)
{
	memset(c, 0, sizeof(*c));
	c->n = m->n;
	for (size_t i = 0; i < m->n; i++) {
		c->buf[i] = malloc(m->frames[i].len + 1);
		memcpy(c->buf[i], m->frames[i].data, m->frames[i].len);
		c->f[i].data = c->buf[i];
		c->f[i].len = m->frames[i].len;
	}
}

static void copy_free(struct copy *c)
{
	for (size_t i = 0; i < SV_PROTO_MAX_FRAMES; i++)
		free(c->buf[i]);
}

static int req(const struct sv_proto_frame *f, size_t n, struct sv_proto_request *r,
               struct sv_proto_error *e)
{
	return sv_proto_decode_request(f, n, &lim, r, e);
}

static void expect_reject(const struct copy *c, int reason, int frame, const char *needle)
{
	struct sv_proto_request r;
	struct sv_proto_error e;
	int rc = req(c->f, c->n, &r, &e);
	cr_assert_eq(rc, reason == SV_PROTO_REASON_UNKNOWN_VERB ? SV_ERR_PROTO_VERB : SV_ERR_PROTO,
	             "rc %d (%s)", rc, e.msg);
	cr_assert_eq(e.reason, reason, "reason %s, want %s: %s", sv_proto_reason_name(e.reason),
	             sv_proto_reason_name(reason), e.msg);
	cr_assert_eq(e.frame, frame, "frame %d want %d: %s", e.frame, frame, e.msg);
	cr_assert(strstr(e.msg, needle), "message '%s' lacks '%s'", e.msg, needle);
}

Test(proto, item_put_roundtrip)
{
	struct sv_proto_request r;
	struct sv_proto_error e;
	float out[D];

	cr_assert_eq(sv_proto_encode_item_put(&mb, 42, "cat", 3, va, D), 0);
	cr_assert_eq(mb.n, 3);
	cr_assert_eq(req(mb.frames, mb.n, &r, &e), 0, "%s", e.msg);
	cr_assert_eq(r.hdr.verb, SV_PROTO_VERB_ITEM_PUT);
	cr_assert_eq(r.hdr.request_id, 42);
	cr_assert_eq(r.item.id_len, 3);
	cr_assert_eq(memcmp(r.item.id, "cat", 3), 0);
	sv_proto_vec_copy(out, r.item.vec, D);
	cr_assert_eq(memcmp(out, va, sizeof(va)), 0);
}

Test(proto, item_del_get_roundtrip)
{
	struct sv_proto_request r;
	struct sv_proto_error e;
	int verbs[] = {SV_PROTO_VERB_ITEM_DEL, SV_PROTO_VERB_ITEM_GET};

	for (int i = 0; i < 2; i++) {
		cr_assert_eq(sv_proto_encode_item(&mb, verbs[i], 7, "dog", 3), 0);
		cr_assert_eq(req(mb.frames, mb.n, &r, &e), 0, "%s", e.msg);
		cr_assert_eq(r.hdr.verb, verbs[i]);
		cr_assert_eq(memcmp(r.item.id, "dog", 3), 0);
		cr_assert_null(r.item.vec);
	}
	cr_assert_eq(sv_proto_encode_item(&mb, SV_PROTO_VERB_PAIR, 7, "dog", 3), -EINVAL);
	cr_assert_eq(sv_proto_encode_item(&mb, SV_PROTO_VERB_ITEM_GET, 7, "dog", 0), -EINVAL);
}

static struct sv_proto_pair mkpair(int label, const char *ida, const float *a, const char *idb,
                                   const float *b)
{
	struct sv_proto_pair p = {.label = (uint8_t)label};
	p.a.id = ida;
	p.a.id_len = ida ? strlen(ida) : 0;
	p.a.vec = a;
	p.b.id = idb;
	p.b.id_len = idb ? strlen(idb) : 0;
	p.b.vec = b;
	return p;
}

static void check_side(const struct sv_proto_side *s, const char *id, const float *v)
{
	float out[D];
	if (id) {
		cr_assert_eq(s->id_len, strlen(id));
		cr_assert_eq(memcmp(s->id, id, s->id_len), 0);
	} else {
		cr_assert_null(s->id);
	}
	if (v) {
		cr_assert_not_null(s->vec);
		sv_proto_vec_copy(out, s->vec, D);
		cr_assert_eq(memcmp(out, v, sizeof(out)), 0);
	} else {
		cr_assert_null(s->vec);
	}
}

Test(proto, pair_batch_roundtrip_all_side_kinds)
{
	struct sv_proto_pair in[3] = {
	    mkpair(1, "a1", va, NULL, vb),   /* upsert + inline */
	    mkpair(0, "x", NULL, "y", NULL), /* ids only */
	    mkpair(1, NULL, vb, "zz", va),
	};
	struct sv_proto_client cl = {.id = "pub-1", .id_len = 5, .seq = 99};
	struct sv_proto_request r;
	struct sv_proto_error e;
	struct sv_proto_iter it = {0};
	struct sv_proto_pair p;
	size_t i = 0;

	cr_assert_eq(sv_proto_encode_pairs(&mb, SV_PROTO_VERB_PAIR_BATCH, 5, in, 3, D, &cl), 0);
	cr_assert_eq(mb.n, 5);
	cr_assert_eq(mb.frames[3].len, 4u * D * 4);
	cr_assert_eq(req(mb.frames, mb.n, &r, &e), 0, "%s", e.msg);
	cr_assert_eq(r.n, 3);
	cr_assert(r.has_client);
	cr_assert_eq(r.client.seq, 99);
	cr_assert_eq(memcmp(r.client.id, "pub-1", 5), 0);
	while (sv_proto_next_pair(&r, &it, &p)) {
		cr_assert_eq(p.label, in[i].label);
		check_side(&p.a, in[i].a.id, in[i].a.vec);
		check_side(&p.b, in[i].b.id, in[i].b.vec);
		i++;
	}
	cr_assert_eq(i, 3);
}

Test(proto, pair_and_score_single)
{
	struct sv_proto_pair in = mkpair(1, NULL, va, NULL, vb);
	struct sv_proto_request r;
	struct sv_proto_error e;
	struct sv_proto_iter it = {0};
	struct sv_proto_pair p;

	cr_assert_eq(sv_proto_encode_pairs(&mb, SV_PROTO_VERB_PAIR, 1, &in, 1, D, NULL), 0);
	cr_assert_eq(mb.n, 4);
	cr_assert_eq(req(mb.frames, mb.n, &r, &e), 0, "%s", e.msg);
	cr_assert_not(r.has_client);
	cr_assert(sv_proto_next_pair(&r, &it, &p));
	check_side(&p.a, NULL, va);
	check_side(&p.b, NULL, vb);
	cr_assert_not(sv_proto_next_pair(&r, &it, &p));

	in.label = 0;
	cr_assert_eq(sv_proto_encode_pairs(&mb, SV_PROTO_VERB_SCORE, 2, &in, 1, D, NULL), 0);
	cr_assert_eq(req(mb.frames, mb.n, &r, &e), 0, "%s", e.msg);
	cr_assert_eq(r.hdr.verb, SV_PROTO_VERB_SCORE);
	/* single verbs carry one pair; score takes no client */
	struct sv_proto_pair two[2] = {in, in};
	struct sv_proto_client cl = {.id = "c", .id_len = 1};
	cr_assert_eq(sv_proto_encode_pairs(&mb, SV_PROTO_VERB_PAIR, 1, two, 2, D, NULL), -EINVAL);
	cr_assert_eq(sv_proto_encode_pairs(&mb, SV_PROTO_VERB_SCORE, 1, &in, 1, D, &cl), -EINVAL);
	cr_assert_eq(sv_proto_encode_pairs(&mb, SV_PROTO_VERB_SCORE_BATCH, 1, two, 2, D, NULL), 0);
	cr_assert_eq(req(mb.frames, mb.n, &r, &e), 0, "%s", e.msg);
	cr_assert_eq(r.n, 2);
}

Test(proto, topk_roundtrip)
{
	struct sv_proto_side q[2] = {{.id = "item9", .id_len = 5}, {.vec = vb}};
	struct sv_proto_request r;
	struct sv_proto_error e;
	struct sv_proto_iter it = {0};
	struct sv_proto_side s;

	cr_assert_eq(sv_proto_encode_topk(&mb, 3, q, 2, D, 10), 0);
	cr_assert_eq(req(mb.frames, mb.n, &r, &e), 0, "%s", e.msg);
	cr_assert_eq(r.k, 10);
	cr_assert(sv_proto_next_query(&r, &it, &s));
	check_side(&s, "item9", NULL);
	cr_assert(sv_proto_next_query(&r, &it, &s));
	check_side(&s, NULL, vb);
	cr_assert_not(sv_proto_next_query(&r, &it, &s));
}

Test(proto, admin_roundtrip_every_verb)
{
	int verbs[] = {SV_PROTO_VERB_STATUS,   SV_PROTO_VERB_CHECKPOINT, SV_PROTO_VERB_VERSIONS,
	               SV_PROTO_VERB_ROLLBACK, SV_PROTO_VERB_PAUSE,      SV_PROTO_VERB_RESUME,
	               SV_PROTO_VERB_FLUSH,    SV_PROTO_VERB_BACKUP,     SV_PROTO_VERB_RELOAD,
	               SV_PROTO_VERB_CONFIG};
	struct sv_proto_request r;
	struct sv_proto_error e;

	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		cr_assert_eq(sv_proto_encode_admin(&mb, verbs[i], i, 1234567890123ull, "/tmp/bk"),
		             0);
		cr_assert_eq(req(mb.frames, mb.n, &r, &e), 0, "%s: %s",
		             sv_proto_verb_name(verbs[i]), e.msg);
		cr_assert_eq(r.hdr.verb, verbs[i]);
		cr_assert_eq(r.hdr.request_id, i);
		if (verbs[i] == SV_PROTO_VERB_ROLLBACK)
			cr_assert_eq(r.version, 1234567890123ull);
		if (verbs[i] == SV_PROTO_VERB_BACKUP)
			cr_assert(r.text_len == 7 && memcmp(r.text, "/tmp/bk", 7) == 0);
	}
	cr_assert_eq(sv_proto_encode_admin(&mb, SV_PROTO_VERB_BACKUP, 1, 0, ""), -EINVAL);
	cr_assert_eq(sv_proto_encode_admin(&mb, SV_PROTO_VERB_PAIR, 1, 0, NULL), -EINVAL);
}

static void rep(struct sv_proto_reply *r)
{
	struct sv_proto_error e;
	int rc = sv_proto_decode_reply(mb.frames, mb.n, &lim, r, &e);
	cr_assert_eq(rc, 0, "%s", e.msg);
}

Test(proto, reply_generic_and_error)
{
	struct sv_proto_reply r;

	cr_assert_eq(sv_proto_encode_reply(&mb, SV_PROTO_VERB_ITEM_PUT, 8, 0, 0, "stored"), 0);
	rep(&r);
	cr_assert_eq(r.status, SV_PROTO_STATUS_OK);
	cr_assert(r.msg_len == 6 && memcmp(r.msg, "stored", 6) == 0);
	cr_assert_eq(sv_proto_encode_reply(&mb, SV_PROTO_VERB_PAIR_BATCH, 9,
	                                   SV_PROTO_STATUS_MALFORMED, SV_PROTO_REASON_WRONG_DIM,
	                                   "frame 3 (vectors): bad"),
	             0);
	rep(&r);
	cr_assert_eq(r.hdr.request_id, 9);
	cr_assert_eq(r.status, SV_PROTO_STATUS_MALFORMED);
	cr_assert_eq(r.reason, SV_PROTO_REASON_WRONG_DIM);
	cr_assert_eq(
	    sv_proto_encode_reply(&mb, SV_PROTO_VERB_SCORE, 9, SV_PROTO_STATUS_NOT_FOUND, 0, NULL),
	    0);
	rep(&r);
	cr_assert_eq(r.status, SV_PROTO_STATUS_NOT_FOUND);
	cr_assert_eq(r.msg_len, 0);
	/* no verb to echo: verb NONE, only with MALFORMED */
	cr_assert_eq(sv_proto_encode_reply(&mb, SV_PROTO_VERB_NONE, 0, SV_PROTO_STATUS_MALFORMED,
	                                   SV_PROTO_REASON_BAD_MAGIC, "frame 0 (header): magic"),
	             0);
	rep(&r);
	cr_assert_eq(r.hdr.verb, SV_PROTO_VERB_NONE);
	cr_assert_eq(r.reason, SV_PROTO_REASON_BAD_MAGIC);
	cr_assert_eq(sv_proto_encode_reply(&mb, SV_PROTO_VERB_NONE, 0, SV_PROTO_STATUS_OK, 0, NULL),
	             -EINVAL);
	/* a reason needs MALFORMED and MALFORMED needs a reason */
	cr_assert_eq(sv_proto_encode_reply(&mb, SV_PROTO_VERB_SCORE, 9, 0, 3, NULL), -EINVAL);
	cr_assert_eq(sv_proto_encode_reply(&mb, SV_PROTO_VERB_SCORE, 9, 1, 0, NULL), -EINVAL);
}

Test(proto, reply_vec_scores_topk_ack_admin)
{
	struct sv_proto_reply r;
	float out[D];
	struct sv_proto_score s[2] =
	    {
	        {.score = 0.9f,
	         .threshold = 0.5f,
	         .margin = 0.4f,
	         .match = 1,
	         .policy = 2,
	         .model_version = 77},
	        {.score = -0.1f,
	         .threshold = 0.5f,
	         .margin = -0.6f,
	         .status = SV_PROTO_STATUS_NOT_FOUND,
	         .model_version = 77},
	    },
	                      so;

	cr_assert_eq(sv_proto_encode_reply_vec(&mb, 1, NULL, va, D), 0);
	rep(&r);
	sv_proto_vec_copy(out, r.vec, D);
	cr_assert_eq(memcmp(out, va, sizeof(va)), 0);

	cr_assert_eq(sv_proto_encode_reply_scores(&mb, SV_PROTO_VERB_SCORE_BATCH, 2,
	                                          SV_PROTO_STATUS_PARTIAL, "1 unknown id", s, 2),
	             0);
	rep(&r);
	cr_assert_eq(r.n, 2);
	for (size_t i = 0; i < 2; i++) {
		cr_assert_eq(sv_proto_reply_score(&r, i, &so), 0);
		cr_assert(so.score == s[i].score && so.threshold == s[i].threshold &&
		          so.margin == s[i].margin && so.match == s[i].match &&
		          so.policy == s[i].policy && so.status == s[i].status &&
		          so.model_version == 77);
	}
	cr_assert_eq(sv_proto_reply_score(&r, 2, &so), SV_ERR_RANGE);

	struct sv_proto_topk_query q[3] = {{.model_version = 5, .n_hits = 2},
	                                   {.model_version = 5,
	                                    .status = SV_PROTO_STATUS_NOT_FOUND},
	                                   {.model_version = 5, .n_hits = 1}},
	                           qo;
	struct sv_proto_hit h[3] = {{"aa", 2, 0.9f}, {"b", 1, 0.8f}, {"ccc", 3, 0.7f}}, ho;
	struct sv_proto_iter it = {0};
	size_t qi, k = 0, want_q[3] = {0, 0, 2};
	cr_assert_eq(sv_proto_encode_reply_topk(&mb, 3, SV_PROTO_STATUS_PARTIAL, NULL, 2, q, 3, h),
	             0);
	rep(&r);
	cr_assert_eq(r.k, 2);
	cr_assert_eq(sv_proto_reply_topk_query(&r, 1, &qo), 0);
	cr_assert(qo.n_hits == 0 && qo.status == SV_PROTO_STATUS_NOT_FOUND);
	cr_assert_eq(sv_proto_reply_topk_query(&r, 2, &qo), 0);
	cr_assert(qo.model_version == 5 && qo.n_hits == 1);
	while (sv_proto_next_hit(&r, &it, &qi, &ho)) {
		cr_assert_eq(qi, want_q[k]);
		cr_assert_eq(ho.score, h[k].score);
		cr_assert(ho.id_len == h[k].id_len && memcmp(ho.id, h[k].id, ho.id_len) == 0);
		k++;
	}
	cr_assert_eq(k, 3);

	struct sv_proto_ack ack = {
	    .client_seq = 12, .n = 3, .n_committed = 1, .n_duplicate = 1, .n_rejected = 1};
	struct sv_proto_ack_row rows[3] = {{0, 0, 0},
	                                   {SV_PROTO_OUTCOME_DUPLICATE, 0,
	                                    SV_PROTO_STATUS_DUPLICATE},
	                                   {SV_PROTO_OUTCOME_REJECTED, SV_PROTO_REASON_WRONG_DIM,
	                                    SV_PROTO_STATUS_MALFORMED}},
	                        ro;
	cr_assert_eq(sv_proto_encode_reply_ack(&mb, SV_PROTO_VERB_PAIR_BATCH, 4,
	                                       SV_PROTO_STATUS_PARTIAL, NULL, &ack, rows),
	             0);
	rep(&r);
	cr_assert(r.has_ack && r.ack.client_seq == 12 && r.ack.n_rejected == 1);
	cr_assert_eq(sv_proto_reply_ack_row(&r, 2, &ro), 0);
	cr_assert(ro.outcome == 2 && ro.reason == SV_PROTO_REASON_WRONG_DIM && ro.status == 1);

	const char *json = "{\"versions\":[1,2]}";
	cr_assert_eq(sv_proto_encode_reply_admin(&mb, SV_PROTO_VERB_VERSIONS, 6, 0, "ok", json,
	                                         strlen(json)),
	             0);
	rep(&r);
	cr_assert(r.payload_len == strlen(json) && memcmp(r.payload, json, r.payload_len) == 0);
}

/* ---- malformed classes ---- */

static void enc_pair_batch(void)
{
	struct sv_proto_pair in[2] = {mkpair(1, NULL, va, NULL, vb),
	                              mkpair(0, "p", NULL, "q", NULL)};
	cr_assert_eq(sv_proto_encode_pairs(&mb, SV_PROTO_VERB_PAIR_BATCH, 1, in, 2, D, NULL), 0);
}

Test(proto, malformed_header_classes)
{
	struct copy c;
	unsigned char *h;

	enc_pair_batch();
	copy_of(&c, &mb);
	h = c.buf[0];
	c.n = 0;
	expect_reject(&c, SV_PROTO_REASON_NO_FRAMES, -1, "no frames");
	c.n = mb.n;
	c.f[0].len = 31;
	expect_reject(&c, SV_PROTO_REASON_TRUNCATED, 0, "frame 0 (header): 31 bytes, expected 32");
	c.f[0].len = 32;
	h[0] = 'X';
	expect_reject(&c, SV_PROTO_REASON_BAD_MAGIC, 0, "magic");
	h[0] = 'S';
	h[2] = 9;
	expect_reject(&c, SV_PROTO_REASON_BAD_VERSION, 0, "version 9");
	h[2] = 1;
	h[3] = 0x7e;
	expect_reject(&c, SV_PROTO_REASON_UNKNOWN_VERB, 0, "unknown verb 0x7e");
	h[3] = SV_PROTO_VERB_PAIR_BATCH;
	h[4] = 0x80;
	expect_reject(&c, SV_PROTO_REASON_BAD_FLAGS, 0, "flags");
	h[4] = SV_PROTO_FLAG_REPLY;
	expect_reject(&c, SV_PROTO_REASON_BAD_FLAGS, 0, "a reply where a request");
	h[4] = 0;
	h[30] = 1;
	expect_reject(&c, SV_PROTO_REASON_RESERVED, 0, "reserved");
	h[30] = 0;
	c.n = 3;
	expect_reject(&c, SV_PROTO_REASON_FRAME_COUNT, -1, "pair_batch: 3 frames, expected 4");
	c.n = 4;
	h[16] = 0;
	expect_reject(&c, SV_PROTO_REASON_BAD_COUNT, 0, "count 0");
	h[16] = 65;
	expect_reject(&c, SV_PROTO_REASON_TOO_MANY, 0, "count 65 exceeds limit 64");
	h[16] = 2;
	h[20] = D + 1;
	expect_reject(&c, SV_PROTO_REASON_WRONG_DIM, 0, "dim 9, expected 8 (model.d_in)");
	h[20] = D;
	lim.max_msg_bytes = 64;
	expect_reject(&c, SV_PROTO_REASON_OVERSIZE, -1, "limits.max_msg_bytes 64");
	copy_free(&c);
}

Test(proto, malformed_table_classes)
{
	struct copy c;
	unsigned char *t;

	enc_pair_batch();
	copy_of(&c, &mb);
	t = c.buf[1];
	c.f[1].len = 15;
	expect_reject(&c, SV_PROTO_REASON_TRUNCATED, 1,
	              "frame 1 (table): 15 bytes, expected 16 = 2 rows x 8");
	c.f[1].len = 16;
	t[8] = 2;
	expect_reject(&c, SV_PROTO_REASON_BAD_LABEL, 1, "row 1 label 2");
	t[8] = 0;
	t[9] = 0;
	expect_reject(&c, SV_PROTO_REASON_BAD_SIDE, 1, "row 1 side a flags 0x00");
	t[9] = 1;
	t[11] = 0;
	expect_reject(&c, SV_PROTO_REASON_EMPTY_ID, 1, "row 1 side a: empty id");
	t[11] = 1;
	lim.max_id_bytes = 0; /* built-in 255: nothing over it fits a u8 */
	t[15] = 1;
	expect_reject(&c, SV_PROTO_REASON_RESERVED, 1, "row 1 reserved");
	t[15] = 0;
	t[3] = 1; /* row 0 side a has no id flag */
	expect_reject(&c, SV_PROTO_REASON_BAD_SIDE, 1, "without the id flag");
	t[3] = 0;
	c.buf[2][0] = 0;
	expect_reject(&c, SV_PROTO_REASON_BAD_ID, 2, "NUL");
	c.buf[2][0] = 'p';
	c.f[2].len = 1;
	expect_reject(&c, SV_PROTO_REASON_TRUNCATED, 2, "frame 2 (ids): 1 bytes, expected 2");
	c.f[2].len = 2;
	c.f[3].len -= 4;
	expect_reject(&c, SV_PROTO_REASON_WRONG_DIM, 3,
	              "frame 3 (vectors): 60 bytes, expected 64 = 2 x 8 x float32");
	c.f[3].len += 4;
	float nan = NAN;
	memcpy(c.buf[3] + 4 * 11, &nan, 4);
	expect_reject(&c, SV_PROTO_REASON_NONFINITE, 3, "vector 1 element 3 is NaN");
	float inf = INFINITY;
	memcpy(c.buf[3] + 4 * 11, &inf, 4);
	expect_reject(&c, SV_PROTO_REASON_NONFINITE, 3, "is Inf");
	copy_free(&c);
}

Test(proto, malformed_item_ids_and_vector)
{
	struct copy c;
	char longid[300];

	memset(longid, 'x', sizeof(longid));
	cr_assert_eq(sv_proto_encode_item_put(&mb, 1, longid, 256, va, D), 0);
	copy_of(&c, &mb);
	expect_reject(&c, SV_PROTO_REASON_ID_TOO_LONG, 1, "id of 256 bytes, limit 255");
	c.f[1].len = 0;
	expect_reject(&c, SV_PROTO_REASON_EMPTY_ID, 1, "frame 1 (id): empty id");
	c.f[1].len = 4;
	lim.d_in = 784;
	c.buf[0][20] = 784 & 0xff;
	c.buf[0][21] = 784 >> 8;
	c.f[2].len = 3132;
	expect_reject(&c, SV_PROTO_REASON_WRONG_DIM, 2,
	              "frame 2 (vector): 3132 bytes, expected 3136 = 784 x float32");
	copy_free(&c);
	lim.max_id_bytes = 3;
	cr_assert_eq(sv_proto_encode_item(&mb, SV_PROTO_VERB_ITEM_GET, 1, "abcd", 4), 0);
	copy_of(&c, &mb);
	expect_reject(&c, SV_PROTO_REASON_ID_TOO_LONG, 1, "limits.max_id_bytes");
	copy_free(&c);
}

Test(proto, malformed_score_topk_admin_client)
{
	struct copy c;
	struct sv_proto_pair p = mkpair(0, "a", NULL, "b", NULL);
	struct sv_proto_side q = {.id = "a", .id_len = 1};
	struct sv_proto_client cl = {.id = "c", .id_len = 1, .seq = 1};

	cr_assert_eq(sv_proto_encode_pairs(&mb, SV_PROTO_VERB_SCORE, 1, &p, 1, 0, NULL), 0);
	copy_of(&c, &mb);
	c.buf[1][0] = 1;
	expect_reject(&c, SV_PROTO_REASON_BAD_LABEL, 1, "expected 0 in a score request");
	c.buf[1][0] = 0;
	c.buf[0][16] = 2;
	c.buf[1][0] = 0;
	expect_reject(&c, SV_PROTO_REASON_BAD_COUNT, 0, "count 2, score carries exactly 1");
	c.buf[0][16] = 1;
	c.buf[0][4] = SV_PROTO_FLAG_CLIENT;
	c.n = 5;
	c.f[4] = c.f[3];
	expect_reject(&c, SV_PROTO_REASON_BAD_FLAGS, 0, "CLIENT not valid for score");
	copy_free(&c);

	cr_assert_eq(sv_proto_encode_pairs(&mb, SV_PROTO_VERB_PAIR, 1, &p, 1, 0, &cl), 0);
	copy_of(&c, &mb);
	c.f[4].len = 8;
	expect_reject(&c, SV_PROTO_REASON_EMPTY_CLIENT, 4, "frame 4 (client): empty client id");
	c.f[4].len = 5;
	expect_reject(&c, SV_PROTO_REASON_TRUNCATED, 4, "(client)");
	copy_free(&c);

	cr_assert_eq(sv_proto_encode_topk(&mb, 1, &q, 1, 0, 101), 0);
	copy_of(&c, &mb);
	expect_reject(&c, SV_PROTO_REASON_BAD_K, 0, "k 101, expected 1..100");
	copy_free(&c);

	cr_assert_eq(sv_proto_encode_admin(&mb, SV_PROTO_VERB_ROLLBACK, 1, 5, NULL), 0);
	copy_of(&c, &mb);
	c.f[1].len = 7;
	expect_reject(&c, SV_PROTO_REASON_TRUNCATED, 1, "frame 1 (version): 7 bytes, expected 8");
	copy_free(&c);
	cr_assert_eq(sv_proto_encode_admin(&mb, SV_PROTO_VERB_BACKUP, 1, 0, "/a\x01"), 0);
	copy_of(&c, &mb);
	c.buf[1][2] = 0;
	expect_reject(&c, SV_PROTO_REASON_BAD_TEXT, 1, "frame 1 (path): contains a NUL");
	copy_free(&c);
}

Test(proto, null_arguments)
{
	struct sv_proto_request r;
	struct sv_proto_error e;
	struct sv_proto_frame f = {NULL, 0};

	cr_assert_eq(sv_proto_decode_request(&f, 1, NULL, NULL, &e), -EINVAL);
	cr_assert_eq(sv_proto_decode_request(&f, 1, NULL, &r, NULL), -EINVAL);
	cr_assert_eq(sv_proto_decode_request(&f, 1, NULL, &r, &e), SV_ERR_PROTO);
	cr_assert_eq(e.reason, SV_PROTO_REASON_TRUNCATED);
	cr_assert_eq(sv_proto_encode_item_put(&mb, 1, NULL, 0, va, D), -EINVAL);
	sv_proto_msgbuf_free(NULL);
}

Test(proto, reason_names_are_unique_words)
{
	for (int i = 0; i < SV_PROTO_REASON_COUNT_; i++) {
		const char *n = sv_proto_reason_name(i);
		cr_assert_not_null(n);
		cr_assert(strspn(n, "abcdefghijklmnopqrstuvwxyz_") == strlen(n), "%s", n);
		for (int j = 0; j < i; j++)
			cr_assert_str_neq(n, sv_proto_reason_name(j));
	}
	cr_assert_str_eq(sv_proto_reason_name(-1), "unknown");
	cr_assert_str_eq(sv_proto_reason_name(SV_PROTO_REASON_COUNT_), "unknown");
}

Test(proto, flatten_roundtrip)
{
	struct sv_proto_frame f[SV_PROTO_MAX_FRAMES];
	unsigned char buf[1024];
	size_t len;

	enc_pair_batch();
	len = sv_proto_msgbuf_flatten(&mb, buf, sizeof(buf));
	cr_assert_lt(len, sizeof(buf));
	cr_assert_eq(sv_proto_unflatten(buf, len, f, SV_PROTO_MAX_FRAMES), (long)mb.n);
	cr_assert_eq(sv_proto_unflatten(buf, len - 1, f, SV_PROTO_MAX_FRAMES), -1);
}

/* Every valid message, truncated at every frame length and with random byte
 * flips, must decode or fail with a reason: never crash, never succeed on a
 * truncation. */
Test(proto, random_truncation_never_crashes)
{
	struct sv_proto_pair in[2] = {mkpair(1, "id1", va, NULL, vb),
	                              mkpair(0, "p", NULL, "q", va)};
	struct sv_proto_client cl = {.id = "c", .id_len = 1, .seq = 3};
	struct sv_proto_side q = {.vec = va};
	unsigned seed = 12345;

	for (int kind = 0; kind < 5; kind++) {
		switch (kind) {
		case 0:
			sv_proto_encode_pairs(&mb, SV_PROTO_VERB_PAIR_BATCH, 1, in, 2, D, &cl);
			break;
		case 1:
			sv_proto_encode_item_put(&mb, 1, "x", 1, va, D);
			break;
		case 2:
			sv_proto_encode_topk(&mb, 1, &q, 1, D, 5);
			break;
		case 3:
			sv_proto_encode_admin(&mb, SV_PROTO_VERB_ROLLBACK, 1, 2, NULL);
			break;
		default:
			sv_proto_encode_pairs(&mb, SV_PROTO_VERB_SCORE, 1, in, 1, D, NULL);
			break;
		}
		for (size_t fi = 0; fi < mb.n; fi++) {
			for (size_t cut = 0; cut < mb.frames[fi].len; cut++) {
				struct copy c;
				struct sv_proto_request r;
				struct sv_proto_error e;
				copy_of(&c, &mb);
				c.f[fi].len = cut;
				int rc = req(c.f, c.n, &r, &e);
				cr_assert(rc == SV_ERR_PROTO || rc == SV_ERR_PROTO_VERB,
				          "kind %d frame %zu cut %zu decoded", kind, fi, cut);
				cr_assert_neq(e.reason, SV_PROTO_REASON_NONE);
				cr_assert_gt(strlen(e.msg), 0);
				copy_free(&c);
			}
		}
		for (int trial = 0; trial < 2000; trial++) {
			struct copy c;
			struct sv_proto_request r;
			struct sv_proto_error e;
			copy_of(&c, &mb);
			size_t fi = (size_t)rand_r(&seed) % c.n;
			if (c.f[fi].len)
				c.buf[fi][(size_t)rand_r(&seed) % c.f[fi].len] ^=
				    (unsigned char)(1 + rand_r(&seed) % 255);
			if (rand_r(&seed) % 4 == 0)
				c.n = (size_t)rand_r(&seed) % (c.n + 1);
			int rc = req(c.f, c.n, &r, &e);
			if (rc) {
				cr_assert_neq(e.reason, SV_PROTO_REASON_NONE);
			} else {
				struct sv_proto_iter it = {0};
				struct sv_proto_pair p;
				struct sv_proto_side s;
				while (sv_proto_next_pair(&r, &it, &p))
					;
				while (sv_proto_next_query(&r, &it, &s))
					;
			}
			copy_free(&c);
		}
	}
}

static void expect_reply_reject(const struct copy *c, int reason, int frame, const char *needle)
{
	struct sv_proto_reply r;
	struct sv_proto_error e;
	int rc = sv_proto_decode_reply(c->f, c->n, &lim, &r, &e);
	cr_assert_eq(rc, SV_ERR_PROTO, "rc %d (%s)", rc, e.msg);
	cr_assert_eq(e.reason, reason, "reason %s, want %s: %s", sv_proto_reason_name(e.reason),
	             sv_proto_reason_name(reason), e.msg);
	cr_assert_eq(e.frame, frame, "frame %d want %d: %s", e.frame, frame, e.msg);
	cr_assert(strstr(e.msg, needle), "message '%s' lacks '%s'", e.msg, needle);
}

Test(proto, frame_size_classes)
{
	struct copy c;

	enc_pair_batch();
	copy_of(&c, &mb);
	c.f[0].len = 33;
	expect_reject(&c, SV_PROTO_REASON_FRAME_SIZE, 0, "frame 0 (header): 33 bytes, expected 32");
	c.f[0].len = 32;
	c.f[1].len = 17;
	expect_reject(&c, SV_PROTO_REASON_FRAME_SIZE, 1, "frame 1 (table): 17 bytes, expected 16");
	copy_free(&c);
	cr_assert_eq(sv_proto_encode_admin(&mb, SV_PROTO_VERB_ROLLBACK, 1, 5, NULL), 0);
	copy_of(&c, &mb);
	c.buf[0][20] = 1;
	expect_reject(&c, SV_PROTO_REASON_RESERVED, 0, "count/dim/arg must be 0 for rollback");
	copy_free(&c);
}

Test(proto, malformed_replies)
{
	struct copy c;
	struct sv_proto_score s = {.score = 0.5f};

	/* a request is not a reply */
	cr_assert_eq(sv_proto_encode_admin(&mb, SV_PROTO_VERB_STATUS, 1, 0, NULL), 0);
	copy_of(&c, &mb);
	expect_reply_reject(&c, SV_PROTO_REASON_BAD_FLAGS, 0, "a request where a reply");
	copy_free(&c);

	cr_assert_eq(sv_proto_encode_reply_scores(&mb, SV_PROTO_VERB_SCORE, 1, 0, "", &s, 1), 0);
	copy_of(&c, &mb);
	c.buf[2][12] = 2; /* match byte */
	expect_reply_reject(&c, SV_PROTO_REASON_BAD_STATUS, 2, "(scores): row 0 match 2");
	c.buf[2][12] = 1;
	c.buf[0][6] = 99; /* status */
	expect_reply_reject(&c, SV_PROTO_REASON_BAD_STATUS, 0, "status 99");
	c.buf[0][6] = SV_PROTO_STATUS_NOT_FOUND;
	expect_reply_reject(&c, SV_PROTO_REASON_FRAME_COUNT, -1,
	                    "error reply: 3 frames, expected 2");
	c.buf[0][6] = 0;
	c.buf[0][28] = 3; /* a reason without MALFORMED */
	expect_reply_reject(&c, SV_PROTO_REASON_BAD_STATUS, 0, "reason 3 with status ok");
	c.buf[0][28] = 0;
	c.f[2].len = 23;
	expect_reply_reject(&c, SV_PROTO_REASON_TRUNCATED, 2, "frame 2 (scores): 23 bytes");
	c.f[2].len = 24;
	c.n = 1;
	expect_reply_reject(&c, SV_PROTO_REASON_FRAME_COUNT, -1, "expected at least 2");
	copy_free(&c);

	struct sv_proto_ack ack = {.n = 1, .n_committed = 1};
	struct sv_proto_ack_row row = {0, 0, 0};
	cr_assert_eq(sv_proto_encode_reply_ack(&mb, SV_PROTO_VERB_PAIR, 1, 0, NULL, &ack, &row), 0);
	copy_of(&c, &mb);
	c.buf[2][16] = 1; /* duplicate count: sums no longer match */
	expect_reply_reject(&c, SV_PROTO_REASON_BAD_COUNT, 2, "(ack): n 1");
	copy_free(&c);

	struct sv_proto_topk_query q = {.n_hits = 1};
	struct sv_proto_hit h = {"a", 1, 0.5f};
	cr_assert_eq(sv_proto_encode_reply_topk(&mb, 1, 0, NULL, 1, &q, 1, &h), 0);
	copy_of(&c, &mb);
	c.buf[2][8] = 2; /* 2 hits with k 1 */
	expect_reply_reject(&c, SV_PROTO_REASON_BAD_STATUS, 2, "2 hits (k 1)");
	c.buf[2][8] = 1;
	c.buf[3][4] = 0;
	expect_reply_reject(&c, SV_PROTO_REASON_EMPTY_ID, 3, "hit 0 has an empty id");
	copy_free(&c);
}

Test(proto, model_get_put_roundtrip_and_malformed)
{
	float W[(D + 1) * 3] = {0}; /* room for the d_in + 1 encode below */
	struct sv_proto_request r;
	struct sv_proto_reply p;
	struct sv_proto_error e;
	struct copy c;
	float back[D * 3];
	const char *json = "{\"d_in\":8}";

	for (int i = 0; i < D * 3; i++)
		W[i] = (float)i * 0.125f - 1.0f;
	/* MODEL_PUT: count d_out, dim d_in, frame 1 = W */
	cr_assert_eq(sv_proto_encode_model_put(&mb, 9, W, D, 3), 0);
	cr_assert_eq(req(mb.frames, mb.n, &r, &e), 0, "%s", e.msg);
	cr_assert(r.hdr.verb == SV_PROTO_VERB_MODEL_PUT && r.n == 3 && r.dim == D);
	sv_proto_vec_copy(back, r.w, D * 3);
	cr_assert_arr_eq(back, W, sizeof(back));
	copy_of(&c, &mb);
	c.f[1].len -= 4;
	expect_reject(&c, SV_PROTO_REASON_WRONG_DIM, 1, "(W)");
	c.f[1].len += 4;
	memcpy(c.buf[1] + 4, &(float){NAN}, 4);
	expect_reject(&c, SV_PROTO_REASON_NONFINITE, 1, "NaN");
	copy_free(&c);
	cr_assert_eq(sv_proto_encode_model_put(&mb, 9, W, D + 1, 3), 0);
	copy_of(&c, &mb);
	expect_reject(&c, SV_PROTO_REASON_WRONG_DIM, 0, "model.d_in");
	copy_free(&c);
	cr_assert_eq(sv_proto_encode_admin(&mb, SV_PROTO_VERB_MODEL_PUT, 1, 0, NULL), -EINVAL);
	cr_assert_eq(sv_proto_encode_model_put(&mb, 1, NULL, D, 3), -EINVAL);
	/* MODEL_GET: request without frames; reply JSON + W */
	cr_assert_eq(sv_proto_encode_admin(&mb, SV_PROTO_VERB_MODEL_GET, 4, 0, NULL), 0);
	cr_assert_eq(req(mb.frames, mb.n, &r, &e), 0, "%s", e.msg);
	cr_assert_str_eq(sv_proto_verb_name(SV_PROTO_VERB_MODEL_GET), "model_get");
	cr_assert_eq(sv_proto_encode_reply_model(&mb, 4, NULL, json, strlen(json), W, D, 3), 0);
	rep(&p);
	cr_assert(p.n == 3 && p.dim == D && p.payload_len == strlen(json));
	sv_proto_vec_copy(back, p.vec, D * 3);
	cr_assert_arr_eq(back, W, sizeof(back));
	cr_assert_eq(sv_proto_encode_reply_admin(&mb, SV_PROTO_VERB_MODEL_GET, 4,
	                                         SV_PROTO_STATUS_OK, NULL, json, strlen(json)),
	             -EINVAL);
	/* a MODEL_GET reply without W is malformed */
	cr_assert_eq(sv_proto_encode_reply_model(&mb, 4, NULL, json, strlen(json), W, D, 3), 0);
	copy_of(&c, &mb);
	cr_assert_eq(sv_proto_decode_reply(c.f, 3, &lim, &p, &e), SV_ERR_PROTO);
	cr_assert_eq(e.reason, SV_PROTO_REASON_FRAME_COUNT, "%s", e.msg);
	copy_free(&c);
}

/* A long vector frame (past the block-wise fast path of the finiteness
 * check): extreme finite values pass; a NaN deep in a block and an Inf in
 * the tail are each found at the right vector and element. */
Test(proto, nonfinite_found_in_long_vector_frames)
{
	enum { DIM = 100, N = 3 };
	static float v[2 * N][DIM];
	struct sv_proto_pair in[N];
	struct sv_proto_request r;
	struct sv_proto_error e;
	float *f;

	for (int i = 0; i < 2 * N; i++)
		for (int j = 0; j < DIM; j++)
			v[i][j] = (j % 4 == 0) ? 131071.99f : (j % 4 == 1) ? -0.0f
			          : (j % 4 == 2) ? 1e-45f : -1.0f;
	for (int i = 0; i < N; i++)
		in[i] = mkpair(i & 1, NULL, v[2 * i], NULL, v[2 * i + 1]);
	struct sv_proto_limits wide = lim;

	wide.d_in = DIM;
	cr_assert_eq(sv_proto_encode_pairs(&mb, SV_PROTO_VERB_PAIR_BATCH, 1, in, N, DIM, NULL), 0);
	cr_assert_eq(sv_proto_decode_request(mb.frames, mb.n, &wide, &r, &e), 0, "%s", e.msg);

	f = (float *)mb.frames[3].data; /* 2N vectors, row a then b per pair */
	f[5 * DIM + 17] = NAN;          /* flat index 517: inside the 9th block of 64 */
	cr_assert_lt(sv_proto_decode_request(mb.frames, mb.n, &wide, &r, &e), 0);
	cr_assert_eq(e.reason, SV_PROTO_REASON_NONFINITE);
	cr_assert(strstr(e.msg, "vector 5 element 17 is NaN"), "%s", e.msg);
	f[5 * DIM + 17] = 0.0f;
	f[2 * N * DIM - 1] = -INFINITY; /* the very last element, in the tail */
	cr_assert_lt(sv_proto_decode_request(mb.frames, mb.n, &wide, &r, &e), 0);
	cr_assert(strstr(e.msg, "vector 5 element 99 is Inf"), "%s", e.msg);
	/* finite but huge: a projection of it would overflow float32 */
	f[2 * N * DIM - 1] = 3e38f;
	cr_assert_lt(sv_proto_decode_request(mb.frames, mb.n, &wide, &r, &e), 0);
	cr_assert_eq(e.reason, SV_PROTO_REASON_TOO_LARGE);
	cr_assert(strstr(e.msg, "vector 5 element 99 is 3e+38"), "%s", e.msg);
	f[2 * N * DIM - 1] = -131072.0f; /* the bound itself is out */
	cr_assert_lt(sv_proto_decode_request(mb.frames, mb.n, &wide, &r, &e), 0);
	cr_assert_eq(e.reason, SV_PROTO_REASON_TOO_LARGE);
	f[2 * N * DIM - 1] = -131071.99f;
	cr_assert_eq(sv_proto_decode_request(mb.frames, mb.n, &wide, &r, &e), 0, "%s", e.msg);
	cr_assert_str_eq(sv_proto_reason_name(SV_PROTO_REASON_TOO_LARGE), "too_large");
}

Test(proto, client_seq_that_wraps_is_malformed)
{
	struct sv_proto_pair in[2];
	struct sv_proto_client cl = {.id = "c", .id_len = 1, .seq = UINT64_MAX};
	struct sv_proto_request r;
	struct sv_proto_error e;

	in[0] = mkpair(1, "a", NULL, "b", NULL);
	in[1] = mkpair(0, "a", NULL, "c", NULL);
	cr_assert_eq(sv_proto_encode_pairs(&mb, SV_PROTO_VERB_PAIR_BATCH, 1, in, 2, 0, &cl), 0);
	cr_assert_lt(sv_proto_decode_request(mb.frames, mb.n, &lim, &r, &e), 0);
	cr_assert_eq(e.reason, SV_PROTO_REASON_SEQ_WRAP);
	cr_assert(strstr(e.msg, "wraps"), "%s", e.msg);
	/* the last seq itself is fine for one row, and for two rows ending at it */
	cl.seq = UINT64_MAX - 1;
	cr_assert_eq(sv_proto_encode_pairs(&mb, SV_PROTO_VERB_PAIR_BATCH, 1, in, 2, 0, &cl), 0);
	cr_assert_eq(sv_proto_decode_request(mb.frames, mb.n, &lim, &r, &e), 0, "%s", e.msg);
}

/* Flag POS: a query's least position, a reply's position; the last frame. */
Test(proto, position_frame_on_queries_and_replies)
{
	struct sv_proto_side q[1] = {{.id = "item9", .id_len = 5}};
	struct sv_proto_pair in = mkpair(0, NULL, va, NULL, vb);
	struct sv_proto_score sc = {.score = 0.5f, .model_version = 12};
	struct sv_proto_request r;
	struct sv_proto_reply rr;
	struct sv_proto_error e;
	struct copy c;

	cr_assert_eq(sv_proto_encode_topk(&mb, 3, q, 1, D, 10), 0);
	cr_assert_eq(sv_proto_add_pos(&mb, 12, 345), 0);
	cr_assert_eq(mb.n, 5);
	cr_assert_eq(req(mb.frames, mb.n, &r, &e), 0, "%s", e.msg);
	cr_assert(r.has_pos && r.pos_version == 12 && r.pos_seq == 345);
	cr_assert_eq(r.k, 10);
	copy_of(&c, &mb);
	c.f[4].len = 15;
	expect_reject(&c, SV_PROTO_REASON_FRAME_SIZE, 4, "(position)");
	copy_free(&c);

	cr_assert_eq(sv_proto_encode_pairs(&mb, SV_PROTO_VERB_SCORE, 2, &in, 1, D, NULL), 0);
	cr_assert_eq(req(mb.frames, mb.n, &r, &e), 0, "%s", e.msg);
	cr_assert_not(r.has_pos);
	cr_assert_eq(sv_proto_add_pos(&mb, 0, 7), 0);
	cr_assert_eq(req(mb.frames, mb.n, &r, &e), 0, "%s", e.msg);
	cr_assert(r.has_pos && r.pos_version == 0 && r.pos_seq == 7);

	/* not on an ingest request, nor on an admin verb */
	in.label = 1;
	cr_assert_eq(sv_proto_encode_pairs(&mb, SV_PROTO_VERB_PAIR, 2, &in, 1, D, NULL), 0);
	cr_assert_eq(sv_proto_add_pos(&mb, 0, 7), -EINVAL);
	copy_of(&c, &mb);
	c.buf[0][4] |= SV_PROTO_FLAG_POS;
	expect_reject(&c, SV_PROTO_REASON_BAD_FLAGS, 0, "flag POS not valid for pair");
	copy_free(&c);

	/* replies: scores and an ingest ack carry it */
	cr_assert_eq(sv_proto_encode_reply_scores(&mb, SV_PROTO_VERB_SCORE, 2, SV_PROTO_STATUS_OK,
	                                          NULL, &sc, 1),
	             0);
	cr_assert_eq(sv_proto_add_pos(&mb, 12, 99), 0);
	rep(&rr);
	cr_assert(rr.has_pos && rr.pos_version == 12 && rr.pos_seq == 99);
	cr_assert_eq(rr.n, 1);
	cr_assert_eq(sv_proto_encode_reply(&mb, SV_PROTO_VERB_ITEM_PUT, 4, SV_PROTO_STATUS_OK, 0,
	                                   NULL),
	             0);
	cr_assert_eq(sv_proto_add_pos(&mb, 0, 1234), 0);
	rep(&rr);
	cr_assert(rr.has_pos && rr.pos_seq == 1234);
	cr_assert_eq(sv_proto_encode_reply(&mb, SV_PROTO_VERB_TOPK, 4, SV_PROTO_STATUS_BEHIND, 0,
	                                   "behind"),
	             0);
	cr_assert_eq(sv_proto_add_pos(&mb, 3, 4), 0);
	rep(&rr);
	cr_assert(rr.has_pos && rr.status == SV_PROTO_STATUS_BEHIND);
	cr_assert_str_eq(sv_proto_status_name(SV_PROTO_STATUS_BEHIND), "behind");
}
