/*
 * identity: names of the identity vocabulary.
 */
#include "identity.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

const char *
identity_source_name(unsigned source)
{
	static const char *const names[] = {
		[IDENTITY_SRC_INVENTORY] = "inventory",
		[IDENTITY_SRC_OUI] = "oui",
		[IDENTITY_SRC_SIGNATURE] = "signature",
		[IDENTITY_SRC_HOSTNAME] = "hostname",
		[IDENTITY_SRC_PIN] = "pinned",
	};

	if (source >= sizeof(names) / sizeof(names[0]))
		return NULL;
	return names[source];
}

static const char *const strength_names[] = {
	[IDENTITY_STRENGTH_ROM] = "rom",
	[IDENTITY_STRENGTH_APP] = "app",
	[IDENTITY_STRENGTH_OS] = "os",
};

const char *
identity_strength_name(unsigned strength)
{
	return strength < sizeof(strength_names) / sizeof(strength_names[0])
		       ? strength_names[strength]
		       : NULL;
}

int
identity_strength_from_name(const char *name, enum identity_strength *out)
{
	for (unsigned i = 0; i < sizeof(strength_names) / sizeof(strength_names[0]); i++) {
		if (strcmp(strength_names[i], name) == 0) {
			*out = (enum identity_strength)i;
			return 0;
		}
	}
	return -EINVAL;
}

unsigned
identity_os_from_name(const char *family)
{
	static const struct {
		const char *name;
		unsigned bit;
	} fams[] = {
		{"Apple", IDENTITY_OS_APPLE},
		{"Android", IDENTITY_OS_ANDROID},
		{"Windows", IDENTITY_OS_WINDOWS},
		{"Linux", IDENTITY_OS_LINUX},
	};
	for (size_t i = 0; i < sizeof(fams) / sizeof(fams[0]); i++)
		if (strcasecmp(fams[i].name, family) == 0)
			return fams[i].bit;
	return IDENTITY_OS_OTHER;
}
