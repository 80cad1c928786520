/*
 * fuzz_config: the configuration loader (YAML parsing, checks, diagnostics) on arbitrary text.
 * Loads from memory; list files are not read (policy_new does that), so nothing touches disk.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "config.h"
#include "config_int.h"
#include "diag.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct diag d;
	struct config *cfg = NULL;
	diag_init(&d);
	int rc = config_load_text("fuzz.yaml", "/nonexistent", (const char *)data, size, &d, &cfg);
	/* Invariants: success <=> no error was reported, and cfg is set only on success. */
	if ((rc == 0) != (d.nerrors == 0) || (rc == 0) != (cfg != NULL))
		__builtin_trap();
	/* every message is one line of printable text: values from the file are quoted with
	 * their control octets replaced */
	for (size_t i = 0; i < d.n; i++) {
		if (d.v[i].text == NULL)
			__builtin_trap();
		for (const unsigned char *p = (const unsigned char *)d.v[i].text; *p != '\0'; p++)
			if (*p < 0x20 || *p == 0x7f)
				__builtin_trap();
	}
	if (cfg != NULL && (cfg->block.action == CONFIG_ACTION_INHERIT ||
			    cfg->cache.min_ttl > cfg->cache.max_ttl))
		__builtin_trap();
	config_free(&cfg);
	diag_clear(&d);
	return 0;
}
