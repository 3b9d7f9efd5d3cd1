/*
 * spoolfile.c — the journal's spool file (see spoolfile.h): its life on disk, the
 * appends (a record's header and payload in one writev; a short write is cut off
 * again, so the file holds whole records) and the reads (pread, then the checks of
 * stats/spool.h). The records' contents are the journal's; here they are bytes.
 */
#include "stats/spoolfile.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "base/log.h"
#include "stats/spool.h"

/* Returns -1 with sf->err = e (and errno = e). */
static int fail(sy_spoolfile_t *sf, int e) {
  sf->err = e;
  errno = e;
  return -1;
}

void sy_spoolfile_init(sy_spoolfile_t *sf) {
  memset(sf, 0, sizeof *sf);
  sf->fd = -1;
}

/* Creates the file under a temporary name, locks it, then gives it its name: no
 * other process can adopt it before it is locked. */
static int create(sy_spoolfile_t *sf) {
  if (sf->fd >= 0)
    return 0;
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.new", sf->path);
  int fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0)
    return fail(sf, errno);
  if (flock(fd, LOCK_EX | LOCK_NB) < 0 || rename(tmp, sf->path) < 0) {
    int e = errno;
    unlink(tmp);
    close(fd);
    return fail(sf, e);
  }
  sf->fd = fd;
  return 0;
}

void sy_spoolfile_remove(sy_spoolfile_t *sf) {
  if (sf->fd >= 0) {
    unlink(sf->path); /* while we hold the lock: nobody else has it open */
    close(sf->fd);
    sf->fd = -1;
  }
  sf->size = 0;
  sf->events = 0;
}

int sy_spoolfile_append(sy_spoolfile_t *sf, const char *data, size_t len, uint32_t nevents) {
  unsigned char hdr[SY_SPOOL_HDR];
  sy_spool_header_write(hdr, data, (uint32_t)len);
  if (sf->size + len + sizeof hdr > sf->cap)
    return fail(sf, ENOSPC);
  if (create(sf) < 0)
    return -1;
  struct iovec iov[2] = {{hdr, sizeof hdr}, {(void *)data, len}};
  ssize_t n = writev(sf->fd, iov, 2);
  if (n != (ssize_t)(len + sizeof hdr)) {
    int e = n < 0 ? errno : ENOSPC;
    if (ftruncate(sf->fd, (off_t)sf->size) < 0)
      sy_log_error("journal: cannot truncate the spool after a short write: %s", strerror(errno));
    return fail(sf, e);
  }
  sf->size += len + sizeof hdr;
  sf->events += nevents;
  return 0;
}

/* Reads the record at off of fd, a file of size bytes, into sf->rec. Returns its
 * payload length, 0 at the end, or -1 for a torn or corrupt record. */
static ssize_t read_record(sy_spoolfile_t *sf, int fd, uint64_t off, uint64_t size) {
  unsigned char hdr[SY_SPOOL_HDR];
  sy_spool_rec_t rec;
  if (off >= size)
    return 0;
  if (off + sizeof hdr > size || pread(fd, hdr, sizeof hdr, (off_t)off) != sizeof hdr ||
      sy_spool_header_read(hdr, size - off, &rec) != SY_SPOOL_OK)
    return -1;
  if (rec.len > sf->rec_cap) {
    char *p = realloc(sf->rec, rec.len);
    if (p == NULL)
      return -1;
    sf->rec = p;
    sf->rec_cap = rec.len;
  }
  if (pread(fd, sf->rec, rec.len, (off_t)(off + sizeof hdr)) != (ssize_t)rec.len ||
      sy_spool_payload_check(&rec, sf->rec) != SY_SPOOL_OK)
    return -1;
  return (ssize_t)rec.len;
}

ssize_t sy_spoolfile_read(sy_spoolfile_t *sf, uint64_t off, const char **data) {
  ssize_t len = read_record(sf, sf->fd, off, sf->size);
  *data = sf->rec;
  return len;
}

