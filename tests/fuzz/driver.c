/*
 * driver.c — runs a libFuzzer target without libFuzzer: a plain main() that feeds
 * every file named on the command line (and every regular file directly inside a
 * directory named there, in name order) to LLVMFuzzerTestOneInput, once each.
 *
 * Linked with a fuzz_<name>.c instead of -fsanitize=fuzzer, it turns the target's
 * checked-in corpus into a regression test that any compiler builds (the meson
 * suite `fuzz`; under ASan+UBSan it checks memory as well). Each input sits in a
 * buffer of exactly its size, so a read past the end is caught by ASan as it is
 * under libFuzzer. Arguments that start with '-' (libFuzzer flags) are ignored.
 *
 * Prints "N inputs" and exits 0; a target that finds a problem aborts. A path that
 * cannot be read, or no input at all, exits 1: a misnamed corpus must not pass.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* Optional in a target: called once before the first input, as libFuzzer does. */
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

/* Reads the file at path into a new buffer of exactly its size (*len bytes). */
static uint8_t *read_all(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (f == NULL)
    return NULL;
  uint8_t *buf = NULL;
  size_t n = 0;
  struct stat st;
  if (fstat(fileno(f), &st) == 0 && st.st_size >= 0) {
    /* malloc(0) may return NULL: keep at least one byte, but pass the true size. */
    buf = malloc(st.st_size > 0 ? (size_t)st.st_size : 1);
    if (buf != NULL)
      n = fread(buf, 1, (size_t)st.st_size, f);
    if (buf != NULL && (n != (size_t)st.st_size || ferror(f))) {
      free(buf);
      buf = NULL;
    }
  }
  fclose(f);
  *len = n;
  return buf;
}

/* Runs the target on one file; returns 0, or -1 after a message if it is unreadable. */
static int run_file(const char *path) {
  size_t len = 0;
  uint8_t *data = read_all(path, &len);
  if (data == NULL) {
    fprintf(stderr, "driver: cannot read %s: %s\n", path, strerror(errno));
    return -1;
  }
  LLVMFuzzerTestOneInput(data, len);
  free(data);
  return 0;
}

static int is_regular(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Runs the target on the regular files of dir (hidden ones skipped); adds to *count. */
static int run_dir(const char *dir, size_t *count) {
  struct dirent **names;
  int n = scandir(dir, &names, NULL, alphasort);
  if (n < 0) {
    fprintf(stderr, "driver: cannot list %s: %s\n", dir, strerror(errno));
    return -1;
  }
  int rc = 0;
  for (int i = 0; i < n; i++) {
    char path[4096];
    int plen = snprintf(path, sizeof path, "%s/%s", dir, names[i]->d_name);
    if (rc == 0 && names[i]->d_name[0] != '.' && plen > 0 && (size_t)plen < sizeof path &&
        is_regular(path)) {
      rc = run_file(path);
      *count += rc == 0;
    }
    free(names[i]);
  }
  free(names);
  return rc;
}

/* See the file comment. */
int main(int argc, char **argv) {
  if (LLVMFuzzerInitialize != NULL)
    LLVMFuzzerInitialize(&argc, &argv);
  size_t count = 0;
  for (int i = 1; i < argc; i++) {
    struct stat st;
    if (argv[i][0] == '-')
      continue;
    if (stat(argv[i], &st) != 0) {
      fprintf(stderr, "driver: %s: %s\n", argv[i], strerror(errno));
      return 1;
    }
    if (S_ISDIR(st.st_mode) ? run_dir(argv[i], &count) < 0 : run_file(argv[i]) < 0)
      return 1;
    count += !S_ISDIR(st.st_mode);
  }
  printf("%zu inputs\n", count);
  if (count == 0) {
    fprintf(stderr, "driver: no inputs\n");
    return 1;
  }
  return 0;
}
