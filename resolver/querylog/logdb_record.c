/*
 * logdb_record: the values of a record's queries row (logdb_add) straight from the record.
 *
 * The writer remembers the ids of sources, names and texts (logdb_dict.c). Here they are
 * remembered under keys made of the record's own octets: the client's address, MAC and
 * identity strings, the question name and the rule as wire octets, the type and rcode
 * numbers, the upstream's address and port. A row whose entries are all in memory costs no
 * text conversion and no SQL; the record's text (querylog_text) is made only when a key is
 * missing, to find or add the entry by its text as before (logdb.c).
 *
 * A key holds every octet its text column is made from, so one key stands for one text; two
 * keys may stand for the same text (an IPv4 client and the same address mapped into IPv6):
 * both then remember the same id. Keys begin with a NUL octet and text keys are C strings, so
 * the two kinds share the dictionaries without ever being equal. The text columns of a row
 * repeat from one row to the next: each keeps its last few keys and ids (keycache) in front of
 * the dictionary.
 */
#include <string.h>

#include "logdb_int.h"

#define KEY_MAX 512

struct key {
	uint8_t b[KEY_MAX];
	size_t n;
};

_Static_assert(4 + 16 + 7 + 3 + IDENTITY_NAME_MAX + QUERYLOG_NAME_MAX + IDENTITY_VENDOR_MAX + 1 <
                       KEY_MAX,
               "a source key fits");
_Static_assert(3 + NAMES_MAX_WIRE < KEY_MAX, "a name key fits");

static void
key_start(struct key *k, char kind)
{
	k->b[0] = 0;
	k->b[1] = (uint8_t)kind;
	k->n = 2;
}

static void
key_add(struct key *k, const void *p, size_t n)
{
	memcpy(k->b + k->n, p, n);
	k->n += n;
}

static void
key_byte(struct key *k, unsigned v)
{
	k->b[k->n++] = (uint8_t)v;
}

/* A string field of at most cap octets (not NUL-terminated when full), its length first. */
static void
key_field(struct key *k, const char *s, size_t cap)
{
	size_t n = strnlen(s, cap);

	key_byte(k, (unsigned)n);
	key_add(k, s, n);
}

/* An address as its text shows it: family, address, and the port when with_port. */
static void
key_addr(struct key *k, const struct sockaddr_storage *ss, bool with_port)
{
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
		key_byte(k, 4);
		key_add(k, &sin->sin_addr, 4);
		if (with_port)
			key_add(k, &sin->sin_port, 2);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
		key_byte(k, 6);
		key_add(k, &sin6->sin6_addr, 16);
		if (with_port)
			key_add(k, &sin6->sin6_port, 2);
	} else {
		key_byte(k, 0);
	}
}

/* The record's text, made once, when a key is missing. */
struct lazy {
	const struct querylog_record *r;
	bool done;
	struct querylog_text t;
};

static const struct querylog_text *
text_of(struct lazy *l)
{
	if (!l->done) {
		querylog_text(l->r, &l->t);
		l->done = true;
	}
	return &l->t;
}

static int
source_id(struct logdb *db, struct lazy *lz, sqlite3_int64 *out)
{
	const struct querylog_record *r = lz->r;
	struct logdb_dict *d = &db->dicts[LOGDB_SOURCES];
	struct key k;

	key_start(&k, 'S');
	key_addr(&k, &r->client, false);
	key_byte(&k, r->has_mac);
	if (r->has_mac)
		key_add(&k, r->mac, 6);
	key_field(&k, r->device, sizeof(r->device));
	key_field(&k, r->has_group ? r->group : "", sizeof(r->group));
	key_field(&k, r->vendor, sizeof(r->vendor));
	key_byte(&k, r->vendor_source);
	uint64_t h = logdb_dict_hash(d, (const char *)k.b, k.n);
	*out = logdb_dict_get(d, h, (const char *)k.b, k.n);
	if (*out > 0)
		return SQLITE_OK;
	const struct querylog_text *t = text_of(lz);
	const char *fields[6] = {t->client, t->mac,    t->device,
	                         t->group,  t->vendor, identity_source_name(r->vendor_source)};
	return logdb_dict_fetch(db, LOGDB_SOURCES, fields, 6, (const char *)k.b, k.n, h, out);
}

