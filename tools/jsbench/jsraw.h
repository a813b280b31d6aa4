/* jsraw.h - raw JetStream with cnats alone: the reference that sv-jsbench
 * prints by itself and sv-clusterbench prints beside simverifyd's end-to-end
 * pairs/s (docs/SCALING.md).  One connection, one stream per run; no daemon,
 * no LMDB, no training.
 */
#ifndef SV_TOOLS_JSRAW_H
#define SV_TOOLS_JSRAW_H

#include <stddef.h>
#include <stdint.h>

#include <nats/nats.h>

/* A message to publish: borrowed bytes (cnats copies them when it sends). */
struct jsraw_msg {
	const void *data;
	size_t len;
};

/* A connection to the comma-separated URL list and its JetStream context
 * (publish window 4096, API wait 10 s).  0, or 1 with the reason on stderr
 * (nothing left open then). */
int jsraw_connect(const char *urls, natsConnection **nc, jsCtx **js);
/* Destroys both; accepts NULLs. */
void jsraw_close(natsConnection *nc, jsCtx *js);

/* Called by jsraw_run at phase 0 (before the first publish), 1 (after the
 * last PubAck, before consuming) and 2 (after the last fetch): where a
 * caller takes its own readings, such as the servers' CPU time. */
struct jsraw_hook {
	void (*fn)(void *ctx, int phase);
	void *ctx;
};

/* One run: make a fresh file-storage stream `stream` (subject
 * "<stream>.pairs", `replicas`, duplicate window 2 min); publish msgs[0..n)
 * asynchronously, each with a distinct 32-hex-digit message id as the
 * gateway makes them, and wait for every PubAck (*pub_rate, msg/s); then
 * drain them through a durable pull consumer (AckPolicy all, fetches of at
 * most 256 messages or 8 MB, one ack per fetch; a fetch that times out is
 * retried while one came in the last 60 s: *sub_rate, msg/s); delete the
 * stream.  hook may be NULL.  0, or 1 with the reason on stderr. */
int jsraw_run(jsCtx *js, const char *stream, int replicas, const struct jsraw_msg *msgs, size_t n,
              double *pub_rate, double *sub_rate, const struct jsraw_hook *hook);

/* Delete stream `name` if it exists (errors ignored: a clean-up). */
void jsraw_delete(jsCtx *js, const char *name);
/* The last sequence stored in stream `name`; 0, or -1 (no answer). */
int jsraw_last_seq(jsCtx *js, const char *name, uint64_t *last);

/* Monotonic seconds. */
double jsraw_now(void);

#endif
