/*
 * record: a query-log record as text and as one JSON line (see record.h).
 *
 * The formatter runs once per record on the writer thread. A line has a bounded length (see
 * LINE_BOUND below, about half of QUERYLOG_LINE_MAX), so it is written without a bounds check
 * per field into a buffer of QUERYLOG_LINE_MAX octets: the caller's when it is that large (the
 * writer's), else a local one copied when the line fits. Numbers, addresses, the MAC and plain
 * names (from their wire octets) are formatted by hand, the date of a timestamp once per second.
 */
#include "record.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "json.h"
#include "rrnames.h"

/* ---- formatting ---- */

/* The worst-case line: fixed text and numbers (434 octets), group and list (QUERYLOG_NAME_MAX
 * octets, 6 per octet as \u00XX) and device and vendor the same, qname and rule (255 wire
 * octets, 5 per octet as \\DDD). */
#define LINE_BOUND                                                                      \
	(434 + 6 * (2 * QUERYLOG_NAME_MAX + IDENTITY_NAME_MAX + IDENTITY_VENDOR_MAX) + 8 + \
	 2 * (5 * NAMES_MAX_WIRE + 2))
_Static_assert(LINE_BOUND + 2 < QUERYLOG_LINE_MAX, "a line always fits QUERYLOG_LINE_MAX");

/* An append-only cursor into a buffer that has room for a whole line. */
struct out {
	char *p;
	size_t len;
};

static inline void
put(struct out *o, const char *s, size_t n)
{
	memcpy(o->p + o->len, s, n);
	o->len += n;
}

static inline void
put_str(struct out *o, const char *s)
{
	put(o, s, strlen(s));
}

/* A string literal, its length known at compile time. */
#define puts_lit(o, lit) put((o), "" lit, sizeof(lit) - 1)

