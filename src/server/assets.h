/*
 * The console's files, embedded at build time by scripts/embed-assets (web/ → web_assets.c).
 */
#ifndef SO_SERVER_ASSETS_H
#define SO_SERVER_ASSETS_H

#include <stddef.h>

struct so_asset {
	const char *path; /* "/" for index.html, "/console/<name>" for the others */
	const char *type; /* Content-Type */
	const char *data; /* the bytes, with a NUL after them */
	size_t len;
};

extern const struct so_asset so_assets[];
extern const size_t so_assets_count;

#endif
