/* test_batch.c - the minibatch assembler: layout of the assembled rows,
 * labels and keys, full/partial batches, errors, reuse after clear. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>

#include "sv/batch.h"
#include "sv/error.h"

#define D 5

/* Row value that names pair i, side s (0 left, 1 right), column j. */
static float val(size_t i, int s, size_t j)
{
	return (float)(i * 100 + (size_t)s * 10 + j) + 0.5f;
}

static void add_pairs(sv_batch *b, size_t from, size_t count)
{
	float xa[D], xb[D];

	for (size_t i = from; i < from + count; i++) {
		for (size_t j = 0; j < D; j++) {
			xa[j] = val(i, 0, j);
			xb[j] = val(i, 1, j);
		}
		cr_assert_eq(sv_batch_add(b, xa, 1000 + i, xb, 2000 + i, (uint8_t)(i % 2), 50 + i), 0);
	}
}

static void check_layout(sv_batch *b, size_t n)
{
	const float *X = sv_batch_rows(b);
	struct sv_pair_labels lab;

	cr_assert_eq((uintptr_t)X % 64, 0);
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < D; j++) {
			cr_assert_eq(X[i * D + j], val(i, 0, j), "left row %zu col %zu", i, j);
			cr_assert_eq(X[(n + i) * D + j], val(i, 1, j), "right row %zu col %zu", i, j);
		}
	sv_batch_labels(b, &lab);
	cr_assert_eq(lab.n, n);
	for (size_t i = 0; i < n; i++) {
		cr_assert_eq(lab.y[i], i % 2);
		cr_assert_eq(lab.keys[i], 1000 + i);
		cr_assert_eq(lab.keys[n + i], 2000 + i);
	}
}

Test(batch, new_rejects_bad_args)
{
	sv_batch *b = (sv_batch *)0x1;

	cr_assert_eq(sv_batch_new(&b, 0, D), -EINVAL);
	cr_assert_eq(sv_batch_new(&b, 4, 0), -EINVAL);
	cr_assert_eq(sv_batch_new(NULL, 4, D), -EINVAL);
	cr_assert_eq(b, (sv_batch *)0x1, "out written on failure");
	cr_assert_eq(sv_batch_new(&b, SIZE_MAX / 4, D), -ENOMEM);
	sv_batch_free(NULL);
}

Test(batch, partial_batch_is_packed)
{
	sv_batch *b;

	cr_assert_eq(sv_batch_new(&b, 8, D), 0);
	cr_assert_eq(sv_batch_len(b), 0);
	cr_assert_eq(sv_batch_cap(b), 8);
	cr_assert_eq(sv_batch_d_in(b), D);
	cr_assert_eq(sv_batch_last_seq(b), 0);
	add_pairs(b, 0, 3);
	cr_assert_eq(sv_batch_len(b), 3);
	cr_assert_not(sv_batch_full(b));
	cr_assert_eq(sv_batch_last_seq(b), 52);
	check_layout(b, 3);
	/* viewing twice does not move anything again */
	check_layout(b, 3);
	sv_batch_free(b);
}

Test(batch, full_batch_is_packed)
{
	sv_batch *b;

	cr_assert_eq(sv_batch_new(&b, 4, D), 0);
	add_pairs(b, 0, 4);
	cr_assert(sv_batch_full(b));
	check_layout(b, 4);
	sv_batch_free(b);
}

Test(batch, labels_before_rows)
{
	sv_batch *b;
	struct sv_pair_labels lab;

	cr_assert_eq(sv_batch_new(&b, 6, D), 0);
	add_pairs(b, 0, 2);
	sv_batch_labels(b, &lab);
	cr_assert_eq(lab.n, 2);
	cr_assert_eq(lab.keys[0], 1000);
	cr_assert_eq(lab.keys[1], 1001);
	cr_assert_eq(lab.keys[2], 2000);
	cr_assert_eq(lab.keys[3], 2001);
	check_layout(b, 2);
	sv_batch_free(b);
}

Test(batch, add_after_view_keeps_layout)
{
	sv_batch *b;

	cr_assert_eq(sv_batch_new(&b, 7, D), 0);
	add_pairs(b, 0, 2);
	check_layout(b, 2);
	add_pairs(b, 2, 3);
	check_layout(b, 5);
	add_pairs(b, 5, 2);
	check_layout(b, 7);
	sv_batch_free(b);
}

Test(batch, full_and_bad_label_rejected)
{
	sv_batch *b;
	float x[D] = {0};

	cr_assert_eq(sv_batch_new(&b, 2, D), 0);
	cr_assert_eq(sv_batch_add(b, x, 1, x, 2, 2, 9), SV_ERR_RANGE);
	cr_assert_eq(sv_batch_len(b), 0);
	cr_assert_eq(sv_batch_add(b, NULL, 1, x, 2, 1, 9), -EINVAL);
	cr_assert_eq(sv_batch_add(b, x, 1, NULL, 2, 1, 9), -EINVAL);
	cr_assert_eq(sv_batch_add(NULL, x, 1, x, 2, 1, 9), -EINVAL);
	add_pairs(b, 0, 2);
	cr_assert_eq(sv_batch_add(b, x, 1, x, 2, 1, 99), SV_ERR_STATE);
	cr_assert_eq(sv_batch_last_seq(b), 51);
	check_layout(b, 2);
	sv_batch_free(b);
}

Test(batch, clear_then_reuse)
{
	sv_batch *b;

	cr_assert_eq(sv_batch_new(&b, 5, D), 0);
	add_pairs(b, 0, 5);
	check_layout(b, 5);
	sv_batch_clear(b);
	cr_assert_eq(sv_batch_len(b), 0);
	cr_assert_eq(sv_batch_last_seq(b), 0);
	add_pairs(b, 0, 3);
	check_layout(b, 3);
	sv_batch_clear(b);
	add_pairs(b, 0, 1);
	check_layout(b, 1);
	sv_batch_free(b);
}