static void
put_uint(struct out *o, uint64_t v)
{
	char tmp[24];
	size_t i = sizeof(tmp);

	do {
		tmp[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	put(o, tmp + i, sizeof(tmp) - i);
}


/* json_write_str's output callback: the same bounded append. */
static void
put_cb(void *arg, const char *s, size_t n)
{
	put(arg, s, n);
}

/* A JSON string: quotes, backslash and control characters escaped; invalid UTF-8 becomes
 * U+FFFD so the line stays valid JSON whatever the octets (json.h). A string of printable
 * ASCII other than '"' and '\\' (almost every name) is copied as it is, which is what
 * json_write_str writes for it, without going through its callback three times. */
static inline void
put_json_str(struct out *o, const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0;

	while (i < n && u[i] >= 0x20 && u[i] < 0x7f && u[i] != '"' && u[i] != '\\')
		i++;
	if (i < n) {
		json_write_str(s, n, put_cb, o);
		return;
	}
	put(o, "\"", 1);
	put(o, s, n);
	put(o, "\"", 1);
}

/* "YYYY-MM-DDTHH:MM:SS" of the last second formatted by this thread: gmtime_r and the date
 * digits once per second instead of once per record. */
static _Thread_local struct {
	bool valid;
	time_t secs;
	char text[40];
	size_t len;
} ts_cache;

static void
put_ts(struct out *o, uint64_t ts_ms)
{
	time_t secs = (time_t)(ts_ms / 1000);
	unsigned ms = (unsigned)(ts_ms % 1000);

	if (!ts_cache.valid || ts_cache.secs != secs) {
		struct tm tm;
		if (gmtime_r(&secs, &tm) == NULL)
			memset(&tm, 0, sizeof(tm));
		int n = snprintf(ts_cache.text, sizeof(ts_cache.text),
				 "\"%04d-%02d-%02dT%02d:%02d:%02d.", tm.tm_year + 1900, tm.tm_mon + 1,
				 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
		if (n < 0 || (size_t)n >= sizeof(ts_cache.text))
			n = snprintf(ts_cache.text, sizeof(ts_cache.text), "\"0000-00-00T00:00:00.");
		ts_cache.len = (size_t)n;
		ts_cache.secs = secs;
		ts_cache.valid = true;
	}
	char tail[5] = { (char)('0' + ms / 100), (char)('0' + ms / 10 % 10), (char)('0' + ms % 10),
			 'Z', '"' };
	put(o, ts_cache.text, ts_cache.len);
	put(o, tail, sizeof(tail));
}

/* The decimal digits of 0..255, then their count: 4 octets copied, the count kept. */
static const char octet_text[256][4] = {
	"0\0\0\1", "1\0\0\1", "2\0\0\1", "3\0\0\1", "4\0\0\1", "5\0\0\1", "6\0\0\1", "7\0\0\1",
	"8\0\0\1", "9\0\0\1", "10\0\2", "11\0\2", "12\0\2", "13\0\2", "14\0\2", "15\0\2", "16\0\2",
	"17\0\2", "18\0\2", "19\0\2", "20\0\2", "21\0\2", "22\0\2", "23\0\2", "24\0\2", "25\0\2",
	"26\0\2", "27\0\2", "28\0\2", "29\0\2", "30\0\2", "31\0\2", "32\0\2", "33\0\2", "34\0\2",
	"35\0\2", "36\0\2", "37\0\2", "38\0\2", "39\0\2", "40\0\2", "41\0\2", "42\0\2", "43\0\2",
	"44\0\2", "45\0\2", "46\0\2", "47\0\2", "48\0\2", "49\0\2", "50\0\2", "51\0\2", "52\0\2",
	"53\0\2", "54\0\2", "55\0\2", "56\0\2", "57\0\2", "58\0\2", "59\0\2", "60\0\2", "61\0\2",
	"62\0\2", "63\0\2", "64\0\2", "65\0\2", "66\0\2", "67\0\2", "68\0\2", "69\0\2", "70\0\2",
	"71\0\2", "72\0\2", "73\0\2", "74\0\2", "75\0\2", "76\0\2", "77\0\2", "78\0\2", "79\0\2",
	"80\0\2", "81\0\2", "82\0\2", "83\0\2", "84\0\2", "85\0\2", "86\0\2", "87\0\2", "88\0\2",
	"89\0\2", "90\0\2", "91\0\2", "92\0\2", "93\0\2", "94\0\2", "95\0\2", "96\0\2", "97\0\2",
	"98\0\2", "99\0\2", "100\3", "101\3", "102\3", "103\3", "104\3", "105\3", "106\3", "107\3",
	"108\3", "109\3", "110\3", "111\3", "112\3", "113\3", "114\3", "115\3", "116\3", "117\3",
	"118\3", "119\3", "120\3", "121\3", "122\3", "123\3", "124\3", "125\3", "126\3", "127\3",
	"128\3", "129\3", "130\3", "131\3", "132\3", "133\3", "134\3", "135\3", "136\3", "137\3",
	"138\3", "139\3", "140\3", "141\3", "142\3", "143\3", "144\3", "145\3", "146\3", "147\3",
	"148\3", "149\3", "150\3", "151\3", "152\3", "153\3", "154\3", "155\3", "156\3", "157\3",
	"158\3", "159\3", "160\3", "161\3", "162\3", "163\3", "164\3", "165\3", "166\3", "167\3",
	"168\3", "169\3", "170\3", "171\3", "172\3", "173\3", "174\3", "175\3", "176\3", "177\3",
	"178\3", "179\3", "180\3", "181\3", "182\3", "183\3", "184\3", "185\3", "186\3", "187\3",
	"188\3", "189\3", "190\3", "191\3", "192\3", "193\3", "194\3", "195\3", "196\3", "197\3",
	"198\3", "199\3", "200\3", "201\3", "202\3", "203\3", "204\3", "205\3", "206\3", "207\3",
	"208\3", "209\3", "210\3", "211\3", "212\3", "213\3", "214\3", "215\3", "216\3", "217\3",
	"218\3", "219\3", "220\3", "221\3", "222\3", "223\3", "224\3", "225\3", "226\3", "227\3",
	"228\3", "229\3", "230\3", "231\3", "232\3", "233\3", "234\3", "235\3", "236\3", "237\3",
	"238\3", "239\3", "240\3", "241\3", "242\3", "243\3", "244\3", "245\3", "246\3", "247\3",
	"248\3", "249\3", "250\3", "251\3", "252\3", "253\3", "254\3", "255\3",
};

/* Dotted quad without inet_ntop (which goes through sprintf). */
static void
ipv4_text(const uint8_t *a, char *buf)
{
	char *p = buf;

	for (int i = 0; i < 4; i++) {
		const char *d = octet_text[a[i]];
		memcpy(p, d, 4);
		p += d[3];
		*p++ = i < 3 ? '.' : '\0';
	}
}

/* The client's IPv4 address (or IPv4-mapped IPv6) as a JSON string, written in place; false
 * for another family. */
static bool
put_ipv4(struct out *o, const struct sockaddr_storage *ss)
{
	const uint8_t *a;

	if (ss->ss_family == AF_INET)
		a = (const uint8_t *)&((const struct sockaddr_in *)ss)->sin_addr;
	else if (ss->ss_family == AF_INET6 &&
	         IN6_IS_ADDR_V4MAPPED(&((const struct sockaddr_in6 *)ss)->sin6_addr))
		a = &((const struct sockaddr_in6 *)ss)->sin6_addr.s6_addr[12];
	else
		return false;
	char *p = o->p + o->len;
	*p++ = '"';
	ipv4_text(a, p);
	o->len += 1 + strlen(p);
	o->p[o->len++] = '"';
	return true;
}

/* IP text of ss; IPv4-mapped IPv6 shown as IPv4. Returns 0 for an unknown family. */
static int
addr_text(const struct sockaddr_storage *ss, char *buf, size_t cap, uint16_t *port,
	  bool *is_v6)
{
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
		if (cap < INET_ADDRSTRLEN)
			return 0;
		ipv4_text((const uint8_t *)&sin->sin_addr, buf);
		*port = ntohs(sin->sin_port);
		*is_v6 = false;
		return 1;
	}
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
		*port = ntohs(sin6->sin6_port);
		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
			if (cap < INET_ADDRSTRLEN)
				return 0;
			ipv4_text(&sin6->sin6_addr.s6_addr[12], buf);
			*is_v6 = false;
			return 1;
		}
		if (inet_ntop(AF_INET6, &sin6->sin6_addr, buf, (socklen_t)cap) == NULL)
			return 0;
		*is_v6 = true;
		return 1;
	}
	return 0;
}

