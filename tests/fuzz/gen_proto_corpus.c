/* gen_proto_corpus.c - writes the seed corpus of fuzz_proto: one flattened
 * valid message per kind (requests and replies) into the directory given as
 * argv[1].  Run by hand after a protocol change:
 *   build/tests/fuzz/gen_proto_corpus tests/fuzz/corpus/proto */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sv/proto.h"

#define D 8

static unsigned char out[1 << 16];

static void save(const char *dir, const char *name, const struct sv_proto_msgbuf *mb)
{
	char path[4096];
	size_t len = sv_proto_msgbuf_flatten(mb, out, sizeof(out));
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fp = fopen(path, "wb");
	if (!fp || fwrite(out, 1, len, fp) != len) {
		perror(path);
		exit(1);
	}
	fclose(fp);
}

int main(int argc, char **argv)
{
	struct sv_proto_msgbuf mb;
	float va[D], vb[D];
	const char *dir = argc > 1 ? argv[1] : ".";

	for (int i = 0; i < D; i++) {
		va[i] = (float)i / D;
		vb[i] = 1.0f - (float)i / D;
	}
	struct sv_proto_pair pairs[3] = {
	    {.label = 1, .a = {.vec = va}, .b = {.vec = vb}},
	    {.label = 0, .a = {.id = "left", .id_len = 4}, .b = {.id = "r", .id_len = 1}},
	    {.label = 1, .a = {.id = "up", .id_len = 2, .vec = vb}, .b = {.id = "r", .id_len = 1}},
	};
	struct sv_proto_client cl = {.id = "publisher", .id_len = 9, .seq = 17};
	struct sv_proto_side q[2] = {{.id = "left", .id_len = 4}, {.vec = va}};
	struct sv_proto_score sc[2] = {
	    {.score = 0.8f, .threshold = 0.5f, .margin = 0.3f, .match = 1, .model_version = 3},
	    {.status = 2}};
	struct sv_proto_topk_query tq[2] = {{.model_version = 3, .n_hits = 2}, {.n_hits = 1}};
	struct sv_proto_hit hits[3] = {{"a", 1, 0.9f}, {"bb", 2, 0.5f}, {"c", 1, 0.1f}};
	struct sv_proto_ack ack = {.client_seq = 17, .n = 3, .n_committed = 2, .n_rejected = 1};
	struct sv_proto_ack_row ar[3] = {{0, 0, 0}, {0, 0, 0}, {2, 10, 1}};

	sv_proto_msgbuf_init(&mb);
	sv_proto_encode_item_put(&mb, 1, "item-1", 6, va, D);
	save(dir, "item_put", &mb);
	sv_proto_encode_item(&mb, 0x02, 2, "item-1", 6);
	save(dir, "item_del", &mb);
	sv_proto_encode_item(&mb, 0x03, 3, "item-1", 6);
	save(dir, "item_get", &mb);
	sv_proto_encode_pairs(&mb, SV_PROTO_VERB_PAIR, 4, pairs, 1, D, NULL);
	save(dir, "pair", &mb);
	sv_proto_encode_pairs(&mb, SV_PROTO_VERB_PAIR, 5, pairs + 2, 1, D, &cl);
	save(dir, "pair_client", &mb);
	sv_proto_encode_pairs(&mb, SV_PROTO_VERB_PAIR_BATCH, 6, pairs, 3, D, &cl);
	save(dir, "pair_batch", &mb);
	sv_proto_encode_pairs(&mb, SV_PROTO_VERB_SCORE, 7, pairs + 1, 1, D, NULL);
	save(dir, "score", &mb);
	pairs[0].label = pairs[2].label = 0;
	sv_proto_encode_pairs(&mb, SV_PROTO_VERB_SCORE_BATCH, 8, pairs, 3, D, NULL);
	save(dir, "score_batch", &mb);
	sv_proto_encode_topk(&mb, 9, q, 2, D, 5);
	save(dir, "topk", &mb);
	for (int v = SV_PROTO_VERB_STATUS; v <= SV_PROTO_VERB_CONFIG; v++) {
		char name[32];
		sv_proto_encode_admin(&mb, v, 10, 42, "/var/backup/sv");
		snprintf(name, sizeof(name), "admin_%s", sv_proto_verb_name(v));
		save(dir, name, &mb);
	}
	sv_proto_encode_admin(&mb, SV_PROTO_VERB_MODEL_GET, 11, 0, NULL);
	save(dir, "admin_model_get", &mb);
	{
		float w2[2 * D]; /* a D x 2 W: va and vb interleaved */
		for (int i = 0; i < D; i++) {
			w2[2 * i] = va[i];
			w2[2 * i + 1] = vb[i];
		}
		sv_proto_encode_model_put(&mb, 12, w2, D, 2);
		save(dir, "admin_model_put", &mb);
		sv_proto_encode_reply_model(&mb, 11, NULL, "{\"d_in\":8,\"d_out\":2}", 21, w2, D, 2);
		save(dir, "reply_model_get", &mb);
	}
	sv_proto_encode_reply(&mb, SV_PROTO_VERB_ITEM_PUT, 1, 0, 0, "stored");
	save(dir, "reply_ok", &mb);
	sv_proto_encode_reply(&mb, SV_PROTO_VERB_PAIR, 4, SV_PROTO_STATUS_MALFORMED,
	                      SV_PROTO_REASON_WRONG_DIM, "frame 3 (vectors): 4 bytes, expected 64");
	save(dir, "reply_malformed", &mb);
	sv_proto_encode_reply(&mb, SV_PROTO_VERB_NONE, 0, SV_PROTO_STATUS_MALFORMED,
	                      SV_PROTO_REASON_BAD_MAGIC, "frame 0 (header): bad magic");
	save(dir, "reply_malformed_noverb", &mb);
	sv_proto_encode_reply_vec(&mb, 3, NULL, va, D);
	save(dir, "reply_item_get", &mb);
	sv_proto_encode_reply_scores(&mb, SV_PROTO_VERB_SCORE_BATCH, 8, SV_PROTO_STATUS_PARTIAL,
	                             "1 unknown id", sc, 2);
	save(dir, "reply_scores", &mb);
	sv_proto_encode_reply_topk(&mb, 9, 0, NULL, 5, tq, 2, hits);
	save(dir, "reply_topk", &mb);
	sv_proto_encode_reply_ack(&mb, SV_PROTO_VERB_PAIR_BATCH, 6, SV_PROTO_STATUS_PARTIAL, NULL,
	                          &ack, ar);
	save(dir, "reply_ack", &mb);
	sv_proto_encode_reply_admin(&mb, SV_PROTO_VERB_STATUS, 10, 0, "ok", "{\"steps\":1}", 11);
	save(dir, "reply_status", &mb);
	sv_proto_msgbuf_free(&mb);
	return 0;
}
