/*
 * lists: list file formats (see lists.h).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "lists.h"

#define NOTE_TEXT_MAX 80	/* octets of an offending entry quoted in a note */

static const char *const boilerplate[] = {
	"localhost", "localhost.localdomain", "local", "broadcasthost", "ip6-localhost",
	"ip6-loopback", "ip6-localnet", "ip6-mcastprefix", "ip6-allnodes", "ip6-allrouters",
	"ip6-allhosts",
};

static bool
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* Hosts-file entries that name the machine itself, and IPv4 literals such as "0.0.0.0". */
static bool
is_boilerplate(const struct names_name *n)
{
	if (n->nlabels == 4) {
		bool numeric = true;
		for (unsigned i = 0; i < 4 && numeric; i++) {
			const uint8_t *l = n->wire + n->label_off[i];
			if (l[0] > 3)
				numeric = false;
			for (unsigned k = 1; k <= l[0] && numeric; k++)
				numeric = l[k] >= '0' && l[k] <= '9';
		}
		if (numeric)
			return true;
	}
	if (n->nlabels > 2)
		return false;
	char text[NAMES_MAX_TEXT];
	names_to_text(n, text);
	for (size_t i = 0; i < sizeof(boilerplate) / sizeof(boilerplate[0]); i++)
		if (strcmp(text, boilerplate[i]) == 0)
			return true;
	return false;
}

int
lists_parse_name(const char *text, size_t len, struct names_name *out, const char **why)
{
	struct names_name n;
	if (len >= 2 && text[0] == '*' && text[1] == '.') {
		text += 2;
		len -= 2;
	}
	int rc = names_from_text(&n, text, len, why);
	if (rc != 0)
		return rc;
	if (n.nlabels == 0) {
		*why = "the root name would match every name (use default: deny)";
		return -EINVAL;
	}
	if (is_boilerplate(&n))
		return 1;
	*out = n;
	return 0;
}

static bool
is_address(const char *tok, size_t len)
{
	char buf[INET6_ADDRSTRLEN + 1];
	uint8_t addr[16];
	if (len == 0 || len >= sizeof(buf))
		return false;
	memcpy(buf, tok, len);
	buf[len] = '\0';
	if (memchr(buf, ':', len) != NULL)
		return inet_pton(AF_INET6, buf, addr) == 1;
	return inet_pton(AF_INET, buf, addr) == 1;
}

struct line_ctx {
	const char *file;
	struct diag *diag;
	lists_name_cb *cb;
	void *arg;
	struct lists_stats *st;
	size_t lineno;
	const char *why;	/* first reason something on the line was skipped */
	const char *bad;	/* ... and the offending text */
	size_t badlen;
};

static void
skip(struct line_ctx *c, const char *why, const char *tok, size_t len)
{
	if (c->why == NULL) {
		c->why = why;
		c->bad = tok;
		c->badlen = len;
	}
}

/* Accepts one name token; returns the callback's negative value to stop. */
static int
take_name(struct line_ctx *c, const char *tok, size_t len)
{
	struct names_name n;
	const char *why = NULL;
	int rc = lists_parse_name(tok, len, &n, &why);
	if (rc < 0) {
		skip(c, why, tok, len);
		return 0;
	}
	if (rc == 1) {
		c->st->ignored++;
		return 0;
	}
	c->st->names++;
	rc = c->cb(c->arg, &n);
	return rc < 0 ? rc : 0;
}

static int
adblock_rule(struct line_ctx *c, const char *tok, size_t len)
{
	const char *name = tok + 2;
	size_t rest = len - 2;
	const char *caret = memchr(name, '^', rest);
	if (memchr(name, '$', rest) != NULL) {
		skip(c, "adblock rule with options", tok, len);
		return 0;
	}
	if (memchr(name, '/', rest) != NULL) {
		skip(c, "adblock rule with a path", tok, len);
		return 0;
	}
	if (caret == NULL) {
		skip(c, "adblock rule without '^'", tok, len);
		return 0;
	}
	size_t nlen = (size_t)(caret - name);
	size_t after = rest - nlen - 1;
	if (after > 1 || (after == 1 && caret[1] != '|')) {
		skip(c, "adblock rule with text after '^'", tok, len);
		return 0;
	}
	return take_name(c, name, nlen);
}