/* "aa:bb:cc:dd:ee:ff" and a NUL into buf[18]. */
static void
mac_text(const uint8_t *mac, char *buf)
{
	static const char hex[] = "0123456789abcdef";

	for (int i = 0; i < 6; i++) {
		buf[3 * i] = hex[mac[i] >> 4];
		buf[3 * i + 1] = hex[mac[i] & 15];
		buf[3 * i + 2] = i < 5 ? ':' : '\0';
	}
}

/* ---- names as wire octets ---- */

/* The octets of the uncompressed name at the start of w[0..len) if names_from_wire accepts it
 * as it is (labels of at most 63 octets, 255 in all, a root label before len), else 0; with
 * *at the offset of label `label` when the name has that many (label = its label count: the
 * root octet), else untouched. */
static size_t
wire_span(const uint8_t *w, size_t len, int label, size_t *at)
{
	size_t p = 0;
	unsigned nl = 0;

	for (;;) {
		if (p >= len)
			return 0;
		uint8_t c = w[p];
		if (label >= 0 && nl == (unsigned)label)
			*at = p;
		if (c == 0)
			return p + 1;
		if ((c & 0xc0) != 0 || p + 1 + c + 1 > NAMES_MAX_WIRE ||
		    nl + 1 >= NAMES_MAX_LABELS || p + 1 + c > len)
			return 0;
		p += 1 + (size_t)c;
		nl++;
	}
}

int
querylog_qname_wire(const struct querylog_record *r, const uint8_t **wire, size_t *len)
{
	if (r->qname_len == 0)
		return 0;
	size_t n = wire_span(r->qname_wire, r->qname_len, -1, NULL);
	if (n == 0)
		return -1;
	*wire = r->qname_wire;
	*len = n;
	return 1;
}

/* As querylog_text decides: the rule's own wire when it parses, else the question name's
 * suffix from label rule_label. */
