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

/* One memcpy on a little-endian host (the compiler makes it a plain load or
 * store); the bytes in order elsewhere. */
#define SV_LE_GET(bits)                                                                   \
	static inline uint##bits##_t sv_get##bits(const void *p)                           \
	{                                                                                   \
		uint##bits##_t v;                                                          \
		return SV_HOST_LE ? (memcpy(&v, p, sizeof(v)), v)                          \
		                  : (uint##bits##_t)sv_getle(p, (int)sizeof(v));           \
	}                                                                                   \
	static inline void sv_put##bits(void *p, uint##bits##_t v)                         \
	{                                                                                   \
		if (SV_HOST_LE)                                                            \
			memcpy(p, &v, sizeof(v));                                          \
		else                                                                       \
			sv_putle(p, v, (int)sizeof(v));                                    \
	}
SV_LE_GET(16)
SV_LE_GET(32)
SV_LE_GET(64)
#undef SV_LE_GET

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
