/* golden.h - reader for the golden case files of ../shared/reference
 * (format in reference/README.md and LOSSES.md section 0).
 *
 * A case is a list of typed entries (str, int, real, ivec, mat) keyed by
 * name.  Numbers are kept as doubles exactly as strtod reads them.  Lookups
 * return NULL (or the given default) for missing keys; unknown keys are kept
 * but never required.  Leaves out: writing cases.
 */
#ifndef SV_TOOLS_GOLDEN_H
#define SV_TOOLS_GOLDEN_H

#include <stddef.h>

enum golden_type {
	GOLDEN_TYPE_STR,
	GOLDEN_TYPE_INT,
	GOLDEN_TYPE_REAL,
	GOLDEN_TYPE_IVEC,
	GOLDEN_TYPE_MAT,
};

struct golden_entry {
	enum golden_type type;
	char *key;
	char *str;         /* GOLDEN_TYPE_STR */
	double *v;         /* INT and REAL: 1 value; IVEC: len; MAT: rows*cols */
	size_t rows, cols; /* IVEC: 1 x len; INT/REAL: 1 x 1 */
};

struct golden_case {
	char *name;
	struct golden_entry *e;
	size_t count;
};

/* Parse the file at path into *out (owned by the caller, freed with
 * golden_free).  Returns 0, -errno for I/O failures, or -EBADMSG for a
 * malformed file (err, if not NULL, gets a line number). */
int golden_load(const char *path, struct golden_case **out, int *err_line);
void golden_free(struct golden_case *c);

const struct golden_entry *golden_find(const struct golden_case *c, const char *key);
const char *golden_str(const struct golden_case *c, const char *key);
double golden_real(const struct golden_case *c, const char *key, double dflt);
/* The values of an ivec or mat key with exactly rows x cols entries (an ivec
 * is 1 x len), else NULL. */
const double *golden_mat(const struct golden_case *c, const char *key, size_t rows, size_t cols);

#endif
