/* fuzz_config.c - fuzz target for the YAML config loader (sv/config.h).
 *
 * Each input is loaded as a config file over the defaults.  Invariants: the
 * loader returns 0 or SV_ERR_CONFIG; on failure at least one error was
 * reported and the config is unchanged; on success the config shows and
 * parses back to an equal config.  Any violation aborts.
 *
 * With -DSV_LIBFUZZER and -fsanitize=fuzzer it is a libFuzzer target;
 * otherwise replay.c's main() replays the files and directories named on
 * the command line (the 'fuzz' suite replays tests/fuzz/corpus/config). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sv/config.h"
#include "sv/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sv_config cfg, def, back;
	struct sv_config_errors errs;
	int rc;

	sv_config_defaults(&cfg);
	def = cfg;
	sv_config_errors_init(&errs);
	rc = sv_config_load_string(&cfg, "fuzz", (const char *)data, size, &errs);
	if (rc != 0 && rc != SV_ERR_CONFIG)
		abort();
	if (rc) {
		if (errs.count == 0 || !errs.text)
			abort();
		if (sv_config_diff(&cfg, &def, NULL, 0) != 0)
			abort();
	} else {
		size_t need = sv_config_show(&cfg, NULL, 0);
		char *buf = malloc(need + 1);
		if (!buf)
			abort();
		sv_config_show(&cfg, buf, need + 1);
		sv_config_defaults(&back);
		if (sv_config_load_string(&back, "show", buf, need, &errs) != 0)
			abort();
		if (sv_config_diff(&cfg, &back, NULL, 0) != 0)
			abort();
		free(buf);
		(void)sv_config_check(&cfg, &errs);
	}
	sv_config_errors_free(&errs);
	return 0;
}
