/*
 * so_config_load_text on untrusted text: no crash or leak; a failure always names the file;
 * a success gives a sealed policy and a directory whose owners are configured humans.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "daemon/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	so_config_t cfg;
	char err[1024] = "";
	int rc = so_config_load_text(text, "fuzz.yaml", &cfg, err, sizeof(err));
	if (rc == SO_OK) {
		if (strncmp(cfg.policy.version, "sha256:", 7) || !cfg.listen || !cfg.store_url)
			abort();
		if (cfg.policy.def == SO_OUT_REVIEW && !cfg.policy.napprovers)
			abort();
		for (size_t i = 0; i < cfg.directory.n; i++) {
			const so_principal_t *p = &cfg.directory.items[i];
			if (!p->id || !p->groups)
				abort();
			if (p->owner) {
				const so_principal_t *o = so_directory_find(&cfg.directory, p->owner);
				if (!o || o->kind != SO_KIND_HUMAN)
					abort();
			}
		}
		so_config_free(&cfg);
	} else if (strncmp(err, "fuzz.yaml", 9)) {
		abort();
	}
	free(text);
	return 0;
}
