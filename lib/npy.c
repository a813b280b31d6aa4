/* npy.c - read and write float32 C-order 2-D .npy files (see sv/npy.h).
 *
 * The header dict is parsed by a small scanner that looks up the three keys
 * numpy always writes; it does not evaluate Python literals in general.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sv/error.h"
#include "sv/npy.h"

static const char npy_magic[6] = {'\x93', 'N', 'U', 'M', 'P', 'Y'};

int sv_npy_header(char *buf, size_t cap, uint32_t rows, uint32_t cols, size_t *len)
{
	char dict[SV_NPY_HEADER_MAX];
	int n;
	size_t total;

	if (!buf || !len || rows == 0 || cols == 0)
		return -EINVAL;
	n = snprintf(dict, sizeof(dict),
	             "{'descr': '<f4', 'fortran_order': False, 'shape': (%u, %u), }", rows, cols);
	if (n < 0 || (size_t)n >= sizeof(dict))
		return SV_ERR_TOOBIG;
	/* 10 bytes of preamble, the dict, at least one '\n'; round up to 64. */
	total = (10 + (size_t)n + 1 + 63) / 64 * 64;
	if (total > cap)
		return SV_ERR_TOOBIG;
	memcpy(buf, npy_magic, 6);
	buf[6] = 1;
	buf[7] = 0;
	buf[8] = (char)((total - 10) & 0xff);
	buf[9] = (char)((total - 10) >> 8);
	memcpy(buf + 10, dict, (size_t)n);
	memset(buf + 10 + n, ' ', total - 10 - (size_t)n);
	buf[total - 1] = '\n';
	*len = total;
	return 0;
}

/* Find the value after 'key': in the dict text h (hlen bytes); NULL if absent. */
static const char *dict_value(const char *h, size_t hlen, const char *key)
{
	size_t klen = strlen(key);

	for (size_t i = 0; i + klen + 2 <= hlen; i++) {
		if ((h[i] != '\'' && h[i] != '"') || memcmp(h + i + 1, key, klen) != 0 ||
		    h[i + 1 + klen] != h[i])
			continue;
		i += klen + 2;
		while (i < hlen && (h[i] == ' ' || h[i] == ':'))
			i++;
		return i < hlen ? h + i : NULL;
	}
	return NULL;
}

/* Parse an unsigned decimal at *p (bounded by end), skipping blanks. */
static bool parse_dim(const char **p, const char *end, uint64_t *out)
{
	const char *s = *p;
	uint64_t v = 0;
	bool any = false;

	while (s < end && *s == ' ')
		s++;
	while (s < end && *s >= '0' && *s <= '9') {
		if (v > (UINT64_MAX - 9) / 10)
			return false;
		v = v * 10 + (uint64_t)(*s - '0');
		s++;
		any = true;
	}
	while (s < end && (*s == ' ' || *s == 'L'))
		s++;
	*p = s;
	*out = v;
	return any;
}

