/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What the libFuzzer harnesses share: the input as a file (a memfd, read
 * through /proc/self/fd like any path), a private directory for files a
 * harness writes back, and invariants that name themselves when they
 * fail. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A violated invariant is a crash the fuzzer keeps, with its reason. */
#define FUZZ_CHECK(cond)                                                       \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "%s:%d: invariant failed: %s\n",       \
				__FILE__, __LINE__, #cond);                    \
			abort();                                               \
		}                                                              \
	} while (0)

static inline void fuzz_write_fd(int fd, const uint8_t *data, size_t size)
{
	size_t done = 0;

	if (ftruncate(fd, 0) < 0)
		abort();
	while (done < size) {
		ssize_t n = pwrite(fd, data + done, size - done, (off_t)done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			abort();
		done += (size_t)n;
	}
}

/* The input as a file: writes it to one memfd kept for the whole run and
 * returns its path. */
static inline const char *fuzz_input_path(const uint8_t *data, size_t size)
{
	static int fd = -1;
	static char path[64];

	if (fd < 0) {
		fd = memfd_create("fuzz-input", MFD_CLOEXEC);
		if (fd < 0) {
			perror("memfd_create");
			abort();
		}
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	}
	fuzz_write_fd(fd, data, size);
	return path;
}

static char fuzz_dir_path[64];

static inline void fuzz_dir_remove(void)
{
	char file[128];

	/* Only the files the harness made: "state" and "state.tmp". */
	if (!fuzz_dir_path[0])
		return;
	snprintf(file, sizeof(file), "%s/state", fuzz_dir_path);
	unlink(file);
	snprintf(file, sizeof(file), "%s/state.tmp", fuzz_dir_path);
	unlink(file);
	rmdir(fuzz_dir_path);
}

/* A file of the harness's own in a private directory (on tmpfs where
 * there is one, so the fsyncs of atomic writes cost nothing), removed at
 * exit. Harnesses use only this one name (and its ".tmp"). */
static inline const char *fuzz_state_path(void)
{
	static char path[96];

	if (!path[0]) {
		const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
		snprintf(fuzz_dir_path, sizeof(fuzz_dir_path), "%s/xennet-fuzz-XXXXXX", base);
		if (!mkdtemp(fuzz_dir_path)) {
			perror("mkdtemp");
			abort();
		}
		atexit(fuzz_dir_remove);
		snprintf(path, sizeof(path), "%s/state", fuzz_dir_path);
	}
	return path;
}

/* Messages quote hostile values escaped: no control byte reaches a
 * terminal or a log. */
static inline int fuzz_printable(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f)
			return 0;
	return 1;
}
