/*
 * identity: names of the identity vocabulary.
 */
#include "identity.h"

#include <stddef.h>

const char *
identity_source_name(unsigned source)
{
	static const char *const names[] = {
		[IDENTITY_SRC_INVENTORY] = "inventory",
		[IDENTITY_SRC_OUI] = "oui",
		[IDENTITY_SRC_SIGNATURE] = "signature",
		[IDENTITY_SRC_HOSTNAME] = "hostname",
	};

	if (source >= sizeof(names) / sizeof(names[0]))
		return NULL;
	return names[source];
}
