/* sv/batch.h - the minibatch assembler.
 *
 * Pairs come in one at a time (two input rows of d_in floats, two item keys, a
 * label) and are copied straight into the rows the GEMM reads.  The assembled
 * batch is the [X1; X2] of LOSSES.md: m = 2n contiguous rows, row i the left
 * side of pair i and row n+i its right side.  Left and right rows are kept in
 * two blocks of cap rows; when a batch is handed over with n < cap the right
 * block is moved down once so the rows are contiguous.
 * No allocation happens after sv_batch_new.  Per pair the batch also records the
 * caller's sequence number (the pair log sequence), so the trainer can report
 * the last sequence a step consumed.
 */
#ifndef SV_BATCH_H
#define SV_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "sv/loss.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sv_batch sv_batch;

/* A batch of at most cap pairs of d_in-float rows.  0, -EINVAL, -ENOMEM. */
int sv_batch_new(sv_batch **out, size_t cap, uint32_t d_in);
void sv_batch_free(sv_batch *b);

/* Append one pair; xa and xb (d_in floats each) are borrowed for the call and
 * copied.  seq is the caller's sequence (e.g. the pair log's).  Returns 0,
 * -EINVAL for a NULL pointer, SV_ERR_STATE when the batch is full,
 * SV_ERR_RANGE when label is not 0/1 (the batch is unchanged on failure). */
int sv_batch_add(sv_batch *b, const float *xa, uint64_t key_a,
		 const float *xb, uint64_t key_b, uint8_t label, uint64_t seq);

size_t sv_batch_len(const sv_batch *b);
size_t sv_batch_cap(const sv_batch *b);
uint32_t sv_batch_d_in(const sv_batch *b);
int sv_batch_full(const sv_batch *b);
uint64_t sv_batch_last_seq(const sv_batch *b);  /* seq of the last add; 0 when empty */

/* Empty the batch (keeps its memory). */
void sv_batch_clear(sv_batch *b);

/* The assembled view: X (2n x d_in, lefts then rights, 64-byte aligned) and
 * labels for sv/loss.h (y: n entries; keys: 2n entries, row r's item key,
 * usable in GRAPH mode).  Either may be called first.  Pointers are owned by
 * the batch and valid until the next add or clear. */
const float *sv_batch_rows(sv_batch *b);
void sv_batch_labels(const sv_batch *b, struct sv_pair_labels *out);

#ifdef __cplusplus
}
#endif
#endif
