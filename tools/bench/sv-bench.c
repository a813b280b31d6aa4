/* sv-bench.c - the benchmark driver: `sv-bench NAME [options]`.
 *
 * Dispatches to the bench_NAME functions of bench.h, each in its own
 * bench_NAME.c.  Each subcommand parses its own options and
 * answers --help.  Exit status: the subcommand's, or 2 for a usage error.
 */
#include <stdio.h>
#include <string.h>

#include "bench.h"

struct bench_cmd {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *what;
};

static void usage(FILE *f, const struct bench_cmd *cmds, size_t n)
{
	fprintf(f, "usage: sv-bench NAME [options]   (sv-bench NAME --help for its options)\n"
		   "benchmarks:\n");
	for (size_t i = 0; i < n; i++)
		fprintf(f, "  %-8s %s\n", cmds[i].name, cmds[i].what);
}

int main(int argc, char **argv)
{
	const struct bench_cmd cmds[] = {
		{"train", bench_train, "one training step against raw OpenBLAS GEMMs"},
		{"store", bench_store, "LMDB store writes and reads against raw LMDB"},
		{"ingest", bench_ingest, "pair ingestion end to end against raw ZeroMQ"},
		{"query", bench_query, "match queries against raw ZeroMQ round trips"},
		{"topk", bench_topk, "1:N top-k against a raw OpenBLAS GEMV"},
		{"rebuild", bench_rebuild, "a top-k cache rebuild from the store against a bare sgemm"},
		{"growth", bench_growth, "data.mdb over a long ingest, with and without retention"},
	};
	const size_t n = sizeof(cmds) / sizeof(cmds[0]);

	if (argc < 2) {
		usage(stderr, cmds, n);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(stdout, cmds, n);
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		if (strcmp(argv[1], cmds[i].name) != 0)
			continue;
		return cmds[i].fn(argc - 1, argv + 1);
	}
	fprintf(stderr, "sv-bench: unknown benchmark '%s'\n", argv[1]);
	usage(stderr, cmds, n);
	return 2;
}
