/* pairfile.c - read (mmap + full validation) and write .vec / .pairs files.
 *
 * See sv/pairfile.h for the formats and the errors.  Leaves out byte-order
 * conversion: fields are read with memcpy in host order (little-endian hosts).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bytes.h"
#include "sv/error.h"
#include "sv/pairfile.h"

_Static_assert(sizeof(struct sv_pair_rec) == SV_PAIRFILE_RECORD_BYTES, "record layout");

static const char VEC_MAGIC[8] = {'S', 'I', 'M', 'V', 'E', 'C', '1', '\0'};
static const char PAIR_MAGIC[8] = {'S', 'I', 'M', 'P', 'A', 'I', 'R', '1'};

/* A mapped (or borrowed) byte range. */
struct mapping {
	const uint8_t *base;
	size_t len;
	int mapped; /* 1: munmap on close */
};

struct sv_vecfile {
	struct mapping m;
	struct sv_vec_header h;
	const float *data;
	const uint8_t *classes;
};

struct sv_pairfile {
	struct mapping m;
	struct sv_pair_header h;
	const struct sv_pair_rec *rec;
};

static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static int map_file(struct mapping *m, const char *path, char *err, size_t errlen)
{
	struct stat st;
	void *p = NULL;
	int rc = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		rc = -errno;
		seterr(err, errlen, "%s: open: %s", path, strerror(-rc));
		goto out;
	}
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		seterr(err, errlen, "%s: fstat: %s", path, strerror(-rc));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = -EINVAL;
		seterr(err, errlen, "%s: not a regular file (%s)", path,
		       S_ISDIR(st.st_mode) ? "a directory" : "a device, pipe or socket");
		goto out;
	}
	m->len = (size_t)st.st_size;
	m->mapped = 0;
	m->base = NULL;
	if (m->len > 0) {
		p = mmap(NULL, m->len, PROT_READ, MAP_PRIVATE, fd, 0);
		if (p == MAP_FAILED) {
			rc = -errno;
			seterr(err, errlen, "%s: mmap: %s", path, strerror(-rc));
			goto out;
		}
		m->base = p;
		m->mapped = 1;
	}
out:
	if (fd >= 0)
		close(fd);
	return rc;
}

static void unmap(struct mapping *m)
{
	if (m->mapped && m->base)
		munmap((void *)m->base, m->len);
}

/* Checks shared by both formats: length >= header, magic, version,
 * header_bytes.  Returns 0 or an SV_ERR_* with the message written. */
static int check_common(const uint8_t *b, size_t len, const char *magic, const char *name,
                        char *err, size_t errlen)
{
	if (len < SV_PAIRFILE_HEADER_BYTES) {
		seterr(err, errlen, "%s: header: found %zu bytes, expected at least %u", name, len,
		       SV_PAIRFILE_HEADER_BYTES);
		return SV_ERR_TRUNCATED;
	}
	if (memcmp(b, magic, 8) != 0) {
		seterr(
		    err, errlen,
		    "%s: field 'magic': found %02x%02x%02x%02x%02x%02x%02x%02x, expected \"%.8s\"",
		    name, b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], magic);
		return SV_ERR_MAGIC;
	}
	if (sv_get32(b + 8) != SV_PAIRFILE_VERSION) {
		seterr(err, errlen, "%s: field 'version': found %u, expected %u", name, sv_get32(b + 8),
		       SV_PAIRFILE_VERSION);
		return SV_ERR_VERSION;
	}
	if (sv_get32(b + 12) != SV_PAIRFILE_HEADER_BYTES) {
		seterr(err, errlen, "%s: field 'header_bytes': found %u, expected %u", name,
		       sv_get32(b + 12), SV_PAIRFILE_HEADER_BYTES);
		return SV_ERR_VERSION;
	}
	return 0;
}

