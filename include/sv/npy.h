/* sv/npy.h - NumPy .npy files holding one float32 matrix.
 *
 * The .npy format (numpy.lib.format) is a 6-byte magic "\x93NUMPY", a
 * major/minor version byte pair, a little-endian header length (uint16 in
 * version 1.0, uint32 in 2.0 and 3.0), an ASCII Python dict literal
 *     {'descr': '<f4', 'fortran_order': False, 'shape': (rows, cols), }
 * padded with spaces and ended by '\n' so the data starts on a 64-byte
 * boundary, then the raw array.
 *
 * This module covers exactly what simverify exchanges: little-endian float32
 * ('<f4'), C order, two dimensions (rows x cols, row-major).  A 1-D array
 * (shape (n,)) is read as one row of n.  Everything else (other dtypes,
 * Fortran order, 0-D or 3-D and up, object arrays) is refused with
 * SV_ERR_VERSION (an unsupported but well-formed file) or SV_ERR_MAGIC /
 * SV_ERR_CORRUPT (not an .npy file / a broken header).  The writer emits
 * version 1.0, which every numpy since 1.0 loads.  The host is assumed to be
 * little-endian (x86-64, aarch64).
 *
 * Left out: memory mapping, streaming, .npz archives.
 */
#ifndef SV_NPY_H
#define SV_NPY_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The largest header sv_npy_header() writes, in bytes (a multiple of 64). */
#define SV_NPY_HEADER_MAX 128

/* Encode the header for a rows x cols float32 C-order array into buf (cap
 * bytes, caller-owned).  *len receives the header size, a multiple of 64;
 * the array data follows it directly.  Returns 0, -EINVAL for NULL pointers
 * or a zero dimension, SV_ERR_TOOBIG if cap is too small. */
int sv_npy_header(char *buf, size_t cap, uint32_t rows, uint32_t cols, size_t *len);

/* Parse the header at the start of buf (len bytes, borrowed for the call).
 * On success writes *rows, *cols and *data_off (offset of the first float)
 * and checks that len holds the whole array.  Returns 0; SV_ERR_TRUNCATED if
 * buf ends before the header or the data; SV_ERR_MAGIC if buf is not .npy;
 * SV_ERR_VERSION for a dtype, order, rank or format version this module does
 * not handle; SV_ERR_CORRUPT for a malformed header dict; SV_ERR_TOOBIG for
 * dimensions beyond uint32 or an array beyond SIZE_MAX; -EINVAL for NULL. */
int sv_npy_parse(const void *buf, size_t len, uint32_t *rows, uint32_t *cols, size_t *data_off);

/* Write data (rows x cols floats, row-major, borrowed) to path as .npy,
 * replacing any file there.  The file is written beside path under a
 * temporary name and renamed into place, so readers never see half a file.
 * Returns 0, -EINVAL, or -errno from the file system. */
int sv_npy_save(const char *path, const float *data, uint32_t rows, uint32_t cols);

/* Read the .npy file at path.  *data receives a malloc'd rows x cols array
 * the caller frees with free().  Returns 0, -errno from the file system,
 * -ENOMEM, or any sv_npy_parse() error. */
int sv_npy_load(const char *path, float **data, uint32_t *rows, uint32_t *cols);

/* As sv_npy_load() but from an open file descriptor read to its end (a pipe
 * or standard input works).  The descriptor stays open and owned by the
 * caller. */
int sv_npy_load_fd(int fd, float **data, uint32_t *rows, uint32_t *cols);

#ifdef __cplusplus
}
#endif
#endif