/* kind, wire, len: querylog_qname_wire's answer for the record. */
static int
name_id(struct logdb *db, struct lazy *lz, int kind, const uint8_t *wire, size_t len,
        sqlite3_int64 *out)
{
	struct logdb_dict *d = &db->dicts[LOGDB_NAMES];
	struct key k;
	uint64_t h;

	*out = 0;
	if (kind == 0)
		return SQLITE_OK;
	if (kind < 0)
		return logdb_name_id(db, text_of(lz)->qname, NULL, 0, 0, out);
	key_start(&k, 'N');
	key_add(&k, wire, len);
	h = logdb_dict_hash(d, (const char *)k.b, k.n);
	*out = logdb_dict_get(d, h, (const char *)k.b, k.n);
	if (*out > 0)
		return SQLITE_OK;
	/* a name not in memory (most often one never seen): its text alone */
	struct names_name n;
	char text[NAMES_MAX_TEXT];
	size_t pos = 0;
	if (names_from_wire(&n, wire, len, &pos) != 0)
		return logdb_name_id(db, text_of(lz)->qname, NULL, 0, 0, out); /* not reached */
	names_to_text(&n, text);
	return logdb_name_id(db, text, (const char *)k.b, k.n, h, out);
}

/* The id of text column `col` whose key is k (NULL: no key, found by its text alone). */
static int
text_col(struct logdb *db, int col, const struct key *k, const char *text, sqlite3_int64 *out)
{
	struct logdb_dict *d = &db->dicts[LOGDB_TEXTS];
	struct logdb_keycache *c = db->keycache[col];
	uint64_t h = 0;

	if (k != NULL && k->n <= sizeof(c[0].b)) {
		for (int i = 0; i < LOGDB_KEYCACHE_WAYS; i++) {
			if (c[i].id > 0 && c[i].n == k->n && memcmp(c[i].b, k->b, k->n) == 0) {
				*out = c[i].id;
				return SQLITE_OK;
			}
		}
	}
	if (k != NULL) {
		h = logdb_dict_hash(d, (const char *)k->b, k->n);
		*out = logdb_dict_get(d, h, (const char *)k->b, k->n);
	}
	if (k == NULL || *out == 0) {
		int rc = logdb_text_id(db, text, out);
		if (rc != SQLITE_OK || k == NULL || *out == 0)
			return rc;
		logdb_dict_put(d, h, (const char *)k->b, k->n, *out);
	}
	if (k->n <= sizeof(c[0].b)) {
		struct logdb_keycache *e = &c[db->keycache_next[col]];
		db->keycache_next[col] =
		        (uint8_t)((db->keycache_next[col] + 1) % LOGDB_KEYCACHE_WAYS);
		memcpy(e->b, k->b, k->n);
		e->n = (uint8_t)k->n;
		e->id = *out;
	}
	return SQLITE_OK;
}

