/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * xs-txn: run a list of xenstore operations in ONE transaction, the way
 * libxl writes a device (libxl__device_generic_add): watchers see either
 * nothing or everything, permissions included. Operations come on stdin,
 * one per line, fields separated by a TAB:
 *   mkdir  PATH
 *   rm     PATH
 *   write  PATH  VALUE          (VALUE may be empty or contain spaces)
 *   chmod  PATH  PERM [PERM...] (as xenstore-chmod: n0 r5 w3 b7; the
 *                                first one names the owner)
 *   cleanup PATH                libxl__xs_path_cleanup: rm PATH, then its
 *                                parents while they are empty
 * The transaction is retried on EAGAIN, like libxl's. Honours
 * XENSTORED_PATH like every libxenstore client. Exit 0 on success.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xenstore.h>

#define MAX_OPS 512
#define MAX_PERMS 16

struct op {
	char *line;		/* owns the strings below */
	char kind;		/* 'm', 'r', 'w', 'c', 'x' */
	char *path;
	char *value;		/* write: the value; chmod: the perms */
};

static int parse_perms(char *spec, struct xs_permissions *p, unsigned int *n)
{
	char *save = NULL, *tok;

	*n = 0;
	for (tok = strtok_r(spec, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
		char *end;
		unsigned long id;

		if (*n == MAX_PERMS)
			return -1;
		switch (tok[0]) {
		case 'n': p[*n].perms = XS_PERM_NONE; break;
		case 'r': p[*n].perms = XS_PERM_READ; break;
		case 'w': p[*n].perms = XS_PERM_WRITE; break;
		case 'b': p[*n].perms = XS_PERM_READ | XS_PERM_WRITE; break;
		default: return -1;
		}
		id = strtoul(tok + 1, &end, 10);
		if (!tok[1] || *end || id > 0xFFFF)
			return -1;
		p[*n].id = (unsigned int)id;
		(*n)++;
	}
	return *n ? 0 : -1;
}

static int parse_line(char *line, struct op *op)
{
	char *tab1 = strchr(line, '\t'), *tab2;

	if (!tab1)
		return -1;
	*tab1 = 0;
	op->path = tab1 + 1;
	tab2 = strchr(op->path, '\t');
	if (tab2)
		*tab2 = 0;
	op->value = tab2 ? tab2 + 1 : NULL;
	if (!*op->path)
		return -1;
	if (!strcmp(line, "mkdir") && !op->value)
		op->kind = 'm';
	else if (!strcmp(line, "rm") && !op->value)
		op->kind = 'r';
	else if (!strcmp(line, "write") && op->value)
		op->kind = 'w';
	else if (!strcmp(line, "chmod") && op->value)
		op->kind = 'c';
	else if (!strcmp(line, "cleanup") && !op->value)
		op->kind = 'x';
	else
		return -1;
	return 0;
}

/* libxl__xs_path_cleanup: remove PATH (a missing PATH is not an error,
 * but then nothing else is removed), then each parent while it has no
 * children left. */
static bool path_cleanup(struct xs_handle *h, xs_transaction_t t,
			 const char *path)
{
	char buf[XENSTORE_ABS_PATH_MAX + 1];
	char *last;

	if (!xs_rm(h, t, path))
		return errno == ENOENT;
	snprintf(buf, sizeof(buf), "%s", path);
	while ((last = strrchr(buf, '/')) != NULL) {
		unsigned int n = 0;
		char **dir;

		*last = 0;
		if (!*buf)
			break;
		dir = xs_directory(h, t, buf, &n);
		free(dir);
		if (!dir || n)
			break;
		if (!xs_rm(h, t, buf))
			return false;
	}
	return true;
}

/* 0: committed, EAGAIN: retry, other: error (errno value). */
static int run(struct xs_handle *h, struct op *ops, unsigned int nops)
{
	xs_transaction_t t = xs_transaction_start(h);
	unsigned int i;

	if (t == XBT_NULL)
		return errno ? errno : EIO;
	for (i = 0; i < nops; i++) {
		struct op *op = &ops[i];
		struct xs_permissions perms[MAX_PERMS];
		unsigned int nperms;
		char spec[1024];
		bool ok;

		switch (op->kind) {
		case 'm':
			ok = xs_mkdir(h, t, op->path);
			break;
		case 'r':
			/* like libxl's xs_rm: a missing node is fine */
			ok = xs_rm(h, t, op->path) || errno == ENOENT;
			break;
		case 'w':
			ok = xs_write(h, t, op->path, op->value, strlen(op->value));
			break;
		case 'x':
			ok = path_cleanup(h, t, op->path);
			break;
		default:
			snprintf(spec, sizeof(spec), "%s", op->value);
			if (parse_perms(spec, perms, &nperms) < 0) {
				fprintf(stderr, "xs-txn: bad permissions '%s'\n", op->value);
				xs_transaction_end(h, t, true);
				return EINVAL;
			}
			ok = xs_set_permissions(h, t, op->path, perms, nperms);
			break;
		}
		if (!ok) {
			int err = errno;

			fprintf(stderr, "xs-txn: %s %s: %s\n",
				op->kind == 'm' ? "mkdir" : op->kind == 'r' ? "rm" :
				op->kind == 'w' ? "write" : op->kind == 'x' ? "cleanup" :
				"chmod",
				op->path, strerror(err));
			xs_transaction_end(h, t, true);
			return err ? err : EIO;
		}
	}
	if (!xs_transaction_end(h, t, false))
		return errno == EAGAIN ? EAGAIN : (errno ? errno : EIO);
	return 0;
}

int main(void)
{
	static struct op ops[MAX_OPS];
	unsigned int nops = 0, attempt;
	struct xs_handle *h;
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	int rc = EAGAIN;

	while ((len = getline(&line, &cap, stdin)) >= 0) {
		if (len && line[len - 1] == '\n')
			line[--len] = 0;
		if (!len)
			continue;
		if (nops == MAX_OPS) {
			fprintf(stderr, "xs-txn: too many operations\n");
			free(line);
			while (nops)
				free(ops[--nops].line);
			return 2;
		}
		if (parse_line(line, &ops[nops]) < 0) {
			fprintf(stderr, "xs-txn: bad line %u\n", nops + 1);
			free(line);
			while (nops)
				free(ops[--nops].line);
			return 2;
		}
		ops[nops++].line = line;
		line = NULL;	/* now owned by the op */
		cap = 0;
	}
	free(line);
	h = xs_open(0);
	if (!h) {
		perror("xs-txn: xs_open");
		rc = EIO;
	} else {
		for (attempt = 0; rc == EAGAIN && attempt < 100; attempt++)
			rc = run(h, ops, nops);
		xs_close(h);
	}
	while (nops)
		free(ops[--nops].line);
	if (rc) {
		fprintf(stderr, "xs-txn: transaction failed: %s\n", strerror(rc));
		return 1;
	}
	return 0;
}