int
querylog_rule_wire(const struct querylog_record *r, const uint8_t **wire, size_t *len)
{
	size_t n, at = SIZE_MAX;

	if (r->rule_len > 0) {
		n = wire_span(r->rule_wire, r->rule_len, -1, NULL);
		if (n == 0)
			return -1;
		*wire = r->rule_wire;
		*len = n;
		return 1;
	}
	if (r->rule_label < 0 || r->qname_len == 0)
		return 0;
	n = wire_span(r->qname_wire, r->qname_len, r->rule_label, &at);
	if (n == 0)
		return -1;
	if (at == SIZE_MAX)
		return 0; /* past the name's labels */
	*wire = r->qname_wire + at;
	*len = n - at;
	return 1;
}

/* Octets a name's text and its JSON string show as they are: 0x21..0x7e but '.', '\\', '"'
 * (names_to_text writes \DDD for those, which JSON then escapes again) and the capitals
 * (names_from_wire lowers them; canonical names have none). */
static const uint8_t plain_octet[256] = {
	['!'] = 1, ['#' ... '-'] = 1, ['/' ... '@'] = 1, ['['] = 1, [']' ... '~'] = 1,
};

/* The JSON string of the name of well-formed wire octets w when no octet needs an escape (what
 * names_to_text and put_json_str would write); false, with nothing written, otherwise. */
static bool
put_wire_name(struct out *o, const uint8_t *w)
{
	char *d = o->p + o->len;
	*d++ = '"';
	if (*w == 0)
		*d++ = '.';
	for (bool first = true; *w != 0; first = false) {
		uint8_t l = *w++;
		if (!first)
			*d++ = '.';
		for (uint8_t k = 0; k < l; k++) {
			if (!plain_octet[w[k]])
				return false;
			d[k] = (char)w[k];
		}
		d += l;
		w += l;
	}
	*d++ = '"';
	o->len = (size_t)(d - o->p);
	return true;
}

/* The JSON string of a name of well-formed wire octets; text: NAMES_MAX_TEXT octets of room
 * for a name that needs escapes. */
static void
put_name(struct out *o, const uint8_t *w, size_t len, char *text)
{
	struct names_name n;
	size_t pos = 0;

	if (put_wire_name(o, w))
		return;
	if (names_from_wire(&n, w, len, &pos) != 0) {
		puts_lit(o, "null"); /* not reached: the octets are a well-formed name */
		return;
	}
	size_t tl = names_to_text(&n, text);
	put_json_str(o, text, tl);
}

/* A fixed-size string field: empty = null; a full array need not be NUL-terminated. */
static void
put_json_str_or_null(struct out *o, const char *s, size_t cap)
{
	size_t n = s[0] != '\0' ? strnlen(s, cap) : 0;

	if (n == 0)
		puts_lit(o, "null");
	else
		put_json_str(o, s, n);
}

static const char *const action_names[] = {
	[QUERYLOG_ACTION_FORWARD] = "forward",	 [QUERYLOG_ACTION_CACHE] = "cache",
	[QUERYLOG_ACTION_SINKHOLE] = "sinkhole", [QUERYLOG_ACTION_NXDOMAIN] = "nxdomain",
	[QUERYLOG_ACTION_NODATA] = "nodata",	 [QUERYLOG_ACTION_REFUSED] = "refused",
	[QUERYLOG_ACTION_SERVFAIL] = "servfail", [QUERYLOG_ACTION_FORMERR] = "formerr",
	[QUERYLOG_ACTION_NOTIMP] = "notimp",	 [QUERYLOG_ACTION_STALE] = "stale",
};

const char *
querylog_action_name(uint8_t action)
{
	if (action >= sizeof(action_names) / sizeof(action_names[0]))
		return "unknown";
	return action_names[action];
}

static void
copy_field(char *dst, const char *src, size_t cap)
{
	size_t n = strnlen(src, cap);

	memcpy(dst, src, n);
	dst[n] = '\0';
}