/* The ids of the text columns qtype, proto, list, rule, action, rcode, upstream. */
static int
text_ids(struct logdb *db, struct lazy *lz, int qkind, sqlite3_int64 *tid)
{
	const struct querylog_record *r = lz->r;
	const uint8_t *w = NULL;
	size_t wl = 0;
	struct key k;
	int rc = SQLITE_OK;

	memset(tid, 0, 7 * sizeof(*tid));
	/* qtype: with a question name only */
	if (qkind > 0) {
		key_start(&k, 'q');
		key_add(&k, &r->qtype, sizeof(r->qtype));
		rc = text_col(db, 0, &k, NULL, &tid[0]);
		if (rc == SQLITE_OK && tid[0] == 0) /* not in memory: by its text */
			rc = text_col(db, 0, &k, text_of(lz)->qtype, &tid[0]);
	} else if (qkind < 0) {
		rc = text_col(db, 0, NULL, text_of(lz)->qtype, &tid[0]);
	}
	if (rc != SQLITE_OK)
		return rc;
	key_start(&k, 'p');
	key_byte(&k, r->tcp);
	rc = text_col(db, 1, &k, r->tcp ? "tcp" : "udp", &tid[1]);
	if (rc == SQLITE_OK && r->has_list && strnlen(r->list, sizeof(r->list)) > 0) {
		key_start(&k, 'l');
		key_field(&k, r->list, sizeof(r->list));
		rc = text_col(db, 2, &k, NULL, &tid[2]);
		if (rc == SQLITE_OK && tid[2] == 0)
			rc = text_col(db, 2, &k, text_of(lz)->list, &tid[2]);
	}
	if (rc != SQLITE_OK)
		return rc;
	int rkind = querylog_rule_wire(r, &w, &wl);
	if (rkind > 0) {
		key_start(&k, 'r');
		key_add(&k, w, wl);
		rc = text_col(db, 3, &k, NULL, &tid[3]);
		if (rc == SQLITE_OK && tid[3] == 0)
			rc = text_col(db, 3, &k, text_of(lz)->rule, &tid[3]);
	} else if (rkind < 0) {
		rc = text_col(db, 3, NULL, text_of(lz)->rule, &tid[3]);
	}
	if (rc != SQLITE_OK)
		return rc;
	key_start(&k, 'a');
	key_byte(&k, r->action);
	rc = text_col(db, 4, &k, querylog_action_name(r->action), &tid[4]);
	if (rc == SQLITE_OK) {
		key_start(&k, 'c');
		key_byte(&k, r->rcode);
		rc = text_col(db, 5, &k, NULL, &tid[5]);
		if (rc == SQLITE_OK && tid[5] == 0)
			rc = text_col(db, 5, &k, text_of(lz)->rcode, &tid[5]);
	}
	if (rc == SQLITE_OK &&
	    (r->upstream.ss_family == AF_INET || r->upstream.ss_family == AF_INET6)) {
		key_start(&k, 'u');
		key_addr(&k, &r->upstream, true);
		rc = text_col(db, 6, &k, NULL, &tid[6]);
		if (rc == SQLITE_OK && tid[6] == 0)
			rc = text_col(db, 6, &k, text_of(lz)->upstream, &tid[6]);
	}
	return rc;
}

int
logdb_record_values(struct logdb *db, const struct querylog_record *r, sqlite3_int64 *v)
{
	struct lazy lz; /* not zeroed: its text (3 KB) is written only when needed */
	sqlite3_int64 src = 0, name = 0, tid[7];
	const uint8_t *wire = NULL;
	size_t len = 0;
	int qkind, rc;

	lz.r = r;
	lz.done = false;
	qkind = querylog_qname_wire(r, &wire, &len);
	rc = source_id(db, &lz, &src);

	if (rc == SQLITE_OK)
		rc = name_id(db, &lz, qkind, wire, len, &name);
	if (rc == SQLITE_OK)
		rc = text_ids(db, &lz, qkind, tid);
	if (rc != SQLITE_OK)
		return rc;
	v[0] = 0; /* the next id */
	v[1] = (sqlite3_int64)r->ts_ms;
	v[2] = src;
	v[3] = name;
	v[4] = tid[0]; /* qtype */
	v[5] = tid[1]; /* proto */
	v[6] = r->blocked ? 1 : 0;
	for (int i = 2; i < 7; i++)
		v[5 + i] = tid[i]; /* list, rule, action, rcode, upstream */
	v[12] = r->latency_us;
	return SQLITE_OK;
}