static int check_reserved(const uint8_t *b, size_t from, const char *name, char *err, size_t errlen)
{
	for (size_t i = from; i < SV_PAIRFILE_HEADER_BYTES; i++) {
		if (b[i] != 0) {
			seterr(err, errlen, "%s: field 'reserved' (byte %zu): found %u, expected 0",
			       name, i, b[i]);
			return SV_ERR_CORRUPT;
		}
	}
	return 0;
}

static int check_length(uint64_t want, size_t len, const char *name, const char *what, char *err,
                        size_t errlen)
{
	if ((uint64_t)len < want) {
		seterr(err, errlen, "%s: file length: found %zu bytes, expected %llu (%s)", name,
		       len, (unsigned long long)want, what);
		return SV_ERR_TRUNCATED;
	}
	if ((uint64_t)len > want) {
		seterr(err, errlen,
		       "%s: file length: found %zu bytes, expected %llu (%s); trailing bytes", name,
		       len, (unsigned long long)want, what);
		return SV_ERR_SHAPE;
	}
	return 0;
}

/* ---------------------------------------------------------------- .vec */

static int vec_parse(struct sv_vecfile *vf, const char *name, char *err, size_t errlen)
{
	const uint8_t *b = vf->m.base;
	size_t len = vf->m.len;
	struct sv_vec_header h;
	uint64_t want;
	int rc = check_common(b, len, VEC_MAGIC, name, err, errlen);

	if (rc)
		return rc;
	h.version = sv_get32(b + 8);
	h.header_bytes = sv_get32(b + 12);
	h.n_rows = sv_get32(b + 16);
	h.dim = sv_get32(b + 20);
	h.dtype = sv_get32(b + 24);
	h.id_base = sv_get32(b + 28);
	h.feature = sv_get32(b + 32);
	h.n_classes = sv_get32(b + 36);
	if (h.dtype != SV_PAIRFILE_DTYPE_F32) {
		seterr(err, errlen, "%s: field 'dtype': found %u, expected %u (float32)", name,
		       h.dtype, SV_PAIRFILE_DTYPE_F32);
		return SV_ERR_VERSION;
	}
	rc = check_reserved(b, 40, name, err, errlen);
	if (rc)
		return rc;
	if (h.dim == 0) {
		seterr(err, errlen, "%s: field 'dim': found 0, expected > 0", name);
		return SV_ERR_SHAPE;
	}
	if (h.n_rows == 0) {
		seterr(err, errlen, "%s: field 'n_rows': found 0, expected > 0", name);
		return SV_ERR_SHAPE;
	}
	if ((uint64_t)h.id_base + h.n_rows > UINT32_MAX + 1ull) {
		seterr(err, errlen,
		       "%s: field 'id_base': found %u, expected <= %llu (id_base + n_rows "
		       "must fit in uint32)",
		       name, h.id_base, UINT32_MAX + 1ull - h.n_rows);
		return SV_ERR_SHAPE;
	}
	if (h.n_classes > 256) {
		seterr(err, errlen, "%s: field 'n_classes': found %u, expected <= 256", name,
		       h.n_classes);
		return SV_ERR_SHAPE;
	}
	want = SV_PAIRFILE_HEADER_BYTES + 4ull * h.n_rows * h.dim +
	       (h.n_classes ? (uint64_t)h.n_rows : 0);
	rc = check_length(want, len, name,
	                  h.n_classes ? "64 + 4*n_rows*dim + n_rows" : "64 + 4*n_rows*dim", err,
	                  errlen);
	if (rc)
		return rc;
	vf->data = (const float *)(b + SV_PAIRFILE_HEADER_BYTES);
	vf->classes = NULL;
	if (h.n_classes) {
		vf->classes = b + SV_PAIRFILE_HEADER_BYTES + 4ull * h.n_rows * h.dim;
		for (uint32_t i = 0; i < h.n_rows; i++) {
			if (vf->classes[i] >= h.n_classes) {
				seterr(err, errlen,
				       "%s: class of row %u: found %u, expected < n_classes %u",
				       name, i, vf->classes[i], h.n_classes);
				return SV_ERR_CORRUPT;
			}
		}
	}
	vf->h = h;
	return 0;
}

