/* sv-jsbench - raw JetStream reference: publish and pull-consume N pair-sized
 * messages with cnats alone (jsraw.c), the yardstick for simverifyd's
 * end-to-end pairs/s through JetStream.  sv-clusterbench runs the same
 * reference beside the daemon in one run; this prints it alone.
 *
 *   sv-jsbench --urls URLS [-n 20000] [--size 6288] [--replicas 1] [--runs 3]
 *
 * Each run makes a fresh file-storage stream SV_JSBENCH (duplicate window
 * 2 min), publishes N messages of --size bytes asynchronously, each with a
 * distinct msg id like the gateway's, waits for every PubAck, then drains
 * them through a durable pull consumer (AckPolicy all, fetches of 256
 * messages or 8 MB, one ack per fetch).  Prints the median of the runs and their range, for each
 * phase.  The default size is one pair of 784-float32 vectors plus a 16-byte
 * header.  Leaves out: the daemon, LMDB, training - this is the ceiling, not
 * a result.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsraw.h"

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	const char *urls = NULL;
	int n = 20000, size = 6288, replicas = 1, runs = 3, rc = 1;
	natsConnection *nc = NULL;
	jsCtx *js = NULL;
	struct jsraw_msg *msgs = NULL;
	char *payload = NULL;
	double pub[16], sub[16];

	for (int i = 1; i < argc; i++) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(argv[i], "--urls") && v)
			urls = argv[++i];
		else if (!strcmp(argv[i], "-n") && v)
			n = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--size") && v)
			size = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--replicas") && v)
			replicas = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--runs") && v)
			runs = atoi(argv[++i]);
		else {
			fprintf(stderr, "usage: sv-jsbench --urls URLS [-n N] [--size BYTES] "
					"[--replicas 1..5] [--runs 1..16]\n");
			return 2;
		}
	}
	if (!urls || n < 1 || size < 4 || replicas < 1 || replicas > 5 || runs < 1 || runs > 16) {
		fprintf(stderr, "sv-jsbench: --urls is required; -n >= 1, --size >= 4, --runs 1..16\n");
		return 2;
	}
	payload = calloc(1, (size_t)size);
	msgs = calloc((size_t)n, sizeof *msgs);
	if (payload == NULL || msgs == NULL) {
		fprintf(stderr, "sv-jsbench: out of memory\n");
		goto out;
	}
	for (int i = 0; i < n; i++)
		msgs[i] = (struct jsraw_msg){payload, (size_t)size};
	if (jsraw_connect(urls, &nc, &js))
		goto out;
	for (int r = 0; r < runs; r++)
		if (jsraw_run(js, "SV_JSBENCH", replicas, msgs, (size_t)n, &pub[r], &sub[r], NULL))
			goto out;
	qsort(pub, (size_t)runs, sizeof *pub, cmp_d);
	qsort(sub, (size_t)runs, sizeof *sub, cmp_d);
	printf("raw JetStream R%d, %d msgs of %d B, %d runs\n", replicas, n, size, runs);
	printf("  publish async+ack: median %.0f msg/s (range %.0f..%.0f)\n", pub[runs / 2], pub[0],
	       pub[runs - 1]);
	printf("  pull consume+ack:  median %.0f msg/s (range %.0f..%.0f)\n", sub[runs / 2], sub[0],
	       sub[runs - 1]);
	rc = 0;
out:
	jsraw_close(nc, js);
	free(msgs);
	free(payload);
	return rc;
}
