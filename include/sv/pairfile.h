/* sv/pairfile.h - the vector (.vec, SIMVEC1) and pair (.pairs, SIMPAIR1) files.
 *
 * The formats are defined in ../shared/data/README.md; in short (little-endian,
 * every integer header field uint32, 64-byte header):
 *
 *   .vec    magic "SIMVEC1\0", version 1, header_bytes 64, n_rows, dim,
 *           dtype 1 (float32), id_base, feature, n_classes, 24 reserved zero
 *           bytes; then float32 data[n_rows][dim]; then uint8 class[n_rows]
 *           only when n_classes > 0.  Global id g is row g - id_base.
 *   .pairs  magic "SIMPAIR1", version 1, header_bytes 64, n_pairs, n_pos, dim,
 *           record_bytes 12, seed, split, id_lo, id_hi, 16 reserved zero
 *           bytes; then n_pairs records of struct sv_pair_rec.
 *
 * Readers map the file read-only (mmap) and validate it completely before
 * handing it out: magic, version, header_bytes, dtype / record_bytes, the
 * reserved bytes, the file length against the header's sizes (exactly), and
 * for .pairs every record (a != b, both ids in [id_lo, id_hi), label 0 or 1,
 * the number of label-1 records equal to n_pos).  sv_pairfile_check_vec()
 * then checks a .pairs file against the .vec file its ids refer to.
 *
 * Error messages: every function taking (err, errlen) writes one line there on
 * failure (never on success), naming the file (or "<buffer>"), the field, the
 * value found and the value expected, e.g.
 *     "x.pairs: field 'record_bytes': found 16, expected 12".
 * err may be NULL (errlen is then ignored).  SV_PAIRFILE_ERRLEN is enough.
 *
 * The writers produce exactly the reference layout; they are used by tests and
 * by generators.  Left out: byte-order conversion (the readers refuse nothing
 * on a big-endian host but would misread it; simverify targets little-endian
 * hosts only), dtypes other than float32, and the Python-side reading.
 */
#ifndef SV_PAIRFILE_H
#define SV_PAIRFILE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SV_PAIRFILE_HEADER_BYTES 64u
#define SV_PAIRFILE_RECORD_BYTES 12u
#define SV_PAIRFILE_VERSION 1u
#define SV_PAIRFILE_DTYPE_F32 1u
#define SV_PAIRFILE_ERRLEN 256u

/* feature codes of a .vec file */
enum sv_pairfile_feature {
	SV_PAIRFILE_FEATURE_RAW = 0, /* a raw float32 matrix (e.g. a saved W0) */
	SV_PAIRFILE_FEATURE_ZL2 = 1, /* pix/255, centred, unit L2 norm */
	SV_PAIRFILE_FEATURE_L2 = 2,  /* pix/255, unit L2 norm */
};

/* The .vec header, field by field (the magic and reserved bytes left out). */
struct sv_vec_header {
	uint32_t version, header_bytes, n_rows, dim, dtype, id_base, feature, n_classes;
};

/* The .pairs header, field by field (the magic and reserved bytes left out). */
struct sv_pair_header {
	uint32_t version, header_bytes, n_pairs, n_pos, dim, record_bytes, seed, split, id_lo,
	    id_hi;
};

/* One pair record, exactly as stored (12 bytes, no padding).  class_a and
 * class_b are diagnostics: a trainer must use label only. */
struct sv_pair_rec {
	uint32_t a, b; /* global ids, a != b */
	uint8_t label; /* 1 same class, 0 different */
	uint8_t class_a, class_b, reserved;
};

/* ---------------------------------------------------------------- .vec */

/* An open, validated .vec file (opaque).  Pointers it hands out point into
 * the read-only mapping and stay valid until sv_vecfile_close(). */
struct sv_vecfile;

/* Map and validate path.  On success *out owns the mapping.
 * Returns 0, or
 *   -errno             open/fstat/mmap failed (message names the call)
 *   -EINVAL            out or path NULL
 *   SV_ERR_TRUNCATED   the file is shorter than the header or its sizes say
 *   SV_ERR_MAGIC       not "SIMVEC1\0"
 *   SV_ERR_VERSION     version, header_bytes or dtype not supported
 *   SV_ERR_SHAPE       dim or n_rows is 0, id_base + n_rows overflows, or
 *                      the file is longer than its sizes say
 *   SV_ERR_CORRUPT     reserved bytes not zero, or a class >= n_classes */
int sv_vecfile_open(struct sv_vecfile **out, const char *path, char *err, size_t errlen);

/* The same validation for an in-memory image of a file (len bytes at buf,
 * borrowed: it must outlive *out, and be 4-byte aligned as malloc and mmap
 * give).  name is used in messages (NULL -> "<buffer>").  Same errors as
 * sv_vecfile_open() apart from -errno. */