static int vec_finish(struct sv_vecfile **out, struct sv_vecfile *vf, const char *name, char *err,
                      size_t errlen)
{
	int rc = vec_parse(vf, name, err, errlen);

	if (rc) {
		sv_vecfile_close(vf);
		return rc;
	}
	*out = vf;
	return 0;
}

int sv_vecfile_open(struct sv_vecfile **out, const char *path, char *err, size_t errlen)
{
	struct sv_vecfile *vf;
	int rc;

	if (!out || !path) {
		seterr(err, errlen, "sv_vecfile_open: NULL argument");
		return -EINVAL;
	}
	vf = calloc(1, sizeof *vf);
	if (!vf)
		return -ENOMEM;
	rc = map_file(&vf->m, path, err, errlen);
	if (rc) {
		free(vf);
		return rc;
	}
	return vec_finish(out, vf, path, err, errlen);
}

int sv_vecfile_from_buffer(struct sv_vecfile **out, const void *buf, size_t len, const char *name,
                           char *err, size_t errlen)
{
	struct sv_vecfile *vf;

	if (!out || (!buf && len)) {
		seterr(err, errlen, "sv_vecfile_from_buffer: NULL argument");
		return -EINVAL;
	}
	vf = calloc(1, sizeof *vf);
	if (!vf)
		return -ENOMEM;
	vf->m.base = buf;
	vf->m.len = len;
	return vec_finish(out, vf, name ? name : "<buffer>", err, errlen);
}

void sv_vecfile_close(struct sv_vecfile *vf)
{
	if (!vf)
		return;
	unmap(&vf->m);
	free(vf);
}

const struct sv_vec_header *sv_vecfile_header(const struct sv_vecfile *vf)
{
	return &vf->h;
}

const float *sv_vecfile_row(const struct sv_vecfile *vf, uint32_t g)
{
	if (g < vf->h.id_base || g - vf->h.id_base >= vf->h.n_rows)
		return NULL;
	return vf->data + (size_t)(g - vf->h.id_base) * vf->h.dim;
}

const float *sv_vecfile_data(const struct sv_vecfile *vf)
{
	return vf->data;
}

const uint8_t *sv_vecfile_classes(const struct sv_vecfile *vf)
{
	return vf->classes;
}

/* Write len bytes from each of up to three pieces to path.tmp, then rename. */
static int write_file(const char *path, const void *p1, size_t n1, const void *p2, size_t n2,
                      const void *p3, size_t n3)
{
	char *tmp = NULL;
	FILE *f = NULL;
	size_t plen = strlen(path);
	int rc = 0;

	tmp = malloc(plen + 5);
	if (!tmp)
		return -ENOMEM;
	memcpy(tmp, path, plen);
	memcpy(tmp + plen, ".tmp", 5);
	f = fopen(tmp, "wb");
	if (!f) {
		rc = -errno;
		goto out;
	}
	if (fwrite(p1, 1, n1, f) != n1 || (n2 && fwrite(p2, 1, n2, f) != n2) ||
	    (n3 && fwrite(p3, 1, n3, f) != n3)) {
		rc = errno ? -errno : -EIO;
		goto out;
	}
	if (fclose(f) != 0) {
		f = NULL;
		rc = errno ? -errno : -EIO;
		goto out;
	}
	f = NULL;
	if (rename(tmp, path) != 0)
		rc = -errno;
out:
	if (f)
		fclose(f);
	if (rc)
		unlink(tmp);
	free(tmp);
	return rc;
}

