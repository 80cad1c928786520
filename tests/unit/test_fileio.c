/*
 * test_fileio: fileio_read_all over regular files of sizes around its buffer steps, a FIFO (size
 * unknown, read to end of file), and the failures: missing file, directory, over-size file.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "fileio.h"

static char tmpdir[] = "/tmp/veto-test-fileio-XXXXXX";

/* Octet i of every generated content: not all printable, includes NULs. */
static char
pattern(size_t i)
{
	return (char)((i * 7 + i / 251) & 0xff);
}

static void
fill(char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = pattern(i);
}

static void
write_file(const char *path, size_t n)
{
	char *p = malloc(n + 1);
	assert_non_null(p);
	fill(p, n);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	size_t off = 0;
	while (off < n) {
		ssize_t w = write(fd, p + off, n - off);
		assert_true(w > 0);
		off += (size_t)w;
	}
	assert_int_equal(close(fd), 0);
	free(p);
}

static void
check_content(const char *buf, size_t len, size_t want)
{
	assert_non_null(buf);
	assert_int_equal(len, want);
	for (size_t i = 0; i < len; i++)
		if (buf[i] != pattern(i))
			fail_msg("octet %zu differs", i);
	assert_int_equal(buf[len], '\0');
}

/* Sizes around the first buffer of an unknown-size read and its doublings. */
static const size_t sizes[] = {0, 1, 2, 4095, 65535, 65536, 65537, 131072, 300001};

static void
test_regular(void **state)
{
	(void)state;
	char path[64];
	snprintf(path, sizeof(path), "%s/regular", tmpdir);
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		write_file(path, sizes[k]);
		char *buf = NULL;
		size_t len = 12345;
		int rc = fileio_read_all(path, &buf, &len);
		if (rc != 0)
			fail_msg("size %zu: rc %d", sizes[k], rc);
		check_content(buf, len, sizes[k]);
		free(buf);
	}
	assert_int_equal(unlink(path), 0);
}

/* A FIFO has no size: the reader grows its buffer until end of file. */
static void
test_fifo(void **state)
{
	(void)state;
	char path[64];
	snprintf(path, sizeof(path), "%s/fifo", tmpdir);
	assert_int_equal(mkfifo(path, 0600), 0);
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			/* blocks until the parent opens the FIFO for reading */
			int fd = open(path, O_WRONLY | O_CLOEXEC);
			if (fd < 0)
				_exit(1);
			char chunk[4096];
			size_t off = 0;
			while (off < sizes[k]) {
				size_t n = sizes[k] - off < sizeof(chunk) ? sizes[k] - off : sizeof(chunk);
				for (size_t i = 0; i < n; i++)
					chunk[i] = pattern(off + i);
				/* small writes: the reader sees the data in many pieces */
				ssize_t w = write(fd, chunk, n);
				if (w <= 0)
					_exit(2);
				off += (size_t)w;
			}
			_exit(close(fd) == 0 ? 0 : 3);
		}
		char *buf = NULL;
		size_t len = 0;
		int rc = fileio_read_all(path, &buf, &len);
		int status = 0;
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
		if (rc != 0)
			fail_msg("size %zu: rc %d", sizes[k], rc);
		check_content(buf, len, sizes[k]);
		free(buf);
	}
	assert_int_equal(unlink(path), 0);
}

/* Failures return -errno and leave the output parameters alone. */
static void
check_fails(const char *path, int want)
{
	char sentinel = 'x';
	char *buf = &sentinel;
	size_t len = 777;
	int rc = fileio_read_all(path, &buf, &len);
	if (rc != want)
		fail_msg("%s: rc %d, expected %d", path, rc, want);
	assert_ptr_equal(buf, &sentinel);
	assert_int_equal(len, 777);
}

static void
test_errors(void **state)
{
	(void)state;
	char path[64];
	snprintf(path, sizeof(path), "%s/missing", tmpdir);
	check_fails(path, -ENOENT);
	check_fails(tmpdir, -EISDIR);

	/* sparse: refused from its size, before anything is allocated or read */
	snprintf(path, sizeof(path), "%s/huge", tmpdir);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)FILEIO_MAX_SIZE + 1), 0);
	assert_int_equal(close(fd), 0);
	check_fails(path, -EFBIG);
	assert_int_equal(unlink(path), 0);
}

static int
setup(void **state)
{
	(void)state;
	return mkdtemp(tmpdir) != NULL ? 0 : -1;
}

static int
teardown(void **state)
{
	(void)state;
	return rmdir(tmpdir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_regular),
		cmocka_unit_test(test_fifo),
		cmocka_unit_test(test_errors),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
