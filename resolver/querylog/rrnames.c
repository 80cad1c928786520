/*
 * rrnames: record type and rcode mnemonics for the query log and its readers.
 */
#include "rrnames.h"

#include <stdio.h>

#include <ldns/ldns.h>

const char *
rrnames_type(uint16_t type, char *buf)
{
	/* query-only types ldns has no descriptor for */
	static const char *const meta[] = { "IXFR", "AXFR", "MAILB", "MAILA", "ANY" };
	const ldns_rr_descriptor *d = ldns_rr_descript(type);

	if (d != NULL && d->_type == type && d->_name != NULL)
		return d->_name;
	if (type >= 251 && type <= 255)
		return meta[type - 251];
	snprintf(buf, 16, "TYPE%u", (unsigned)type);
	return buf;
}

const char *
rrnames_rcode(uint8_t rcode, char *buf)
{
	/* IANA "DNS RCODEs" mnemonics (ldns spells 4 "NOTIMPL") */
	static const char *const names[] = {
		[0] = "NOERROR",   [1] = "FORMERR",   [2] = "SERVFAIL", [3] = "NXDOMAIN",
		[4] = "NOTIMP",	   [5] = "REFUSED",   [6] = "YXDOMAIN", [7] = "YXRRSET",
		[8] = "NXRRSET",   [9] = "NOTAUTH",   [10] = "NOTZONE", [11] = "DSOTYPENI",
		[16] = "BADVERS",  [17] = "BADKEY",   [18] = "BADTIME", [19] = "BADMODE",
		[20] = "BADNAME",  [21] = "BADALG",   [22] = "BADTRUNC", [23] = "BADCOOKIE",
	};

	if (rcode < sizeof(names) / sizeof(names[0]) && names[rcode] != NULL)
		return names[rcode];
	snprintf(buf, 16, "RCODE%u", (unsigned)rcode);
	return buf;
}