int sv_vecfile_write(const char *path, const float *data, uint32_t n_rows, uint32_t dim,
                     uint32_t id_base, uint32_t feature, const uint8_t *classes, uint32_t n_classes)
{
	uint8_t h[SV_PAIRFILE_HEADER_BYTES] = {0};

	if (!path || !data || n_rows == 0 || dim == 0 || (classes && n_classes == 0) ||
	    (!classes && n_classes) || n_classes > 256 ||
	    (uint64_t)id_base + n_rows > UINT32_MAX + 1ull)
		return -EINVAL;
	for (uint32_t i = 0; classes && i < n_rows; i++)
		if (classes[i] >= n_classes)
			return -EINVAL;
	memcpy(h, VEC_MAGIC, 8);
	sv_put32(h + 8, SV_PAIRFILE_VERSION);
	sv_put32(h + 12, SV_PAIRFILE_HEADER_BYTES);
	sv_put32(h + 16, n_rows);
	sv_put32(h + 20, dim);
	sv_put32(h + 24, SV_PAIRFILE_DTYPE_F32);
	sv_put32(h + 28, id_base);
	sv_put32(h + 32, feature);
	sv_put32(h + 36, n_classes);
	return write_file(path, h, sizeof h, data, (size_t)n_rows * dim * sizeof(float), classes,
	                  classes ? n_rows : 0);
}

/* --------------------------------------------------------------- .pairs */

/* Validate n records against the id range; count positives.  Returns 0 or
 * SV_ERR_CORRUPT with the message naming the record. */
static int check_records(const struct sv_pair_rec *rec, uint32_t n, uint32_t id_lo, uint32_t id_hi,
                         uint32_t *n_pos, const char *name, char *err, size_t errlen)
{
	uint32_t pos = 0;

	for (uint32_t i = 0; i < n; i++) {
		struct sv_pair_rec r;

		memcpy(&r, rec + i, sizeof r);
		if (r.a < id_lo || r.a >= id_hi || r.b < id_lo || r.b >= id_hi) {
			seterr(err, errlen,
			       "%s: record %u: field '%s': found %u, expected in [%u, %u)", name, i,
			       (r.a < id_lo || r.a >= id_hi) ? "a" : "b",
			       (r.a < id_lo || r.a >= id_hi) ? r.a : r.b, id_lo, id_hi);
			return SV_ERR_CORRUPT;
		}
		if (r.a == r.b) {
			seterr(err, errlen,
			       "%s: record %u: fields 'a','b': found a == b == %u, "
			       "expected distinct ids",
			       name, i, r.a);
			return SV_ERR_CORRUPT;
		}
		if (r.label > 1) {
			seterr(err, errlen,
			       "%s: record %u: field 'label': found %u, expected 0 or 1", name, i,
			       r.label);
			return SV_ERR_CORRUPT;
		}
		pos += r.label;
	}
	*n_pos = pos;
	return 0;
}

