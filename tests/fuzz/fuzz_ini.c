/*
 * Fuzz target: the configuration parser (src/lib/ini.c).
 */
#include <stdint.h>
#include <stdlib.h>

#include "lib/ini.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ini *ini = ini_parse((const char *)data, size);
	for (size_t i = 0; i < ini->nentries; i++)
		if (ini->entries[i].line < 1)
			abort();
	ini_free(ini);
	return 0;
}