int sv_vecfile_from_buffer(struct sv_vecfile **out, const void *buf, size_t len, const char *name,
                           char *err, size_t errlen);

/* Unmap and free.  Accepts NULL. */
void sv_vecfile_close(struct sv_vecfile *vf);

/* The header (borrowed, valid until close). */
const struct sv_vec_header *sv_vecfile_header(const struct sv_vecfile *vf);

/* The row of global id g (dim floats), or NULL if g is outside
 * [id_base, id_base + n_rows). */
const float *sv_vecfile_row(const struct sv_vecfile *vf, uint32_t g);

/* The whole n_rows x dim matrix, row-major. */
const float *sv_vecfile_data(const struct sv_vecfile *vf);

/* The class block (n_rows bytes), or NULL when n_classes == 0. */
const uint8_t *sv_vecfile_classes(const struct sv_vecfile *vf);

/* Write a .vec file: n_rows x dim float32 rows (row-major), and when classes
 * is not NULL a class block of n_rows bytes with n_classes > 0 declared
 * (every class must be < n_classes).  The file is written to path.tmp and
 * renamed, so a reader never sees a half file.
 * Returns 0, -EINVAL (NULL data/path, zero dims, classes without n_classes or
 * a class out of range), or -errno from the file calls. */
int sv_vecfile_write(const char *path, const float *data, uint32_t n_rows, uint32_t dim,
                     uint32_t id_base, uint32_t feature, const uint8_t *classes,
                     uint32_t n_classes);

/* --------------------------------------------------------------- .pairs */

/* An open, validated .pairs file (opaque); pointers into it stay valid
 * until sv_pairfile_close(). */
struct sv_pairfile;

/* Map and validate path (header and every record).  Returns 0, or
 *   -errno, -EINVAL     as sv_vecfile_open()
 *   SV_ERR_TRUNCATED    shorter than 64 + 12 * n_pairs bytes
 *   SV_ERR_MAGIC        not "SIMPAIR1"
 *   SV_ERR_VERSION      version, header_bytes or record_bytes not supported
 *   SV_ERR_SHAPE        dim 0, id_lo >= id_hi, n_pos > n_pairs, or longer
 *                       than its sizes say
 *   SV_ERR_CORRUPT      reserved bytes not zero; a record with a == b, an id
 *                       outside [id_lo, id_hi) or a label other than 0/1; or
 *                       the count of label-1 records differs from n_pos */
int sv_pairfile_open(struct sv_pairfile **out, const char *path, char *err, size_t errlen);

/* As sv_pairfile_open() for an in-memory image (borrowed; see
 * sv_vecfile_from_buffer()). */
int sv_pairfile_from_buffer(struct sv_pairfile **out, const void *buf, size_t len, const char *name,
                            char *err, size_t errlen);

/* Unmap and free.  Accepts NULL. */
void sv_pairfile_close(struct sv_pairfile *pf);

/* The header (borrowed, valid until close). */
const struct sv_pair_header *sv_pairfile_header(const struct sv_pairfile *pf);

/* The n_pairs records in arrival order (borrowed, valid until close). */
const struct sv_pair_rec *sv_pairfile_records(const struct sv_pairfile *pf);

/* Check that pf refers to vf: equal dim (SV_ERR_SHAPE), [id_lo, id_hi)
 * inside [id_base, id_base + n_rows) (SV_ERR_RANGE); and when vf has a class
 * block, every record's class_a/class_b equal the classes of its rows and
 * label == (class_a == class_b) (SV_ERR_CORRUPT, message names the record).
 * Returns 0, -EINVAL for NULL handles, or one of those codes. */
int sv_pairfile_check_vec(const struct sv_pairfile *pf, const struct sv_vecfile *vf, char *err,
                          size_t errlen);

/* A 64-bit fingerprint (FNV-1a) of what a publish of pf with vf sends:
 * both headers, every record and every vector of vf.  simverifyctl publish
 * derives its default client id from it, so two streams that differ in any
 * vector get different ids.  Reads all of vf (a pass over the mapped file).
 * Returns 0 for NULL handles. */
uint64_t sv_pairfile_fingerprint(const struct sv_pairfile *pf, const struct sv_vecfile *vf);

/* Write a .pairs file of n_pairs records (n_pos counted from the labels;
 * reserved bytes of the header written as zero, records as given), via
 * path.tmp and rename.  Returns 0, -EINVAL (NULL path, rec NULL with
 * n_pairs > 0, dim 0, id_lo >= id_hi), SV_ERR_CORRUPT (a record that
 * sv_pairfile_open() would refuse), or -errno. */
int sv_pairfile_write(const char *path, const struct sv_pair_rec *rec, uint32_t n_pairs,
                      uint32_t dim, uint32_t seed, uint32_t split, uint32_t id_lo, uint32_t id_hi);

#ifdef __cplusplus
}
#endif
#endif
