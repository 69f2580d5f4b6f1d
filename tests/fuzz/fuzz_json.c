/*
 * so_json_parse on untrusted bytes, and the canonical form's stability:
 * canonical(parse(canonical(x))) == canonical(x) for every x that parses.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const so_json_limits_t lim = {.max_depth = 32, .max_string = 65536, .max_items = 1000};
	json_t *v = NULL;
	char err[256];
	int rc = so_json_parse((const char *)data, size, &lim, &v, err, sizeof(err));
	if (rc != SO_OK) {
		if (v || (rc != SO_EBADJSON && rc != SO_ETOODEEP && rc != SO_ETOOLONG))
			abort();
		return 0;
	}
	char *c1 = so_json_canonical_str(v);
	if (!c1)
		abort();
	/* The canonical form is itself within the limits (it only drops whitespace). */
	json_t *again = NULL;
	rc = so_json_parse(c1, strlen(c1), &lim, &again, err, sizeof(err));
	if (rc != SO_OK) {
		fprintf(stderr, "canonical form does not parse again: %s\n  form: %s\n", err, c1);
		abort();
	}
	char *c2 = so_json_canonical_str(again);
	if (!c2 || strcmp(c1, c2)) {
		fprintf(stderr, "canonical form is not stable:\n  %s\n  %s\n", c1, c2 ? c2 : "(null)");
		abort();
	}
	char d1[65], d2[65];
	if (so_json_digest(v, d1) != SO_OK || so_json_digest(again, d2) != SO_OK || strcmp(d1, d2))
		abort();
	free(c1);
	free(c2);
	json_decref(again);
	json_decref(v);
	return 0;
}