static int pair_parse(struct sv_pairfile *pf, const char *name, char *err, size_t errlen)
{
	const uint8_t *b = pf->m.base;
	size_t len = pf->m.len;
	struct sv_pair_header h;
	uint32_t pos = 0;
	int rc = check_common(b, len, PAIR_MAGIC, name, err, errlen);

	if (rc)
		return rc;
	h.version = sv_get32(b + 8);
	h.header_bytes = sv_get32(b + 12);
	h.n_pairs = sv_get32(b + 16);
	h.n_pos = sv_get32(b + 20);
	h.dim = sv_get32(b + 24);
	h.record_bytes = sv_get32(b + 28);
	h.seed = sv_get32(b + 32);
	h.split = sv_get32(b + 36);
	h.id_lo = sv_get32(b + 40);
	h.id_hi = sv_get32(b + 44);
	if (h.record_bytes != SV_PAIRFILE_RECORD_BYTES) {
		seterr(err, errlen, "%s: field 'record_bytes': found %u, expected %u", name,
		       h.record_bytes, SV_PAIRFILE_RECORD_BYTES);
		return SV_ERR_VERSION;
	}
	rc = check_reserved(b, 48, name, err, errlen);
	if (rc)
		return rc;
	if (h.dim == 0) {
		seterr(err, errlen, "%s: field 'dim': found 0, expected > 0", name);
		return SV_ERR_SHAPE;
	}
	if (h.id_lo >= h.id_hi) {
		seterr(err, errlen, "%s: field 'id_hi': found %u, expected > id_lo %u", name,
		       h.id_hi, h.id_lo);
		return SV_ERR_SHAPE;
	}
	if (h.n_pos > h.n_pairs) {
		seterr(err, errlen, "%s: field 'n_pos': found %u, expected <= n_pairs %u", name,
		       h.n_pos, h.n_pairs);
		return SV_ERR_SHAPE;
	}
	rc = check_length(SV_PAIRFILE_HEADER_BYTES + (uint64_t)SV_PAIRFILE_RECORD_BYTES * h.n_pairs,
	                  len, name, "64 + 12*n_pairs", err, errlen);
	if (rc)
		return rc;
	pf->rec = (const struct sv_pair_rec *)(b + SV_PAIRFILE_HEADER_BYTES);
	rc = check_records(pf->rec, h.n_pairs, h.id_lo, h.id_hi, &pos, name, err, errlen);
	if (rc)
		return rc;
	if (pos != h.n_pos) {
		seterr(err, errlen,
		       "%s: field 'n_pos': found %u, expected %u (records with label 1)", name,
		       h.n_pos, pos);
		return SV_ERR_CORRUPT;
	}
	pf->h = h;
	return 0;
}

static int pair_finish(struct sv_pairfile **out, struct sv_pairfile *pf, const char *name,
                       char *err, size_t errlen)
{
	int rc = pair_parse(pf, name, err, errlen);

	if (rc) {
		sv_pairfile_close(pf);
		return rc;
	}
	*out = pf;
	return 0;
}

int sv_pairfile_open(struct sv_pairfile **out, const char *path, char *err, size_t errlen)
{
	struct sv_pairfile *pf;
	int rc;

	if (!out || !path) {
		seterr(err, errlen, "sv_pairfile_open: NULL argument");
		return -EINVAL;
	}
	pf = calloc(1, sizeof *pf);
	if (!pf)
		return -ENOMEM;
	rc = map_file(&pf->m, path, err, errlen);
	if (rc) {
		free(pf);
		return rc;
	}
	return pair_finish(out, pf, path, err, errlen);
}

int sv_pairfile_from_buffer(struct sv_pairfile **out, const void *buf, size_t len, const char *name,
                            char *err, size_t errlen)
{
	struct sv_pairfile *pf;

	if (!out || (!buf && len)) {
		seterr(err, errlen, "sv_pairfile_from_buffer: NULL argument");
		return -EINVAL;
	}
	pf = calloc(1, sizeof *pf);
	if (!pf)
		return -ENOMEM;
	pf->m.base = buf;
	pf->m.len = len;
	return pair_finish(out, pf, name ? name : "<buffer>", err, errlen);
}

void sv_pairfile_close(struct sv_pairfile *pf)
{
	if (!pf)
		return;
	unmap(&pf->m);
	free(pf);
}

const struct sv_pair_header *sv_pairfile_header(const struct sv_pairfile *pf)
{
	return &pf->h;
}

const struct sv_pair_rec *sv_pairfile_records(const struct sv_pairfile *pf)
{
	return pf->rec;
}

