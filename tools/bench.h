/* bench.h - the sv-bench subcommands and the helpers they share.
 *
 * sv-bench NAME [options] runs one benchmark.  Every benchmark prints each of
 * its figures beside a reference measured in the same run (raw OpenBLAS, raw
 * LMDB, raw ZeroMQ, ...) and the ratio of the two, never an absolute time
 * alone: machines here are noisy.  --json prints one JSON object instead.
 *
 * Each subcommand lives in its own bench_NAME.c and is linked only if that
 * file exists; sv-bench.c sees the missing ones as NULL (weak symbols).
 */
#ifndef SV_TOOLS_BENCH_H
#define SV_TOOLS_BENCH_H

#include <stdint.h>

int bench_train(int argc, char **argv) __attribute__((weak));
int bench_store(int argc, char **argv) __attribute__((weak));
int bench_ingest(int argc, char **argv) __attribute__((weak));
int bench_query(int argc, char **argv) __attribute__((weak));
int bench_topk(int argc, char **argv) __attribute__((weak));

/* Monotonic clock in nanoseconds (bench_util.c). */
uint64_t bench_now_ns(void);

#endif
