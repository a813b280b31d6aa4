/* batch.c - the minibatch assembler (see sv/batch.h).
 *
 * One 64-byte aligned buffer of 2*cap rows: the left block (rows 0..cap-1)
 * and the right block (rows cap..2cap-1).  sv_batch_add copies pair i's rows
 * to rows i and cap+i.  sv_batch_rows packs: when n < cap it moves the n right
 * rows down to rows n..2n-1 once, and remembers that; an add after a pack
 * moves them back first.  Item keys live in the same two-block layout, with
 * the right keys also kept in their own array so the packed key view can be
 * rebuilt from a const batch.  This file does not check the rows for
 * NaN/Inf (the trainer checks the loss and gradient) and never allocates
 * after sv_batch_new.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sv/batch.h"
#include "sv/error.h"

struct sv_batch {
	size_t cap;
	size_t n;
	uint32_t d_in;
	int packed;         /* right rows sit at n..2n-1 instead of cap..cap+n-1 */
	uint64_t last_seq;
	float *rows;        /* 2*cap*d_in floats */
	uint8_t *y;         /* cap */
	uint64_t *keys;     /* 2*cap: left keys at 0..n-1, right keys copied to n..2n-1 on view */
	uint64_t *keys_b;   /* cap: right keys */
};

int sv_batch_new(sv_batch **out, size_t cap, uint32_t d_in)
{
	int rc = -ENOMEM;
	sv_batch *b = NULL;
	void *rows = NULL;

	if (!out || cap == 0 || d_in == 0)
		return -EINVAL;
	if (cap > SIZE_MAX / 2 / d_in / sizeof(float))
		return -ENOMEM;
	b = calloc(1, sizeof(*b));
	if (!b)
		goto fail;
	if (posix_memalign(&rows, 64, 2 * cap * d_in * sizeof(float)) != 0)
		goto fail;
	b->rows = rows;
	b->y = calloc(cap, sizeof(*b->y));
	b->keys = calloc(2 * cap, sizeof(*b->keys));
	b->keys_b = calloc(cap, sizeof(*b->keys_b));
	if (!b->y || !b->keys || !b->keys_b)
		goto fail;
	b->cap = cap;
	b->d_in = d_in;
	*out = b;
	return 0;
fail:
	sv_batch_free(b);
	return rc;
}

void sv_batch_free(sv_batch *b)
{
	if (!b)
		return;
	free(b->rows);
	free(b->y);
	free(b->keys);
	free(b->keys_b);
	free(b);
}

/* Move the right rows from n..2n-1 back to cap..cap+n-1 (the blocks may overlap). */
static void unpack(sv_batch *b)
{
	size_t row = (size_t)b->d_in;

	if (b->packed && b->n < b->cap)
		memmove(b->rows + b->cap * row, b->rows + b->n * row, b->n * row * sizeof(float));
	b->packed = 0;
}

int sv_batch_add(sv_batch *b, const float *xa, uint64_t key_a,
		 const float *xb, uint64_t key_b, uint8_t label, uint64_t seq)
{
	size_t row;

	if (!b || !xa || !xb)
		return -EINVAL;
	if (b->n >= b->cap)
		return SV_ERR_STATE;
	if (label > 1)
		return SV_ERR_RANGE;
	unpack(b);
	row = (size_t)b->d_in;
	memcpy(b->rows + b->n * row, xa, row * sizeof(float));
	memcpy(b->rows + (b->cap + b->n) * row, xb, row * sizeof(float));
	b->keys[b->n] = key_a;
	b->keys_b[b->n] = key_b;
	b->y[b->n] = label;
	b->last_seq = seq;
	b->n++;
	return 0;
}

size_t sv_batch_len(const sv_batch *b)
{
	return b->n;
}

size_t sv_batch_cap(const sv_batch *b)
{
	return b->cap;
}

uint32_t sv_batch_d_in(const sv_batch *b)
{
	return b->d_in;
}

int sv_batch_full(const sv_batch *b)
{
	return b->n == b->cap;
}

uint64_t sv_batch_last_seq(const sv_batch *b)
{
	return b->n ? b->last_seq : 0;
}

void sv_batch_clear(sv_batch *b)
{
	b->n = 0;
	b->packed = 0;
	b->last_seq = 0;
}

const float *sv_batch_rows(sv_batch *b)
{
	size_t row = (size_t)b->d_in;

	if (!b->packed && b->n < b->cap && b->n > 0)
		memmove(b->rows + b->n * row, b->rows + b->cap * row, b->n * row * sizeof(float));
	b->packed = 1;
	return b->rows;
}

void sv_batch_labels(const sv_batch *b, struct sv_pair_labels *out)
{
	/* keys[n..2n-1] hold no left key (those are at 0..n-1), so the right keys
	 * can be laid there on every call; the logical state does not change. */
	memcpy(b->keys + b->n, b->keys_b, b->n * sizeof(*b->keys));
	out->n = b->n;
	out->y = b->y;
	out->keys = b->keys;
}
