/*
 * rrnames: DNS mnemonics without allocation, for the query log's text and the review commands.
 */
#ifndef VETO_RRNAMES_H
#define VETO_RRNAMES_H

#include <stdint.h>

/* "A", "AAAA", "TYPE65534"; buf for the numeric fallback must hold 16 octets. */
const char *rrnames_type(uint16_t type, char *buf);
/* "NOERROR", "NOTIMP" (IANA spelling), "RCODE23"; buf as above. */
const char *rrnames_rcode(uint8_t rcode, char *buf);

#endif