void
querylog_text(const struct querylog_record *r, struct querylog_text *t)
{
	struct names_name name, rule;
	bool have_name = false;
	size_t pos = 0;
	uint16_t port;
	bool v6;

	if (!addr_text(&r->client, t->client, sizeof(t->client), &port, &v6))
		t->client[0] = '\0';
	t->upstream[0] = '\0';
	if (addr_text(&r->upstream, t->upstream, INET6_ADDRSTRLEN, &port, &v6)) {
		char ip[INET6_ADDRSTRLEN];
		memcpy(ip, t->upstream, sizeof(ip));
		snprintf(t->upstream, sizeof(t->upstream), v6 ? "[%s]:%u" : "%s:%u", ip,
			 (unsigned)port);
	}
	t->qname[0] = t->rule[0] = t->qtype[0] = '\0';
	if (r->qname_len > 0 && names_from_wire(&name, r->qname_wire, r->qname_len, &pos) == 0) {
		have_name = true;
		names_to_text(&name, t->qname);
		char num[16];
		const char *q = rrnames_type(r->qtype, num);
		copy_field(t->qtype, q, sizeof(t->qtype) - 1);
	}
	pos = 0;
	if (r->rule_len > 0 && names_from_wire(&rule, r->rule_wire, r->rule_len, &pos) == 0)
		names_to_text(&rule, t->rule);
	else if (have_name && r->rule_label >= 0 && (unsigned)r->rule_label <= name.nlabels)
		names_suffix_to_text(&name, (unsigned)r->rule_label, t->rule);
	char num[16];
	copy_field(t->rcode, rrnames_rcode(r->rcode, num), sizeof(t->rcode) - 1);
	t->group[0] = t->list[0] = '\0';
	if (r->has_group)
		copy_field(t->group, r->group, sizeof(r->group));
	if (r->has_list)
		copy_field(t->list, r->list, sizeof(r->list));
	t->mac[0] = '\0';
	if (r->has_mac)
		mac_text(r->mac, t->mac);
	copy_field(t->device, r->device, sizeof(r->device));
	copy_field(t->vendor, r->vendor, sizeof(r->vendor));
}

