/* test_snapshot.c - daemon/snapshot.c: a reader's snapshot never changes
 * under it while a writer publishes new ones, and the last reference frees
 * (run under ASan/valgrind, a use after free or a leak shows).
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>

#include "snapshot.h"

#define D_IN 64
#define D_OUT 16
#define N_PUB 2000

struct shared {
	struct sv_snap_slot slot;
	atomic_int done;
	atomic_long torn;
	atomic_long reads;
};

static void *reader(void *arg)
{
	struct shared *sh = arg;

	while (!atomic_load(&sh->done)) {
		struct sv_snap *s = snap_get(&sh->slot);

		if (s == NULL)
			continue;
		/* every element of W is the version it was published with */
		for (size_t i = 0; i < (size_t)D_IN * D_OUT; i++)
			if (s->W[i] != (float)s->version) {
				atomic_fetch_add(&sh->torn, 1);
				break;
			}
		atomic_fetch_add(&sh->reads, 1);
		snap_unref(s);
	}
	return NULL;
}

Test(snapshot, readers_see_whole_snapshots_while_publishing)
{
	static struct shared sh;
	pthread_t th[3];
	float W[D_IN * D_OUT];
	int v;

	cr_assert_eq(snap_slot_init(&sh.slot), 0);
	cr_assert_null(snap_get(&sh.slot));
	for (int i = 0; i < 3; i++)
		pthread_create(&th[i], NULL, reader, &sh);
	/* publish until the readers have overlapped many publications */
	for (v = 1; v <= N_PUB || (atomic_load(&sh.reads) < 1000 && v < 10000000); v++) {
		struct sv_snap *s;

		for (size_t i = 0; i < (size_t)D_IN * D_OUT; i++)
			W[i] = (float)v;
		s = snap_new(D_IN, D_OUT, W);
		cr_assert_not_null(s);
		s->version = (uint64_t)v;
		snap_publish(&sh.slot, s);
	}
	atomic_store(&sh.done, 1);
	for (int i = 0; i < 3; i++)
		pthread_join(th[i], NULL);
	cr_assert_eq(atomic_load(&sh.torn), 0);
	cr_assert_gt(atomic_load(&sh.reads), 0);
	{
		struct sv_snap *s = snap_get(&sh.slot);

		cr_assert_eq(s->version, (uint64_t)(v - 1));
		cr_assert_eq(atomic_load(&s->refs), 2); /* the slot's and ours */
		snap_unref(s);
	}
	snap_slot_destroy(&sh.slot);
}

Test(snapshot, unref_accepts_null)
{
	snap_unref(NULL);
}
