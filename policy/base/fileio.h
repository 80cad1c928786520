/*
 * fileio: the file helpers every folder shares: the one whole-file reader (for the loaders of the
 * configuration, list files, IEEE registries, DHCP lease files and the ARP table), the one
 * `mkdir -p`, and the one way to set a corrupt database file aside.
 *
 * Regular files are read in one allocation sized from fstat(); anything else (/proc files,
 * which report a size of 0, pipes) is read to end of file in a buffer that doubles as it fills.
 * A file larger than FILEIO_MAX_SIZE is refused with -EFBIG, so a mistaken path such as
 * /dev/zero fails instead of exhausting memory.
 */
#ifndef VETO_FILEIO_H
#define VETO_FILEIO_H

#include <stddef.h>
#include <sys/types.h>

#define FILEIO_MAX_SIZE ((size_t)1 << 30)	/* 1 GiB */

/* Reads the file at path. On success returns 0, *buf (owned by the caller, free() it) holds the
 * *len octets of the file followed by a NUL at (*buf)[*len] (not counted in *len; the file may
 * itself contain NULs), and *buf is never NULL, even for an empty file. Returns -errno from
 * open/read, -ENOMEM, or -EFBIG; *buf and *len are written only on success. */
int fileio_read_all(const char *path, char **buf, size_t *len);

/* Creates the directory path and its missing parents with mode (existing ones are fine).
 * 0, -ENAMETOOLONG (4095 octets and more) or -errno of mkdir(). */
int fileio_mkdir_p(const char *path, mode_t mode);

/* Sets a corrupt database file aside: renames path to "PATH.corrupt-UNIXTIME" (written to
 * aside, size octets) and removes its SQLite companions PATH-wal and PATH-shm, so that a new
 * file can be created in its place. 0, -ENAMETOOLONG or -errno of rename(). */
int fileio_set_aside(const char *path, char *aside, size_t size);

#endif
