/*
 * fileio: reading a whole file into memory, for the loaders of list files, IEEE registries,
 * DHCP lease files and the ARP table.
 *
 * Regular files are read in one allocation sized from fstat(); anything else (/proc files,
 * which report a size of 0, pipes) is read to end of file in a buffer that doubles as it fills.
 * A file larger than FILEIO_MAX_SIZE is refused with -EFBIG, so a mistaken path such as
 * /dev/zero fails instead of exhausting memory.
 */
#ifndef VETO_FILEIO_H
#define VETO_FILEIO_H

#include <stddef.h>

#define FILEIO_MAX_SIZE ((size_t)1 << 30)	/* 1 GiB */

/* Reads the file at path. On success returns 0, *buf (owned by the caller, free() it) holds the
 * *len octets of the file followed by a NUL at (*buf)[*len] (not counted in *len; the file may
 * itself contain NULs), and *buf is never NULL, even for an empty file. Returns -errno from
 * open/read, -ENOMEM, or -EFBIG; *buf and *len are written only on success. */
int fileio_read_all(const char *path, char **buf, size_t *len);

#endif