int sv_pairfile_check_vec(const struct sv_pairfile *pf, const struct sv_vecfile *vf, char *err,
                          size_t errlen)
{
	const struct sv_pair_header *ph;
	const struct sv_vec_header *vh;
	uint64_t vhi;

	if (!pf || !vf) {
		seterr(err, errlen, "sv_pairfile_check_vec: NULL argument");
		return -EINVAL;
	}
	ph = &pf->h;
	vh = &vf->h;
	vhi = (uint64_t)vh->id_base + vh->n_rows;
	if (ph->dim != vh->dim) {
		seterr(err, errlen, "pairs field 'dim': found %u, expected %u (the .vec dim)",
		       ph->dim, vh->dim);
		return SV_ERR_SHAPE;
	}
	if (ph->id_lo < vh->id_base || ph->id_hi > vhi) {
		seterr(err, errlen,
		       "pairs fields 'id_lo','id_hi': found [%u, %u), expected inside [%u, %llu) "
		       "(the .vec ids)",
		       ph->id_lo, ph->id_hi, vh->id_base, (unsigned long long)vhi);
		return SV_ERR_RANGE;
	}
	if (!vf->classes)
		return 0;
	for (uint32_t i = 0; i < ph->n_pairs; i++) {
		struct sv_pair_rec r;
		uint8_t ca, cb;

		memcpy(&r, pf->rec + i, sizeof r);
		ca = vf->classes[r.a - vh->id_base];
		cb = vf->classes[r.b - vh->id_base];
		if (r.class_a != ca || r.class_b != cb) {
			seterr(err, errlen,
			       "pairs record %u: fields 'class_a','class_b': found %u,%u, "
			       "expected %u,%u (the .vec class block)",
			       i, r.class_a, r.class_b, ca, cb);
			return SV_ERR_CORRUPT;
		}
		if (r.label != (ca == cb)) {
			seterr(err, errlen,
			       "pairs record %u: field 'label': found %u, expected %u "
			       "(classes %u,%u)",
			       i, r.label, ca == cb, ca, cb);
			return SV_ERR_CORRUPT;
		}
	}
	return 0;
}

int sv_pairfile_write(const char *path, const struct sv_pair_rec *rec, uint32_t n_pairs,
                      uint32_t dim, uint32_t seed, uint32_t split, uint32_t id_lo, uint32_t id_hi)
{
	uint8_t h[SV_PAIRFILE_HEADER_BYTES] = {0};
	uint32_t pos = 0;

	if (!path || (!rec && n_pairs) || dim == 0 || id_lo >= id_hi)
		return -EINVAL;
	if (check_records(rec, n_pairs, id_lo, id_hi, &pos, "", NULL, 0))
		return SV_ERR_CORRUPT;
	memcpy(h, PAIR_MAGIC, 8);
	sv_put32(h + 8, SV_PAIRFILE_VERSION);
	sv_put32(h + 12, SV_PAIRFILE_HEADER_BYTES);
	sv_put32(h + 16, n_pairs);
	sv_put32(h + 20, pos);
	sv_put32(h + 24, dim);
	sv_put32(h + 28, SV_PAIRFILE_RECORD_BYTES);
	sv_put32(h + 32, seed);
	sv_put32(h + 36, split);
	sv_put32(h + 40, id_lo);
	sv_put32(h + 44, id_hi);
	return write_file(path, h, sizeof h, rec, (size_t)n_pairs * SV_PAIRFILE_RECORD_BYTES, NULL,
	                  0);
}

uint64_t sv_pairfile_fingerprint(const struct sv_pairfile *pf, const struct sv_vecfile *vf)
{
	const struct sv_pair_header *ph;
	const struct sv_vec_header *vh;
	uint64_t h = SV_FNV1A64_INIT;

	if (pf == NULL || vf == NULL)
		return 0;
	ph = sv_pairfile_header(pf);
	vh = sv_vecfile_header(vf);
	h = sv_fnv1a64(h, vh, sizeof(*vh));
	h = sv_fnv1a64(h, sv_vecfile_data(vf), (size_t)vh->n_rows * vh->dim * sizeof(float));
	h = sv_fnv1a64(h, ph, sizeof(*ph));
	return sv_fnv1a64(h, sv_pairfile_records(pf), sizeof(struct sv_pair_rec) * ph->n_pairs);
}
