/*
 * fetch: one download of a list URL (see fetch.h).
 */
#include "fetch.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fileio.h"
#include "lists.h"
#include "text.h"

#define HEADER_VALUE_MAX 512
#define PATH_MAX_LEN	 4096

struct transfer {
	const struct fetch_req *req;
	FILE *out;
	size_t bytes;
	bool too_big;
	char etag[HEADER_VALUE_MAX];
	char modified[HEADER_VALUE_MAX];
};

struct meta {
	char url[2100];
	int64_t fetched;
	char etag[HEADER_VALUE_MAX];
	char modified[HEADER_VALUE_MAX];
};

int
fetch_global_init(void)
{
	return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -ENOMEM;
}

void
fetch_global_cleanup(void)
{
	curl_global_cleanup();
}

static void
fail(struct fetch_result *res, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
fail(struct fetch_result *res, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(res->error, sizeof(res->error), fmt, ap);
	va_end(ap);
	/* a server's text may end up here: one printable line */
	for (char *p = res->error; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p == 0x7f)
			*p = '?';
	res->outcome = FETCH_FAILED;
}

int
fetch_meta_path(const char *copy, char *buf, size_t size)
{
	int n = snprintf(buf, size, "%s.meta", copy);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/* "key value" lines; unknown keys are ignored. */
static int
meta_read(const char *copy, struct meta *m)
{
	char path[PATH_MAX_LEN];
	char *buf = NULL;
	size_t len = 0;
	memset(m, 0, sizeof(*m));
	if (fetch_meta_path(copy, path, sizeof(path)) != 0 || fileio_read_all(path, &buf, &len) != 0)
		return -ENOENT;
	for (char *line = buf, *next; line != NULL && *line != '\0'; line = next) {
		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		char *sp = strchr(line, ' ');
		if (sp == NULL)
			continue;
		*sp++ = '\0';
		if (strcmp(line, "url") == 0)
			text_copy(m->url, sizeof(m->url), sp);
		else if (strcmp(line, "fetched") == 0)
			m->fetched = strtoll(sp, NULL, 10);
		else if (strcmp(line, "etag") == 0)
			text_copy(m->etag, sizeof(m->etag), sp);
		else if (strcmp(line, "modified") == 0)
			text_copy(m->modified, sizeof(m->modified), sp);
	}
	free(buf);
	return 0;
}

/* Written beside the copy and renamed over the old one: never half a file. */
static int
meta_write(const char *copy, const struct meta *m)
{
	char path[PATH_MAX_LEN], tmp[PATH_MAX_LEN + 8];
	if (fetch_meta_path(copy, path, sizeof(path)) != 0)
		return -ENAMETOOLONG;
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	FILE *f = fopen(tmp, "we");
	if (f == NULL)
		return -errno;
	fprintf(f, "url %s\nfetched %" PRId64 "\n", m->url, m->fetched);
	if (m->etag[0] != '\0')
		fprintf(f, "etag %s\n", m->etag);
	if (m->modified[0] != '\0')
		fprintf(f, "modified %s\n", m->modified);
	int rc = ferror(f) ? -EIO : 0;
	if (fclose(f) != 0 && rc == 0)
		rc = -errno;
	if (rc == 0 && rename(tmp, path) != 0)
		rc = -errno;
	if (rc != 0)
		unlink(tmp);
	return rc;
}

int64_t
fetch_last_good(const char *copy, const char *url)
{
	struct meta m;
	if (meta_read(copy, &m) != 0 || strcmp(m.url, url) != 0)
		return 0;
	return m.fetched;
}

static size_t
on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	struct transfer *t = arg;
	size_t n = size * nmemb;
	if (n > t->req->max_size - t->bytes || t->bytes > t->req->max_size) {
		t->too_big = true;
		return 0; /* CURLE_WRITE_ERROR */
	}
	if (fwrite(data, 1, n, t->out) != n)
		return 0;
	t->bytes += n;
	return n;
}

/* Copies a header's value (trimmed) into dst when line is "name: value". */
static void
header_value(const char *line, size_t len, const char *name, char *dst, size_t size)
{
	size_t nl = strlen(name);
	if (len <= nl + 1 || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
		return;
	const char *v = line + nl + 1;
	size_t vl = len - nl - 1;
	while (vl > 0 && (*v == ' ' || *v == '\t'))
		v++, vl--;
	while (vl > 0 && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
		vl--;
	if (vl == 0 || vl >= size)
		return;
	for (size_t i = 0; i < vl; i++)
		if ((unsigned char)v[i] < 0x20 || (unsigned char)v[i] == 0x7f)
			return; /* not stored: it goes back into a request and a file */
	memcpy(dst, v, vl);
	dst[vl] = '\0';
}

static size_t
on_header(char *data, size_t size, size_t nmemb, void *arg)
{
	struct transfer *t = arg;
	size_t n = size * nmemb;
	if (n >= 5 && memcmp(data, "HTTP/", 5) == 0) {
		/* a new response (after a redirect): only the last one's validators count */
		t->etag[0] = '\0';
		t->modified[0] = '\0';
	}
	header_value(data, n, "etag", t->etag, sizeof(t->etag));
	header_value(data, n, "last-modified", t->modified, sizeof(t->modified));
	return n;
}

static int
on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
            curl_off_t ulnow)
{
	struct transfer *t = arg;
	(void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
	return t->req->abort != NULL && atomic_load(t->req->abort) ? 1 : 0;
}

static int
count_name(void *arg, const struct names_name *n)
{
	(void)n;
	(*(size_t *)arg)++;
	return 0;
}

/* True when the files at a and b hold the same octets. */
static bool
same_content(const char *a, const char *b)
{
	char ba[65536], bb[65536];
	bool same = false;
	FILE *fa = fopen(a, "re"), *fb = fopen(b, "re");
	if (fa == NULL || fb == NULL)
		goto done;
	for (;;) {
		size_t na = fread(ba, 1, sizeof(ba), fa), nb = fread(bb, 1, sizeof(bb), fb);
		if (na != nb || memcmp(ba, bb, na) != 0)
			goto done;
		if (na < sizeof(ba)) {
			same = !ferror(fa) && !ferror(fb);
			goto done;
		}
	}
done:
	if (fa != NULL)
		fclose(fa);
	if (fb != NULL)
		fclose(fb);
	return same;
}

/* Parses the downloaded body at tmp; false (res failed) when it is not a list. */
static bool
judge_body(const char *tmp, struct fetch_result *res)
{
	char *buf = NULL;
	size_t len = 0;
	int rc = fileio_read_all(tmp, &buf, &len);
	if (rc != 0) {
		fail(res, "cannot read the download: %s", strerror(-rc));
		return false;
	}
	bool ok = false;
	struct lists_stats st = {0};
	size_t names = 0;
	if (memchr(buf, '\0', len) != NULL) {
		fail(res, "HTTP %ld, %zu octets: not a list (binary content)", res->http_status, len);
	} else if ((rc = lists_parse_buf(buf, len, "download", NULL, count_name, &names, &st)) != 0) {
		fail(res, "cannot parse the download: %s", strerror(-rc));
	} else if (names == 0 || st.skipped > names) {
		fail(res, "HTTP %ld, %zu octets: not a list (%zu names, %zu lines skipped)",
		     res->http_status, len, names, st.skipped);
	} else {
		res->names = names;
		res->skipped = st.skipped;
		ok = true;
	}
	free(buf);
	return ok;
}

void
fetch_run(const struct fetch_req *req, struct fetch_result *res)
{
	char tmp[PATH_MAX_LEN + 8], dir[PATH_MAX_LEN], cond[HEADER_VALUE_MAX + 32];
	char errbuf[CURL_ERROR_SIZE] = "";
	struct transfer t = {.req = req};
	struct curl_slist *headers = NULL;
	struct meta old;
	CURL *h = NULL;
	bool have_tmp = false;

	memset(res, 0, sizeof(*res));
	res->outcome = FETCH_FAILED;
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", req->copy) >= (int)sizeof(tmp) ||
	    strlen(req->copy) >= sizeof(dir)) {
		fail(res, "path of the copy too long");
		return;
	}
	text_copy(dir, sizeof(dir), req->copy);
	int rc = fileio_mkdir_p(dirname(dir), 0755);
	if (rc != 0) {
		fail(res, "cannot create the folder of '%s': %s", req->copy, strerror(-rc));
		return;
	}
	bool have_old = meta_read(req->copy, &old) == 0 && strcmp(old.url, req->url) == 0 &&
	                access(req->copy, R_OK) == 0;
	if (!have_old)
		memset(&old, 0, sizeof(old));
	t.out = fopen(tmp, "we");
	if (t.out == NULL) {
		fail(res, "cannot write '%s': %s", tmp, strerror(errno));
		return;
	}
	have_tmp = true;
	h = curl_easy_init();
	if (h == NULL) {
		fail(res, "cannot start a transfer");
		goto cleanup;
	}
	if (have_old && old.etag[0] != '\0') {
		snprintf(cond, sizeof(cond), "If-None-Match: %s", old.etag);
		headers = curl_slist_append(headers, cond);
	}
	if (have_old && old.modified[0] != '\0') {
		snprintf(cond, sizeof(cond), "If-Modified-Since: %s", old.modified);
		headers = curl_slist_append(headers, cond);
	}
	curl_easy_setopt(h, CURLOPT_URL, req->url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(h, CURLOPT_MAXREDIRS, (long)FETCH_MAX_REDIRECTS);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	if (req->ca_file != NULL)
		curl_easy_setopt(h, CURLOPT_CAINFO, req->ca_file);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, (long)req->timeout_s);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, (long)(req->timeout_s < 30 ? req->timeout_s : 30));
	curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)req->max_size);
	curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, ""); /* the limit applies to decoded octets */
	curl_easy_setopt(h, CURLOPT_USERAGENT, "veto");
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &t);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, &t);
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(h, CURLOPT_XFERINFODATA, &t);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);

	CURLcode cc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &res->http_status);
	res->bytes = t.bytes;
	bool write_ok = fclose(t.out) == 0;
	t.out = NULL;
	if (t.too_big || cc == CURLE_FILESIZE_EXCEEDED) {
		fail(res, "larger than max_size (%" PRIu32 " octets)", req->max_size);
		goto cleanup;
	}
	if (cc == CURLE_ABORTED_BY_CALLBACK) {
		fail(res, "stopped (shutting down)");
		goto cleanup;
	}
	if (cc != CURLE_OK) {
		fail(res, "%s", errbuf[0] ? errbuf : curl_easy_strerror(cc));
		goto cleanup;
	}
	if (!write_ok) {
		fail(res, "cannot write '%s'", tmp);
		goto cleanup;
	}
	struct meta m = old;
	text_copy(m.url, sizeof(m.url), req->url);
	m.fetched = (int64_t)time(NULL);
	if (res->http_status == 304 && have_old) {
		res->outcome = FETCH_NOT_MODIFIED;
		(void)meta_write(req->copy, &m); /* only the time of the last good fetch */
		goto cleanup;
	}
	if (res->http_status != 200) {
		fail(res, "HTTP %ld", res->http_status);
		goto cleanup;
	}
	if (!judge_body(tmp, res))
		goto cleanup;
	text_copy(m.etag, sizeof(m.etag), t.etag);
	text_copy(m.modified, sizeof(m.modified), t.modified);
	if (have_old && same_content(tmp, req->copy)) {
		res->outcome = FETCH_NOT_MODIFIED;
	} else if (rename(tmp, req->copy) != 0) {
		fail(res, "cannot replace '%s': %s", req->copy, strerror(errno));
		goto cleanup;
	} else {
		have_tmp = false;
		res->outcome = FETCH_UPDATED;
	}
	if ((rc = meta_write(req->copy, &m)) != 0 && res->outcome == FETCH_UPDATED)
		res->error[0] = '\0'; /* the copy is good; validators are only an optimisation */
cleanup:
	if (t.out != NULL)
		fclose(t.out);
	if (have_tmp)
		unlink(tmp);
	curl_slist_free_all(headers);
	if (h != NULL)
		curl_easy_cleanup(h);
}
