/*
 * fileio: whole-file reading, mkdir -p, setting a corrupt file aside (see fileio.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"

#define FILEIO_FIRST_CAP 65536	/* first buffer when the size is not known */

int
fileio_read_all(const char *path, char **buf, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int rc = 0;
	char *b = NULL;
	size_t n = 0, cap = FILEIO_FIRST_CAP;
	struct stat sb;
	if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size > 0) {
		if ((uintmax_t)sb.st_size > FILEIO_MAX_SIZE) {
			rc = -EFBIG;
			goto cleanup;
		}
		cap = (size_t)sb.st_size + 1;	/* +1: EOF is seen without growing, room for NUL */
	}
	b = malloc(cap);
	if (b == NULL) {
		rc = -ENOMEM;
		goto cleanup;
	}
	for (;;) {
		/* Growing before every read keeps n < cap at end of file: room for the NUL. */
		if (n == cap) {
			if (n > FILEIO_MAX_SIZE) {
				rc = -EFBIG;
				goto cleanup;
			}
			size_t ncap = cap <= FILEIO_MAX_SIZE / 2 ? cap * 2 : FILEIO_MAX_SIZE + 1;
			char *nb = realloc(b, ncap);
			if (nb == NULL) {
				rc = -ENOMEM;
				goto cleanup;
			}
			b = nb;
			cap = ncap;
		}
		ssize_t r = read(fd, b + n, cap - n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			goto cleanup;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	b[n] = '\0';
	*buf = b;
	*len = n;
	b = NULL;
cleanup:
	free(b);
	close(fd);
	return rc;
}

int
fileio_mkdir_p(const char *path, mode_t mode)
{
	char buf[4096];
	size_t n = strlen(path);

	if (n == 0 || n >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, n + 1);
	for (size_t i = 1; i <= n; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		char ch = buf[i];
		buf[i] = '\0';
		if (mkdir(buf, mode) != 0 && errno != EEXIST)
			return -errno;
		buf[i] = ch;
	}
	return 0;
}

int
fileio_set_aside(const char *path, char *aside, size_t size)
{
	char side[4096];
	int n = snprintf(aside, size, "%s.corrupt-%lld", path, (long long)time(NULL));

	if (n < 0 || (size_t)n >= size || strlen(path) + 5 >= sizeof(side))
		return -ENAMETOOLONG;
	if (rename(path, aside) != 0)
		return -errno;
	snprintf(side, sizeof(side), "%s-wal", path);
	unlink(side);
	snprintf(side, sizeof(side), "%s-shm", path);
	unlink(side);
	return 0;
}
