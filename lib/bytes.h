/* bytes.h - little-endian fields and FNV-1a, for lib/ only (not installed).
 *
 * Every on-disk and on-wire integer in simverify is little-endian (the wire
 * format, the store's records, the pair files, the optimizer and journal
 * blobs); floats travel as the little-endian bytes of their IEEE-754 bit
 * pattern.  These are the one implementation: sv_getN reads N bits at p, any
 * alignment; sv_putN writes them.  On a little-endian host each is one
 * memcpy (a plain load or store); elsewhere the bytes are assembled in
 * order.
 *
 * sv_fnv1a64 is 64-bit FNV-1a, continued from h (start with
 * SV_FNV1A64_INIT): item keys, ids in hash tables, blob checksums and
 * fingerprints.  Not cryptographic.
 *
 * Code outside lib/ uses the public functions built on these (sv/journal.h's
 * item key, sv/store.h's content ids and fingerprints), never this header.
 */
#ifndef SV_LIB_BYTES_H
#define SV_LIB_BYTES_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define SV_HOST_LE 1
#else
#define SV_HOST_LE 0
#endif

#define SV_FNV1A64_INIT 0xcbf29ce484222325ULL
#define SV_FNV1A64_PRIME 0x100000001b3ULL

static inline uint64_t sv_getle(const void *p, int n)
{
	const uint8_t *b = p;
	uint64_t v = 0;

	for (int i = n - 1; i >= 0; i--)
		v = v << 8 | b[i];
	return v;
}

static inline void sv_putle(void *p, uint64_t v, int n)
{
	uint8_t *b = p;

	for (int i = 0; i < n; i++)
		b[i] = (uint8_t)(v >> (8 * i));
}

static inline uint16_t sv_get16(const void *p)
{
	uint16_t v;

	if (!SV_HOST_LE)
		return (uint16_t)sv_getle(p, 2);
	memcpy(&v, p, 2);
	return v;
}

static inline uint32_t sv_get32(const void *p)
{
	uint32_t v;

	if (!SV_HOST_LE)
		return (uint32_t)sv_getle(p, 4);
	memcpy(&v, p, 4);
	return v;
}

static inline uint64_t sv_get64(const void *p)
{
	uint64_t v;

	if (!SV_HOST_LE)
		return sv_getle(p, 8);
	memcpy(&v, p, 8);
	return v;
}

static inline void sv_put16(void *p, uint16_t v)
{
	if (SV_HOST_LE)
		memcpy(p, &v, 2);
	else
		sv_putle(p, v, 2);
}

static inline void sv_put32(void *p, uint32_t v)
{
	if (SV_HOST_LE)
		memcpy(p, &v, 4);
	else
		sv_putle(p, v, 4);
}

static inline void sv_put64(void *p, uint64_t v)
{
	if (SV_HOST_LE)
		memcpy(p, &v, 8);
	else
		sv_putle(p, v, 8);
}

static inline float sv_getf32(const void *p)
{
	uint32_t u = sv_get32(p);
	float f;

	memcpy(&f, &u, 4);
	return f;
}

static inline double sv_getf64(const void *p)
{
	uint64_t u = sv_get64(p);
	double f;

	memcpy(&f, &u, 8);
	return f;
}

static inline void sv_putf32(void *p, float f)
{
	uint32_t u;

	memcpy(&u, &f, 4);
	sv_put32(p, u);
}

static inline void sv_putf64(void *p, double f)
{
	uint64_t u;

	memcpy(&u, &f, 8);
	sv_put64(p, u);
}

static inline uint64_t sv_fnv1a64(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= SV_FNV1A64_PRIME;
	}
	return h;
}

#endif
