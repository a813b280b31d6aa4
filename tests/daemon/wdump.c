/* wdump.c - sv_test_wdump STORE_DIR [VERSION]: write a checkpoint's W to
 * stdout for the daemon tests, which recompute scores from it in float64.
 *
 * Output (little-endian): u64 version, u64 step, u32 d_in, u32 d_out, then
 * d_in*d_out float32 (row-major).  VERSION 0 or absent: the active one.
 * Run it on a stopped daemon's store.  Exit 0, or 1 with a message.
 * Leaves out: everything else in a checkpoint (optimizer, calibration).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sv/error.h"
#include "sv/store.h"

int main(int argc, char **argv)
{
	struct sv_store_opts o;
	struct sv_store_model m;
	char err[SV_STORE_ERRMSG_MAX] = "";
	sv_store *s = NULL;
	sv_store_read *r = NULL;
	uint64_t version = argc > 2 ? strtoull(argv[2], NULL, 10) : 0;
	uint32_t dims[2];
	float *W = NULL;
	int rc;

	if (argc < 2) {
		fprintf(stderr, "usage: sv_test_wdump STORE_DIR [VERSION]\n");
		return 1;
	}
	sv_store_opts_default(&o); /* d_in = d_out = 0: the store's own */
	o.path = argv[1];
	rc = sv_store_open(&s, &o, err, sizeof(err));
	if (rc == 0)
		rc = sv_store_read_begin(s, &r);
	if (rc == 0)
		rc = sv_store_model_get(r, version, &m);
	if (rc == 0) {
		sv_store_dims(s, &dims[0], &dims[1]);
		W = malloc((size_t)dims[0] * dims[1] * sizeof(float));
		if (W == NULL)
			rc = -12;
	}
	if (rc == 0) {
		sv_store_model_weights(s, &m, W);
		fwrite(&m.version, 8, 1, stdout);
		fwrite(&m.step, 8, 1, stdout);
		fwrite(dims, 4, 2, stdout);
		fwrite(W, sizeof(float), (size_t)dims[0] * dims[1], stdout);
	}
	sv_store_read_end(r);
	sv_store_close(s);
	free(W);
	if (rc < 0) {
		fprintf(stderr, "sv_test_wdump: %s (%s)\n", sv_strerror(rc), err);
		return 1;
	}
	return fflush(stdout) == 0 ? 0 : 1;
}