static int
parse_line(struct line_ctx *c, const char *s, size_t n)
{
	size_t i = 0;
	while (i < n && is_space(s[i]))
		i++;
	if (i == n || s[i] == '#' || s[i] == '!')
		return 0;
	if (s[i] == '[')
		return 0;	/* adblock header such as "[Adblock Plus 2.0]" */
	/* a trailing comment starts at a '#' after white space ("##" rules have none before) */
	for (size_t k = i + 1; k < n; k++) {
		if (s[k] == '#' && is_space(s[k - 1])) {
			n = k;
			break;
		}
	}
	while (n > i && is_space(s[n - 1]))
		n--;

	const char *tok[3] = {NULL, NULL, NULL};
	size_t tlen[3] = {0, 0, 0};
	size_t ntok = 0;
	size_t k = i;
	while (k < n && ntok < 3) {
		size_t start = k;
		while (k < n && !is_space(s[k]))
			k++;
		tok[ntok] = s + start;
		tlen[ntok++] = k - start;
		while (k < n && is_space(s[k]))
			k++;
	}

	if (tlen[0] >= 2 && tok[0][0] == '@' && tok[0][1] == '@') {
		skip(c, "adblock exception rule", s + i, n - i);
		return 0;
	}
	if (tlen[0] >= 2 && tok[0][0] == '|' && tok[0][1] == '|') {
		if (ntok > 1) {
			skip(c, "unexpected text after adblock rule", s + i, n - i);
			return 0;
		}
		return adblock_rule(c, tok[0], tlen[0]);
	}
	if (is_address(tok[0], tlen[0])) {
		if (ntok == 1) {
			skip(c, "hosts line without names", s + i, n - i);
			return 0;
		}
		/* every name after the address */
		k = (size_t)(tok[1] - s);
		while (k < n) {
			size_t start = k;
			while (k < n && !is_space(s[k]))
				k++;
			int rc = take_name(c, s + start, k - start);
			if (rc < 0)
				return rc;
			while (k < n && is_space(s[k]))
				k++;
		}
		return 0;
	}
	if (ntok > 1) {
		skip(c, "unexpected text after the name", s + i, n - i);
		return 0;
	}
	return take_name(c, tok[0], tlen[0]);
}

/* The offending text as quoted in a note: at most NOTE_TEXT_MAX octets (diag turns control
 * octets and NUL into '?': a list file from the network cannot put escapes into messages). */
static void
note_text(const char *s, size_t len, char *out)
{
	size_t n = len > NOTE_TEXT_MAX ? NOTE_TEXT_MAX : len;
	for (size_t i = 0; i < n; i++)
		out[i] = s[i] == '\0' ? '?' : s[i]; /* a NUL would end the message early */
	out[n] = '\0';
}

int
lists_parse_buf(const char *buf, size_t len, const char *file, struct diag *diag,
		lists_name_cb *cb, void *arg, struct lists_stats *st)
{
	struct line_ctx c = {
		.file = file, .diag = diag, .cb = cb, .arg = arg, .st = st,
	};
	size_t pos = 0;
	size_t noted = 0;
	size_t skipped0 = st->skipped;

	if (len >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0)
		pos = 3;	/* UTF-8 byte order mark */
	while (pos < len) {
		const char *nl = memchr(buf + pos, '\n', len - pos);
		size_t end = nl != NULL ? (size_t)(nl - buf) : len;
		c.lineno++;
		c.why = NULL;
		st->lines++;
		int rc = parse_line(&c, buf + pos, end - pos);
		if (rc < 0)
			return rc;
		if (c.why != NULL) {
			st->skipped++;
			if (diag != NULL && noted < LISTS_MAX_NOTES) {
				char show[NOTE_TEXT_MAX + 1];
				noted++;
				note_text(c.bad, c.badlen, show);
				diag_add(diag, DIAG_NOTE, file, (int)c.lineno, 0, NULL,
					 "skipped: %s: '%s%s'", c.why, show,
					 c.badlen > NOTE_TEXT_MAX ? "..." : "");
			}
		}
		pos = end + 1;
	}
	size_t skipped = st->skipped - skipped0;
	if (diag != NULL && skipped > LISTS_MAX_NOTES)
		diag_add(diag, DIAG_NOTE, file, 0, 0, NULL,
			 "skipped %zu lines in total, the first %d shown", skipped,
			 LISTS_MAX_NOTES);
	return 0;
}

int
lists_read_file(const char *path, const char *cfg_file, int loc_line, int loc_col,
		const char *key, struct diag *diag, lists_name_cb *cb, void *arg,
		struct lists_stats *st)
{
	char *buf = NULL;
	size_t len = 0;
	int rc = fileio_read_all(path, &buf, &len);
	if (rc != 0) {
		if (diag != NULL)
			diag_add(diag, DIAG_ERROR, cfg_file, loc_line, loc_col, key,
				 "cannot read list file '%s': %s", path, strerror(-rc));
		return rc;
	}
	rc = lists_parse_buf(buf, len, path, diag, cb, arg, st);
	free(buf);
	return rc;
}