void sy_spoolfile_truncate(sy_spoolfile_t *sf, uint64_t size) {
  sf->size = size;
  if (ftruncate(sf->fd, (off_t)sf->size) < 0)
    sy_log_error("journal: cannot truncate %s: %s", sf->path, strerror(errno));
}

void sy_spoolfile_consumed(sy_spoolfile_t *sf, uint32_t nevents) {
  sf->events = sf->events > nevents ? sf->events - nevents : 0;
}

/* Moves the records of an orphaned spool file (its owner is gone) into ours.
 * Returns the number of events appended. */
static uint64_t adopt(sy_spoolfile_t *sf, const char *path, sy_spoolfile_count_cb count) {
  int fd = open(path, O_RDWR | O_CLOEXEC);
  if (fd < 0)
    return 0;
  if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
    close(fd); /* a live process holds it */
    return 0;
  }
  struct stat st;
  uint64_t off = 0, n = 0, size = fstat(fd, &st) == 0 ? (uint64_t)st.st_size : 0;
  ssize_t len;
  while ((len = read_record(sf, fd, off, size)) > 0) {
    uint32_t ev = count(sf->rec, (size_t)len);
    if (sy_spoolfile_append(sf, sf->rec, (size_t)len, ev) < 0) {
      sy_log_error("journal: cannot adopt %s: %s", path, strerror(sf->err));
      close(fd);
      return n;
    }
    off += SY_SPOOL_HDR + (uint64_t)len;
    n += ev;
  }
  if (len < 0)
    sy_log_warn("journal: %s: torn record at offset %llu ignored", path, (unsigned long long)off);
  sy_log_info("journal: adopted %llu events from %s for replay", (unsigned long long)n, path);
  unlink(path);
  close(fd);
  return n;
}

uint64_t sy_spoolfile_adopt_orphans(sy_spoolfile_t *sf, const char *instance,
                                    sy_spoolfile_count_cb count) {
  uint64_t n = 0;
  DIR *d = opendir(sf->dir);
  struct dirent *e;
  while (d != NULL && (e = readdir(d)) != NULL) {
    size_t l = strlen(e->d_name);
    if (l > 6 && strcmp(e->d_name + l - 6, ".spool") == 0 &&
        strncmp(e->d_name, instance, strlen(instance)) != 0) {
      char path[4096];
      snprintf(path, sizeof path, "%s/%s", sf->dir, e->d_name);
      n += adopt(sf, path, count);
    }
  }
  if (d != NULL)
    closedir(d);
  return n;
}

int sy_spoolfile_open(sy_spoolfile_t *sf, const char *dir, const char *instance, size_t cap,
                      char *err, size_t errlen) {
  sf->cap = cap;
  if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
    int e = errno;
    snprintf(err, errlen, "journal: cannot create %s: %s", dir, strerror(e));
    return fail(sf, e);
  }
  size_t n = strlen(dir) + strlen(instance) + 16;
  if ((sf->path = malloc(n)) != NULL)
    snprintf(sf->path, n, "%s/%s.spool", dir, instance);
  if (sf->path == NULL || (sf->dir = strdup(dir)) == NULL) {
    snprintf(err, errlen, "journal: out of memory");
    return fail(sf, ENOMEM);
  }
  if (access(dir, W_OK | X_OK) < 0) {
    int e = errno;
    snprintf(err, errlen, "journal: cannot write in %s: %s", dir, strerror(e));
    return fail(sf, e);
  }
  return 0;
}

int sy_spoolfile_ok(const sy_spoolfile_t *sf) {
  if (sf->size >= sf->cap)
    return 0;
  return sf->fd >= 0 || access(sf->dir, W_OK | X_OK) == 0;
}

void sy_spoolfile_close(sy_spoolfile_t *sf) {
  if (sf->fd >= 0)
    close(sf->fd);
  free(sf->path);
  free(sf->dir);
  free(sf->rec);
  sy_spoolfile_init(sf);
}
