/*
 * http_args: the arguments of a request (query string or urlencoded form), decoded and bounded.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "http_int.h"

void
http_args_init(struct http_args *a)
{
	memset(a, 0, sizeof(*a));
}

void
http_args_clear(struct http_args *a)
{
	for (size_t i = 0; i < a->n; i++) {
		free(a->keys[i]);
		free(a->vals[i]);
	}
	http_args_init(a);
}

int
http_args_add(struct http_args *a, const char *key, const char *val)
{
	size_t kl = strlen(key), vl = strlen(val);
	if (a->bytes + kl + vl + 2 > HTTP_ARGS_BYTES)
		return -E2BIG;
	for (size_t i = 0; i < a->n; i++) {
		if (strcmp(a->keys[i], key) != 0)
			continue;
		size_t ol = strlen(a->vals[i]);
		char *nv = realloc(a->vals[i], ol + 1 + vl + 1);
		if (nv == NULL)
			return -ENOMEM;
		nv[ol] = ',';
		memcpy(nv + ol + 1, val, vl + 1);
		a->vals[i] = nv;
		a->bytes += vl + 1;
		return 0;
	}
	if (a->n == HTTP_ARGS_MAX)
		return -E2BIG;
	char *k = strdup(key), *v = strdup(val);
	if (k == NULL || v == NULL) {
		free(k);
		free(v);
		return -ENOMEM;
	}
	a->keys[a->n] = k;
	a->vals[a->n] = v;
	a->n++;
	a->bytes += kl + vl + 2;
	return 0;
}

static int
hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* Decodes len octets of s into out (len + 1 octets). 0 or -EINVAL. */
static int
decode(const char *s, size_t len, char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '+') {
			out[o++] = ' ';
		} else if (s[i] == '%') {
			if (i + 2 >= len)
				return -EINVAL;
			int hi = hexval(s[i + 1]);
			int lo = hexval(s[i + 2]);
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
				return -EINVAL;
			out[o++] = (char)(hi << 4 | lo);
			i += 2;
		} else if (s[i] == '\0') {
			return -EINVAL;
		} else {
			out[o++] = s[i];
		}
	}
	out[o] = '\0';
	return 0;
}

int
http_args_parse(struct http_args *a, const char *text, size_t len)
{
	size_t i = 0;
	int rc = 0;
	if (len > HTTP_ARGS_BYTES)
		return -E2BIG;
	char *k = malloc(len + 1), *v = malloc(len + 1);
	if (k == NULL || v == NULL) {
		rc = -ENOMEM;
		goto cleanup;
	}
	while (i < len) {
		size_t end = i;
		while (end < len && text[end] != '&')
			end++;
		if (end > i) {
			size_t eq = i;
			while (eq < end && text[eq] != '=')
				eq++;
			rc = decode(text + i, eq - i, k);
			if (rc == 0)
				rc = eq < end ? decode(text + eq + 1, end - eq - 1, v)
				              : (v[0] = '\0', 0);
			if (rc == 0 && k[0] != '\0')
				rc = http_args_add(a, k, v);
			if (rc != 0)
				goto cleanup;
		}
		i = end + 1;
	}
cleanup:
	free(k);
	free(v);
	return rc;
}

const char *
http_args_get(const struct http_args *a, const char *key)
{
	for (size_t i = 0; i < a->n; i++) {
		if (strcmp(a->keys[i], key) == 0)
			return a->vals[i];
	}
	return NULL;
}
