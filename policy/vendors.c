/*
 * vendors: the vendor names (see vendors.h).
 */
#include <string.h>
#include <strings.h>

#include "vendors.h"

const char *const vendors_names[VENDORS_COUNT] = {
        "Xiaomi", "Oppo", "OnePlus", "Realme", "Vivo", "Huawei", "Honor", "Samsung",
};

int
vendors_find(const char *name, size_t len)
{
	for (int i = 0; i < VENDORS_COUNT; i++)
		if (strlen(vendors_names[i]) == len &&
		    strncasecmp(name, vendors_names[i], len) == 0)
			return i;
	return -1;
}