int sv_npy_parse(const void *buf, size_t len, uint32_t *rows, uint32_t *cols, size_t *data_off)
{
	const unsigned char *b = buf;
	const char *h, *end, *v;
	size_t hlen, pre;
	uint64_t dims[3];
	int ndim = 0;

	if (!buf || !rows || !cols || !data_off)
		return -EINVAL;
	if (len < 10)
		return len >= 6 && memcmp(b, npy_magic, 6) != 0 ? SV_ERR_MAGIC : SV_ERR_TRUNCATED;
	if (memcmp(b, npy_magic, 6) != 0)
		return SV_ERR_MAGIC;
	if (b[6] == 1) {
		pre = 10;
		hlen = (size_t)b[8] | (size_t)b[9] << 8;
	} else if (b[6] == 2 || b[6] == 3) {
		if (len < 12)
			return SV_ERR_TRUNCATED;
		pre = 12;
		hlen = (size_t)b[8] | (size_t)b[9] << 8 | (size_t)b[10] << 16 | (size_t)b[11] << 24;
	} else {
		return SV_ERR_VERSION;
	}
	if (hlen > len - pre)
		return SV_ERR_TRUNCATED;
	h = (const char *)b + pre;
	end = h + hlen;
	if (hlen < 2 || h[0] != '{')
		return SV_ERR_CORRUPT;

	v = dict_value(h, hlen, "descr");
	if (!v)
		return SV_ERR_CORRUPT;
	if ((size_t)(end - v) < 5 || (v[0] != '\'' && v[0] != '"'))
		return SV_ERR_CORRUPT;
	if (memcmp(v + 1, "<f4", 3) != 0 || v[4] != v[0])
		return SV_ERR_VERSION;

	v = dict_value(h, hlen, "fortran_order");
	if (!v)
		return SV_ERR_CORRUPT;
	if ((size_t)(end - v) >= 4 && memcmp(v, "True", 4) == 0)
		return SV_ERR_VERSION;
	if ((size_t)(end - v) < 5 || memcmp(v, "False", 5) != 0)
		return SV_ERR_CORRUPT;

	v = dict_value(h, hlen, "shape");
	if (!v || *v != '(')
		return SV_ERR_CORRUPT;
	v++;
	for (;;) {
		uint64_t d;

		while (v < end && *v == ' ')
			v++;
		if (v < end && *v == ')')
			break;
		if (ndim == 3 || !parse_dim(&v, end, &d))
			return ndim == 3 ? SV_ERR_VERSION : SV_ERR_CORRUPT;
		dims[ndim++] = d;
		if (v < end && *v == ',')
			v++;
		else if (v < end && *v == ')')
			break;
		else
			return SV_ERR_CORRUPT;
	}
	if (ndim == 1) {
		dims[1] = dims[0];
		dims[0] = 1;
	} else if (ndim != 2) {
		return SV_ERR_VERSION;
	}
	if (dims[0] > UINT32_MAX || dims[1] > UINT32_MAX)
		return SV_ERR_TOOBIG;
	if (dims[0] == 0 || dims[1] == 0)
		return SV_ERR_SHAPE;
	if (dims[0] * dims[1] > (SIZE_MAX - pre - hlen) / sizeof(float))
		return SV_ERR_TOOBIG;
	if (len - pre - hlen < dims[0] * dims[1] * sizeof(float))
		return SV_ERR_TRUNCATED;
	*rows = (uint32_t)dims[0];
	*cols = (uint32_t)dims[1];
	*data_off = pre + hlen;
	return 0;
}

static int write_all(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n > 0) {
		ssize_t w = write(fd, c, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

int sv_npy_save(const char *path, const float *data, uint32_t rows, uint32_t cols)
{
	char hdr[SV_NPY_HEADER_MAX];
	char *tmp = NULL;
	size_t hlen;
	int fd = -1, rc;

	if (!path || !data)
		return -EINVAL;
	rc = sv_npy_header(hdr, sizeof(hdr), rows, cols, &hlen);
	if (rc)
		return rc == SV_ERR_TOOBIG ? -EINVAL : rc;
	tmp = malloc(strlen(path) + 16);
	if (!tmp)
		return -ENOMEM;
	sprintf(tmp, "%s.tmp.%ld", path, (long)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		rc = -errno;
		goto out;
	}
	rc = write_all(fd, hdr, hlen);
	if (!rc)
		rc = write_all(fd, data, (size_t)rows * cols * sizeof(float));
	if (!rc && fsync(fd) != 0)
		rc = -errno;
	if (close(fd) != 0 && !rc)
		rc = -errno;
	fd = -1;
	if (!rc && rename(tmp, path) != 0)
		rc = -errno;
	if (rc)
		unlink(tmp);
out:
	free(tmp);
	return rc;
}

int sv_npy_load_fd(int fd, float **data, uint32_t *rows, uint32_t *cols)
{
	unsigned char *buf = NULL;
	size_t len = 0, cap = 0;
	uint32_t r, c;
	size_t off;
	float *out = NULL;
	int rc;

	if (fd < 0 || !data || !rows || !cols)
		return -EINVAL;
	for (;;) {
		ssize_t n;

		if (len == cap) {
			size_t ncap = cap ? cap * 2 : 65536;
			unsigned char *nb = realloc(buf, ncap);

			if (!nb) {
				rc = -ENOMEM;
				goto out;
			}
			buf = nb;
			cap = ncap;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	rc = buf ? sv_npy_parse(buf, len, &r, &c, &off) : SV_ERR_TRUNCATED;
	if (rc)
		goto out;
	out = malloc((size_t)r * c * sizeof(float));
	if (!out) {
		rc = -ENOMEM;
		goto out;
	}
	memcpy(out, buf + off, (size_t)r * c * sizeof(float));
	*data = out;
	*rows = r;
	*cols = c;
out:
	free(buf);
	return rc;
}

int sv_npy_load(const char *path, float **data, uint32_t *rows, uint32_t *cols)
{
	int fd, rc;

	if (!path || !data || !rows || !cols)
		return -EINVAL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	rc = sv_npy_load_fd(fd, data, rows, cols);
	close(fd);
	return rc;
}
