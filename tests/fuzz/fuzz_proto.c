/* fuzz_proto.c - fuzz target for the wire decoders (sv/proto.h).
 *
 * Input: a flattened multipart message (sv_proto_unflatten: u32 frame count,
 * then u32 length + bytes per frame); input that is not a flattening is
 * tried as a single frame.  Each message is decoded as a request and as a
 * reply, with and without a fixed d_in; on success every row is walked, on
 * failure the error must carry a reason and a message.  Any violation aborts.
 *
 * Built with -DSV_LIBFUZZER and -fsanitize=fuzzer it is a libFuzzer target;
 * otherwise replay.c's main() replays the files and directories named on
 * the command line (the 'fuzz' test suite replays tests/fuzz/corpus/proto). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sv/error.h"
#include "sv/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_err(int rc, const struct sv_proto_error *e)
{
	if (rc != SV_ERR_PROTO && rc != SV_ERR_PROTO_VERB)
		abort();
	if (e->reason == SV_PROTO_REASON_NONE || e->msg[0] == 0)
		abort();
	if (strcmp(sv_proto_reason_name(e->reason), "unknown") == 0)
		abort();
}

static float sink;

static void touch_vec(const void *v, uint32_t dim)
{
	float buf[64];
	for (uint32_t i = 0; i < dim; i += 64) {
		uint32_t n = dim - i < 64 ? dim - i : 64;
		sv_proto_vec_copy(buf, (const float *)v + i, n);
		sink += buf[0];
	}
}

static void one(const struct sv_proto_frame *f, size_t n, const struct sv_proto_limits *lim)
{
	struct sv_proto_request r;
	struct sv_proto_reply p;
	struct sv_proto_error e;
	struct sv_proto_iter it = {0};
	int rc;

	rc = sv_proto_decode_request(f, n, lim, &r, &e);
	if (rc) {
		check_err(rc, &e);
	} else {
		struct sv_proto_pair pr;
		struct sv_proto_side s;
		size_t rows = 0;
		while (sv_proto_next_pair(&r, &it, &pr)) {
			if (pr.a.vec)
				touch_vec(pr.a.vec, r.dim);
			if (pr.b.vec)
				touch_vec(pr.b.vec, r.dim);
			if (pr.a.id)
				sink += (float)(unsigned char)pr.a.id[pr.a.id_len - 1];
			rows++;
		}
		while (sv_proto_next_query(&r, &it, &s)) {
			if (s.vec)
				touch_vec(s.vec, r.dim);
			rows++;
		}
		if (rows != 0 && rows != r.n)
			abort();
		if (r.item.vec)
			touch_vec(r.item.vec, r.dim);
		if (r.w) /* MODEL_PUT: d_in x d_out */
			touch_vec(r.w, r.dim * (uint32_t)r.n);
	}
	rc = sv_proto_decode_reply(f, n, lim, &p, &e);
	if (rc) {
		check_err(rc, &e);
	} else {
		struct sv_proto_score s;
		struct sv_proto_topk_query q;
		struct sv_proto_ack_row a;
		struct sv_proto_hit h;
		size_t qi, hits = 0;
		for (size_t i = 0; i < p.n; i++) {
			if (sv_proto_reply_score(&p, i, &s) == 0)
				sink += s.score;
			if (sv_proto_reply_topk_query(&p, i, &q) == 0)
				sink += (float)q.n_hits;
			if (sv_proto_reply_ack_row(&p, i, &a) == 0)
				sink += a.outcome;
		}
		memset(&it, 0, sizeof(it));
		while (sv_proto_next_hit(&p, &it, &qi, &h)) {
			if (qi >= p.n || h.id_len == 0)
				abort();
			sink += (float)(unsigned char)h.id[h.id_len - 1];
			hits++;
		}
		if (hits != p.n_hits)
			abort();
		if (p.vec)
			touch_vec(p.vec, p.dim);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sv_proto_frame f[SV_PROTO_MAX_FRAMES];
	struct sv_proto_limits any = {0};
	struct sv_proto_limits fixed = {
	    .d_in = 8, .max_pairs = 16, .max_id_bytes = 16, .max_k = 8, .max_msg_bytes = 4096};
	long n = sv_proto_unflatten(data, size, f, SV_PROTO_MAX_FRAMES);

	if (n < 0) {
		f[0].data = data;
		f[0].len = size;
		n = 1;
	}
	one(f, (size_t)n, &any);
	one(f, (size_t)n, &fixed);
	one(f, (size_t)n, NULL);
	return 0;
}