/* The line of r into buf (QUERYLOG_LINE_MAX octets), NUL-terminated; its length. */
static size_t
format_line(const struct querylog_record *r, char *buf)
{
	struct out o = {.p = buf, .len = 0};
	char ip[INET6_ADDRSTRLEN];
	char text[NAMES_MAX_TEXT];
	char num[16];
	struct names_name name;
	bool have_name = false;
	uint16_t port;
	bool v6;

	const uint8_t *qwire = NULL, *rwire = NULL;
	size_t qlen = 0, rlen = 0;
	int qkind = querylog_qname_wire(r, &qwire, &qlen);
	int rkind = querylog_rule_wire(r, &rwire, &rlen);
	/* the names through names_from_wire only when they are not plain wire octets */
	if (qkind < 0 || rkind < 0) {
		size_t pos = 0;
		if (names_from_wire(&name, r->qname_wire, r->qname_len, &pos) == 0)
			have_name = true;
	}

	puts_lit(&o, "{\"ts\":");
	put_ts(&o, r->ts_ms);

	puts_lit(&o, ",\"client\":");
	if (put_ipv4(&o, &r->client)) {
		/* written */
	} else if (addr_text(&r->client, ip, sizeof(ip), &port, &v6)) {
		put(&o, "\"", 1);
		put_str(&o, ip);
		put(&o, "\"", 1);
	} else {
		puts_lit(&o, "null");
	}

	if (r->tcp)
		puts_lit(&o, ",\"proto\":\"tcp\"");
	else
		puts_lit(&o, ",\"proto\":\"udp\"");

	puts_lit(&o, ",\"group\":");
	if (r->has_group)
		put_json_str(&o, r->group, strnlen(r->group, sizeof(r->group)));
	else
		puts_lit(&o, "null");

	puts_lit(&o, ",\"qname\":");
	if (qkind > 0) {
		put_name(&o, qwire, qlen, text);
	} else if (have_name) {
		size_t n = names_to_text(&name, text);
		put_json_str(&o, text, n);
	} else {
		puts_lit(&o, "null");
	}

	puts_lit(&o, ",\"qtype\":");
	if (r->qname_len > 0) {
		put(&o, "\"", 1);
		put_str(&o, rrnames_type(r->qtype, num));
		put(&o, "\"", 1);
	} else {
		puts_lit(&o, "null");
	}

	if (r->blocked)
		puts_lit(&o, ",\"blocked\":true");
	else
		puts_lit(&o, ",\"blocked\":false");

	puts_lit(&o, ",\"list\":");
	if (r->has_list)
		put_json_str(&o, r->list, strnlen(r->list, sizeof(r->list)));
	else
		puts_lit(&o, "null");

	puts_lit(&o, ",\"rule\":");
	struct names_name rule;
	size_t rule_pos = 0;
	if (rkind == 0) {
		puts_lit(&o, "null");
	} else if (rkind > 0) {
		put_name(&o, rwire, rlen, text);
	} else if (r->rule_len > 0 &&
	    names_from_wire(&rule, r->rule_wire, r->rule_len, &rule_pos) == 0) {
		size_t n = names_to_text(&rule, text);
		put_json_str(&o, text, n);
	} else if (have_name && r->rule_label >= 0 && (unsigned)r->rule_label <= name.nlabels) {
		size_t n = names_suffix_to_text(&name, (unsigned)r->rule_label, text);
		put_json_str(&o, text, n);
	} else {
		puts_lit(&o, "null");
	}

	puts_lit(&o, ",\"action\":\"");
	if (r->action < sizeof(action_names) / sizeof(action_names[0]))
		put_str(&o, action_names[r->action]);
	else
		puts_lit(&o, "unknown");

	puts_lit(&o, "\",\"rcode\":\"");
	put_str(&o, rrnames_rcode(r->rcode, num));

	puts_lit(&o, "\",\"upstream\":");
	if (addr_text(&r->upstream, ip, sizeof(ip), &port, &v6)) {
		put(&o, "\"", 1);
		if (v6)
			put(&o, "[", 1);
		put_str(&o, ip);
		put_str(&o, v6 ? "]:" : ":");
		put_uint(&o, port);
		put(&o, "\"", 1);
	} else {
		puts_lit(&o, "null");
	}

	puts_lit(&o, ",\"latency_us\":");
	put_uint(&o, r->latency_us);

	puts_lit(&o, ",\"mac\":");
	if (r->has_mac) {
		char mac[18];
		mac_text(r->mac, mac);
		put(&o, "\"", 1);
		put(&o, mac, 17);
		put(&o, "\"", 1);
	} else {
		puts_lit(&o, "null");
	}
	puts_lit(&o, ",\"device\":");
	put_json_str_or_null(&o, r->device, sizeof(r->device));
	puts_lit(&o, ",\"vendor\":");
	put_json_str_or_null(&o, r->vendor, sizeof(r->vendor));
	puts_lit(&o, ",\"vendor_source\":");
	const char *vs = identity_source_name(r->vendor_source);
	if (vs != NULL) {
		put(&o, "\"", 1);
		put_str(&o, vs);
		put(&o, "\"", 1);
	} else {
		puts_lit(&o, "null");
	}
	puts_lit(&o, "}\n");
	buf[o.len] = '\0';
	return o.len;
}

size_t
querylog_format(const struct querylog_record *r, char *buf, size_t cap)
{
	if (cap >= QUERYLOG_LINE_MAX)
		return format_line(r, buf);
	char tmp[QUERYLOG_LINE_MAX];
	size_t n = format_line(r, tmp);
	if (n + 1 > cap) {
		if (cap > 0)
			buf[0] = '\0';
		return 0;
	}
	memcpy(buf, tmp, n + 1);
	return n;
}

size_t
querylog_format_unlogged(uint64_t since_ms, uint64_t ts_ms, uint64_t forwarded, char *buf,
			 size_t cap)
{
	char tmp[256];
	struct out o = {.p = tmp, .len = 0};

	puts_lit(&o, "{\"ts\":");
	put_ts(&o, ts_ms);
	puts_lit(&o, ",\"type\":\"unlogged\",\"since\":");
	put_ts(&o, since_ms);
	puts_lit(&o, ",\"forwarded\":");
	put_uint(&o, forwarded);
	puts_lit(&o, "}\n");
	if (o.len + 1 > cap) {
		if (cap > 0)
			buf[0] = '\0';
		return 0;
	}
	memcpy(buf, tmp, o.len);
	buf[o.len] = '\0';
	return o.len;
}
