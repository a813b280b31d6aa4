/* error.c - names for every libsimverify return code (see sv/error.h). */
#include <lmdb.h>
#include <string.h>

#include "sv/error.h"



const char *sv_strerror(int rc)
{
	switch (rc) {
	case SV_OK: return "success";
	case SV_ERR_SHAPE: return "dimension or count mismatch";
	case SV_ERR_NONFINITE: return "NaN or Inf in input";
	case SV_ERR_RANGE: return "value out of range";
	case SV_ERR_STATE: return "invalid in the current state";
	case SV_ERR_NOTFOUND: return "not found";
	case SV_ERR_TRUNCATED: return "truncated input";
	case SV_ERR_MAGIC: return "bad magic";
	case SV_ERR_VERSION: return "unsupported version";
	case SV_ERR_TOOBIG: return "size exceeds limit";
	case SV_ERR_CORRUPT: return "stored data is corrupt";
	case SV_ERR_STORE_DIMS: return "store was created with other dimensions";
	case SV_ERR_STORE_SCHEMA: return "store has another schema version";
	case SV_ERR_STORE_SETTINGS: return "store was created with other fixed settings";
	case SV_ERR_STORE_FULL: return "store map size reached store.max_map_size";
	case SV_ERR_DUPLICATE: return "duplicate (client id, sequence)";
	case SV_ERR_STALE: return "client sequence older than its de-duplication window";
	case SV_ERR_PROTO: return "malformed message";
	case SV_ERR_PROTO_VERB: return "unknown verb";
	case SV_ERR_CONFIG: return "invalid configuration";
	case SV_ERR_METRICS_ONECLASS: return "need scores of both classes (positives and negatives)";
	default: break;
	}
	if (rc >= MDB_KEYEXIST && rc <= MDB_LAST_ERRCODE)
		return mdb_strerror(rc);
	if (rc < 0 && rc > -4096)
		return strerror(-rc);
	return "unknown error";
}
