/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A harness without libFuzzer: feeds each file named (or each file of each
 * directory named) to LLVMFuzzerTestOneInput once, in name order. Built
 * in every configuration, so that a change which breaks a harness shows
 * in the ordinary build, and its seeds run with gcc, the sanitizers and
 * valgrind as the unit tests do. An invariant that fails aborts. */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *data = NULL;
	size_t size = 0, cap = 0, n;

	if (!f) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	do {
		if (size == cap) {
			uint8_t *grown = realloc(data, cap = cap ? cap * 2 : 4096);
			if (!grown)
				abort();
			data = grown;
		}
		n = fread(data + size, 1, cap - size, f);
		size += n;
	} while (n > 0);
	fclose(f);
	LLVMFuzzerTestOneInput(data, size);
	free(data);
	return 0;
}

static int only_files(const struct dirent *e)
{
	return e->d_name[0] != '.';
}

static int run_path(const char *path, unsigned *count)
{
	struct dirent **names;
	struct stat st;
	int n, r = 0;

	if (stat(path, &st) < 0) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		(*count)++;
		return run_file(path);
	}
	n = scandir(path, &names, only_files, alphasort);
	if (n < 0) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	for (int i = 0; i < n; i++) {
		char *file;
		if (r == 0 && asprintf(&file, "%s/%s", path, names[i]->d_name) >= 0) {
			printf("%s\n", file);
			fflush(stdout);
			(*count)++;
			r = run_file(file);
			free(file);
		}
		free(names[i]);
	}
	free(names);
	return r;
}

int main(int argc, char **argv)
{
	unsigned count = 0;

	for (int i = 1; i < argc; i++)
		if (run_path(argv[i], &count) < 0)
			return 1;
	printf("%u inputs, every invariant held\n", count);
	return count ? 0 : 1;
}
