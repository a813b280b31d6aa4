/* fuzz_pairfile.c - fuzz target for the .vec / .pairs validators.
 *
 * LLVMFuzzerTestOneInput() hands the input to sv_vecfile_from_buffer() and
 * sv_pairfile_from_buffer() (the same code paths as the mmap readers), and
 * when one accepts it, touches every row / record the handle exposes so that
 * a validator that lets a bad size through shows up as an out-of-bounds read.
 * Built without -DSV_LIBFUZZER it is a plain program: replay.c's main()
 * replays every file named on the command line, or every file in a named
 * directory.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sv/pairfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* copy into 8-byte-aligned memory, as mmap would give */
	uint64_t *buf = malloc((size / 8 + 1) * 8);
	char err[SV_PAIRFILE_ERRLEN];
	struct sv_vecfile *vf = NULL;
	struct sv_pairfile *pf = NULL;
	volatile float fsink = 0;
	volatile uint32_t usink = 0;

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	if (sv_vecfile_from_buffer(&vf, buf, size, "fuzz", err, sizeof err) == 0) {
		const struct sv_vec_header *h = sv_vecfile_header(vf);
		const uint8_t *cls = sv_vecfile_classes(vf);

		for (uint32_t i = 0; i < h->n_rows; i++) {
			const float *r = sv_vecfile_row(vf, h->id_base + i);

			fsink += r[0] + r[h->dim - 1];
			if (cls)
				usink += cls[i];
		}
		if (sv_vecfile_row(vf, h->id_base + h->n_rows) != NULL)
			abort();
	}
	if (sv_pairfile_from_buffer(&pf, buf, size, "fuzz", err, sizeof err) == 0) {
		const struct sv_pair_header *h = sv_pairfile_header(pf);
		const struct sv_pair_rec *r = sv_pairfile_records(pf);

		for (uint32_t i = 0; i < h->n_pairs; i++) {
			if (r[i].a < h->id_lo || r[i].a >= h->id_hi || r[i].a == r[i].b)
				abort();
			usink += r[i].label;
		}
		if (vf)
			(void)sv_pairfile_check_vec(pf, vf, err, sizeof err);
	}
	sv_pairfile_close(pf);
	sv_vecfile_close(vf);
	free(buf);
	(void)fsink;
	(void)usink;
	return 0;
}
