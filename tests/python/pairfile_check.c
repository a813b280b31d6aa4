/* pairfile_check.c - validate a .vec / .pairs couple with simverify's C
 * reader (sv/pairfile.h), for tests/python/test_make_pairs.py.
 *
 * usage: pairfile_check FILE.vec FILE.pairs
 * Prints "ok n_rows=.. dim=.. id_base=.. n_classes=.. n_pairs=.. n_pos=..
 * id_lo=.. id_hi=.. seed=.. split=.." and exits 0, or prints the reader's
 * message and exits 1.
 */
#include <stdio.h>

#include "sv/error.h"
#include "sv/pairfile.h"

int main(int argc, char **argv)
{
	char err[SV_PAIRFILE_ERRLEN] = "";
	struct sv_vecfile *vf = NULL;
	struct sv_pairfile *pf = NULL;
	int rc;

	if (argc != 3) {
		fprintf(stderr, "usage: %s FILE.vec FILE.pairs\n", argv[0]);
		return 2;
	}
	rc = sv_vecfile_open(&vf, argv[1], err, sizeof err);
	if (!rc)
		rc = sv_pairfile_open(&pf, argv[2], err, sizeof err);
	if (!rc)
		rc = sv_pairfile_check_vec(pf, vf, err, sizeof err);
	if (rc) {
		printf("error %d (%s): %s\n", rc, sv_strerror(rc), err);
	} else {
		const struct sv_vec_header *v = sv_vecfile_header(vf);
		const struct sv_pair_header *p = sv_pairfile_header(pf);

		printf("ok n_rows=%u dim=%u id_base=%u n_classes=%u n_pairs=%u n_pos=%u "
		       "id_lo=%u id_hi=%u seed=%u split=%u\n",
		       v->n_rows, v->dim, v->id_base, v->n_classes, p->n_pairs, p->n_pos, p->id_lo,
		       p->id_hi, p->seed, p->split);
	}
	sv_pairfile_close(pf);
	sv_vecfile_close(vf);
	return rc ? 1 : 0;
}
