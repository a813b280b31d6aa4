/* c_client.c - sv_test_client STATE_DIR D_IN: a C publisher and query client
 * for the daemon tests, built on libsimverify's codec (sv/proto.h).
 *
 * Stores 10 items (acked), publishes 20 inline-vector pairs fire-and-forget
 * and 20 id pairs acked with a client id, then scores one pair.  Exits 0
 * when every reply is what the protocol promises; prints why otherwise.
 * Used by test_daemon.py (test_c_client), which checks the daemon's side.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "sv/proto.h"

#define MAXF 8

static int fail(const char *what)
{
	fprintf(stderr, "sv_test_client: %s\n", what);
	return 1;
}

static int send_mb(void *s, const struct sv_proto_msgbuf *mb)
{
	for (size_t i = 0; i < mb->n; i++)
		if (zmq_send(s, mb->frames[i].data, mb->frames[i].len,
		             i + 1 < mb->n ? ZMQ_SNDMORE : 0) < 0)
			return -1;
	return 0;
}

/* Receive one reply into msgs and decode it. */
static int recv_reply(void *s, zmq_msg_t *msgs, int *n, struct sv_proto_reply *r)
{
	struct sv_proto_frame fr[MAXF];
	struct sv_proto_error err;
	int more = 1;

	*n = 0;
	while (more && *n < MAXF) {
		zmq_msg_init(&msgs[*n]);
		if (zmq_msg_recv(&msgs[*n], s, 0) < 0)
			return -1;
		more = zmq_msg_more(&msgs[*n]);
		fr[*n].data = zmq_msg_data(&msgs[*n]);
		fr[*n].len = zmq_msg_size(&msgs[*n]);
		(*n)++;
	}
	if (sv_proto_decode_reply(fr, (size_t)*n, NULL, r, &err) < 0) {
		fprintf(stderr, "sv_test_client: bad reply: %s\n", err.msg);
		return -1;
	}
	return 0;
}

static void close_msgs(zmq_msg_t *msgs, int n)
{
	for (int i = 0; i < n; i++)
		zmq_msg_close(&msgs[i]);
}

static void *sock(void *ctx, int type, const char *dir, const char *name)
{
	char ep[1100];
	int timeout = 10000, linger = 5000;
	void *s = zmq_socket(ctx, type);

	snprintf(ep, sizeof(ep), "ipc://%s/%s", dir, name);
	zmq_setsockopt(s, ZMQ_RCVTIMEO, &timeout, sizeof(timeout));
	zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger));
	if (zmq_connect(s, ep) < 0)
		return NULL;
	return s;
}

int main(int argc, char **argv)
{
	struct sv_proto_msgbuf mb;
	struct sv_proto_reply r;
	struct sv_proto_pair pr[20];
	struct sv_proto_client cl = {"cclient", 7, 1};
	zmq_msg_t msgs[MAXF];
	char ids[10][8];
	float *V;
	void *ctx, *acked, *push, *query;
	uint32_t d;
	int n, rc = 0;

	if (argc != 3)
		return fail("usage: sv_test_client STATE_DIR D_IN");
	d = (uint32_t)atoi(argv[2]);
	V = malloc(60 * (size_t)d * sizeof(float));
	if (V == NULL || d == 0)
		return fail("bad D_IN");
	srand(3);
	for (size_t i = 0; i < 60 * (size_t)d; i++)
		V[i] = (float)rand() / RAND_MAX - 0.5f;
	ctx = zmq_ctx_new();
	acked = sock(ctx, ZMQ_DEALER, argv[1], "ingest-acked.sock");
	push = sock(ctx, ZMQ_PUSH, argv[1], "ingest.sock");
	query = sock(ctx, ZMQ_DEALER, argv[1], "query.sock");
	if (!acked || !push || !query)
		return fail("cannot connect");
	sv_proto_msgbuf_init(&mb);

	/* items, acked */
	for (int i = 0; i < 10 && rc == 0; i++) {
		snprintf(ids[i], sizeof(ids[i]), "c%d", i);
		sv_proto_encode_item_put(&mb, (uint64_t)i + 1, ids[i], strlen(ids[i]), V + i * d,
		                         d);
		if (send_mb(acked, &mb) < 0 || recv_reply(acked, msgs, &n, &r) < 0)
			rc = fail("item put: no reply");
		else if (r.status != SV_PROTO_STATUS_OK || r.hdr.request_id != (uint64_t)i + 1)
			rc = fail("item put: not OK");
		close_msgs(msgs, n);
	}
	/* 20 inline pairs, fire and forget */
	for (int i = 0; i < 20; i++) {
		memset(&pr[i], 0, sizeof(pr[i]));
		pr[i].label = (uint8_t)(i % 2);
		pr[i].a.vec = V + (size_t)(20 + i) * d;
		pr[i].b.vec = V + (size_t)(40 + i) * d;
	}
	if (rc == 0 &&
	    (sv_proto_encode_pairs(&mb, SV_PROTO_VERB_PAIR_BATCH, 100, pr, 20, d, NULL) < 0 ||
	     send_mb(push, &mb) < 0))
		rc = fail("push pairs");
	/* 20 id pairs, acked with a client id */
	for (int i = 0; i < 20; i++) {
		memset(&pr[i], 0, sizeof(pr[i]));
		pr[i].label = (uint8_t)(i % 2);
		pr[i].a.id = ids[i % 10];
		pr[i].a.id_len = strlen(ids[i % 10]);
		pr[i].b.id = ids[(i + 1) % 10];
		pr[i].b.id_len = strlen(ids[(i + 1) % 10]);
	}
	if (rc == 0) {
		if (sv_proto_encode_pairs(&mb, SV_PROTO_VERB_PAIR_BATCH, 101, pr, 20, d, &cl) < 0 ||
		    send_mb(acked, &mb) < 0 || recv_reply(acked, msgs, &n, &r) < 0)
			rc = fail("acked pairs: no reply");
		else if (r.status != SV_PROTO_STATUS_OK || !r.has_ack || r.ack.n_committed != 20 ||
		         r.ack.client_seq != 1)
			rc = fail("acked pairs: not 20 committed");
		close_msgs(msgs, n);
	}
	/* one score */
	if (rc == 0) {
		struct sv_proto_score s;

		if (sv_proto_encode_pairs(&mb, SV_PROTO_VERB_SCORE, 200, pr, 1, d, NULL) < 0 ||
		    send_mb(query, &mb) < 0 || recv_reply(query, msgs, &n, &r) < 0)
			rc = fail("score: no reply");
		else if (r.status != SV_PROTO_STATUS_OK || sv_proto_reply_score(&r, 0, &s) < 0 ||
		         !(s.score >= -1.0001f && s.score <= 1.0001f))
			rc = fail("score: bad reply");
		else
			printf("score %s %s = %.6f (threshold %.4f, match %d, model v%llu)\n",
			       ids[0], ids[1], (double)s.score, (double)s.threshold, s.match,
			       (unsigned long long)s.model_version);
		close_msgs(msgs, n);
	}
	sv_proto_msgbuf_free(&mb);
	zmq_close(acked);
	zmq_close(push);
	zmq_close(query);
	zmq_ctx_term(ctx);
	free(V);
	return rc;
}
