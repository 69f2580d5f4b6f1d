/*
 * Retention: events older than audit.retention move, up to a signed checkpoint, into an
 * archive file (an export segment with its checkpoints, verifiable on its own), and are then
 * pruned from the store, which keeps the frontier at that point so that what stays online
 * still verifies. The archiving is itself an audit event (audit.archived, with the file's
 * SHA-256).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "audit/audit.h"
#include "audit/log.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"
#include "server/internal.h"

#define ARCHIVE_CHECK_INTERVAL_MS (60 * 1000)
#define PAGE 2000

struct segment {
	FILE *f;
	crypto_hash_sha256_state sha;
	so_merkle_frontier_t tree;
	int64_t seq, to;
	char last_hash[65];
	so_checkpoint_row_t *cps;
	size_t ncps, next_cp;
	unsigned char keys[SO_AUDIT_MAX_KEYS][32]; /* keys seen: the base's and rotations' */
	size_t nkeys;
	so_buf_t line, ev;
	int failed;
};

static void
emit(struct segment *sg, const so_buf_t *b)
{
	if (fwrite(b->data, 1, b->len, sg->f) != b->len)
		sg->failed = 1;
	crypto_hash_sha256_update(&sg->sha, (const unsigned char *)b->data, b->len);
}

static int
archive_row(void *ctx, const so_audit_row_t *row)
{
	struct segment *sg = ctx;
	so_hash_t chain, leaf;
	if (row->seq != sg->seq + 1 || row->seq > sg->to ||
	    sodium_hex2bin(chain, sizeof(chain), row->hash, 64, NULL, NULL, NULL))
		return SO_ESTORE;
	so_buf_reset(&sg->ev);
	so_buf_reset(&sg->line);
	int rc = so_audit_event_canonical(row->seq, row->at, row->type, row->request_id, row->actor,
	                                  row->data, &sg->ev);
	if (!rc)
		rc = so_audit_event_line(so_buf_cstr(&sg->ev), sg->ev.len, row->hash, row->prev_hash,
		                         &sg->line);
	if (!rc)
		rc = so_buf_add(&sg->line, "\n", 1);
	while (!rc && sg->next_cp < sg->ncps && sg->cps[sg->next_cp].size <= row->seq) {
		so_checkpoint_row_t *cr = &sg->cps[sg->next_cp++];
		so_checkpoint_t cp = {.size = (uint64_t)cr->size, .at = cr->at};
		memcpy(cp.key_id, cr->key_id, sizeof(cp.key_id));
		if (cr->size == row->seq &&
		    !sodium_hex2bin(cp.root, 32, cr->root, 64, NULL, NULL, NULL) &&
		    !sodium_hex2bin(cp.signature, 64, cr->signature, 128, NULL, NULL, NULL)) {
			rc = so_checkpoint_line(&cp, &sg->line);
			if (!rc)
				rc = so_buf_add(&sg->line, "\n", 1);
		}
	}
	if (rc)
		return rc;
	emit(sg, &sg->line);
	if (!strcmp(row->type, "audit.key_rotated") && sg->nkeys < SO_AUDIT_MAX_KEYS) {
		json_error_t jerr;
		json_t *d = json_loads(row->data, 0, &jerr);
		const char *pk = json_string_value(json_object_get(d, "new_public_key"));
		if (pk && strlen(pk) == 64 &&
		    !sodium_hex2bin(sg->keys[sg->nkeys], 32, pk, 64, NULL, NULL, NULL))
			sg->nkeys++;
		json_decref(d);
	}
	so_merkle_leaf_hash(chain, SO_HASH_LEN, leaf);
	so_merkle_append(&sg->tree, leaf);
	sg->seq = row->seq;
	memcpy(sg->last_hash, row->hash, 65);
	return SO_OK;
}

struct prune_job {
	const char *file;
	char sha[65];
	int64_t from, to;
	so_audit_base_t base;
	int overtaken; /* another node archived meanwhile: nothing was recorded */
};

/* In the writer (on a shared store, with no other node writing): record the archive and
 * prune, unless another node archived meanwhile. */
static int
op_prune(so_store_t *s, void *arg)
{
	struct prune_job *pj = arg;
	so_audit_base_t now_base;
	int rc = s->ops->audit_base_get(s, &now_base);
	if (rc == SO_ENOTFOUND)
		now_base.seq = 0;
	else if (rc)
		return rc;
	if ((pj->overtaken = now_base.seq != pj->from - 1))
		return SO_OK;
	rc = so_audit_append(s, "audit.archived", NULL, NULL,
	                         json_pack("{s:I, s:I, s:s, s:s}", "from_seq", (json_int_t)pj->from,
	                                   "to_seq", (json_int_t)pj->to, "file", pj->file, "sha256",
	                                   pj->sha),
	                         so_clock_now_ms());
	return rc ? rc : s->ops->audit_prune(s, &pj->base);
}

/* Whether the file at `path` has SHA-256 `md`. */
static int
same_content(const char *path, const unsigned char md[32])
{
	crypto_hash_sha256_state st;
	unsigned char buf[65536], got[32];
	size_t n;
	FILE *f = fopen(path, "rb");
	if (!f)
		return 0;
	crypto_hash_sha256_init(&st);
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		crypto_hash_sha256_update(&st, buf, n);
	int ok = !ferror(f);
	fclose(f);
	crypto_hash_sha256_final(&st, got);
	return ok && sodium_memcmp(got, md, 32) == 0;
}

static int
mkdirs(const char *dir)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s", dir);
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0700) && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return mkdir(path, 0700) && errno != EEXIST ? -1 : 0;
}

static int
fsync_path(const char *path, int dir)
{
	int fd = open(path, (dir ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rc = fsync(fd);
	close(fd);
	return rc;
}

/* Archive events up to the latest checkpoint older than the retention. Sweeper thread. */
void
audit_archive_maybe(so_server_t *srv)
{
	so_audit_base_t base = {0};
	struct segment sg = {0};
	char path[4352], tmp[4400], header_base[64 * 65 + 256];
	int64_t now = so_clock_now_ms(), cutoff = now - srv->cfg->retention * 1000;
	int rc;

	if (so_clock_mono_ms() - srv->last_archive_check < ARCHIVE_CHECK_INTERVAL_MS &&
	    srv->last_archive_check)
		return;
	srv->last_archive_check = so_clock_mono_ms();

	so_store_t *s = readers_take(&srv->readers);
	rc = s->ops->audit_base_get(s, &base);
	if (rc == SO_ENOTFOUND) {
		rc = SO_OK;
		base.seq = 0;
	}
	if (!rc)
		rc = s->ops->checkpoint_list(s, base.seq, 100000000, &sg.cps, &sg.ncps);
	int64_t to = 0;
	for (size_t i = 0; !rc && i < sg.ncps; i++)
		if (sg.cps[i].at < cutoff)
			to = sg.cps[i].size;
	if (rc || to <= base.seq)
		goto out;

	so_merkle_frontier_init(&sg.tree);
	if (base.seq && (so_merkle_frontier_parse((uint64_t)base.seq, base.frontier, &sg.tree) ||
	                 sodium_hex2bin(sg.keys[0], 32, base.public_key, 64, NULL, NULL, NULL))) {
		rc = SO_ESTORE;
		goto out;
	}
	sg.nkeys = base.seq ? 1 : 0;
	if (!base.seq && srv->has_first_pk)
		memcpy(sg.keys[sg.nkeys++], srv->first_pk, 32);
	pthread_mutex_lock(&srv->audit_lock);
	memcpy(sg.keys[sg.nkeys++], srv->key->pk, 32);
	pthread_mutex_unlock(&srv->audit_lock);
	sg.seq = base.seq;
	sg.to = to;
	so_buf_init(&sg.line, (size_t)128 << 20);
	so_buf_init(&sg.ev, (size_t)64 << 20);

	if (mkdirs(srv->cfg->archive_dir)) {
		so_error("audit: cannot create %s: %s", srv->cfg->archive_dir, strerror(errno));
		goto out;
	}
	snprintf(path, sizeof(path), "%.4096s/audit-%020" PRId64 "-%020" PRId64 ".jsonl",
	         srv->cfg->archive_dir, base.seq + 1, to);
	snprintf(tmp, sizeof(tmp), "%s.%s.tmp", path, srv->node); /* nodes may share the directory */
	if (!(sg.f = fopen(tmp, "w"))) {
		so_error("audit: cannot write %s: %s", tmp, strerror(errno));
		goto out;
	}
	crypto_hash_sha256_init(&sg.sha);
	if (base.seq)
		snprintf(header_base, sizeof(header_base),
		         "{\"frontier\":\"%s\",\"hash\":\"%s\",\"public_key\":\"%s\",\"seq\":%" PRId64 "}",
		         base.frontier, base.hash, base.public_key, base.seq);
	else
		snprintf(header_base, sizeof(header_base), "null");
	so_buf_t head;
	so_buf_init(&head, sizeof(header_base) + 512);
	so_buf_printf(&head,
	              "{\"export\":{\"archive\":true,\"base\":%s,\"format\":\"signoff-audit-jsonl/1\","
	              "\"through\":%" PRId64 "}}\n",
	              header_base, to);
	emit(&sg, &head);
	so_buf_free(&head);
	while (!rc && sg.seq < to) {
		int64_t before = sg.seq;
		s = s ? s : readers_take(&srv->readers);
		size_t want = to - sg.seq < PAGE ? (size_t)(to - sg.seq) : PAGE;
		rc = s->ops->audit_each(s, sg.seq, want, archive_row, &sg);
		if (!rc && sg.seq == before)
			rc = SO_ESTORE;
	}
	readers_give(&srv->readers, s);
	s = NULL;
	if (rc || sg.failed || fflush(sg.f) || fsync(fileno(sg.f))) {
		so_error("audit: archiving events %" PRId64 "..%" PRId64 " failed; nothing was pruned",
		         base.seq + 1, to);
		fclose(sg.f);
		sg.f = NULL;
		unlink(tmp);
		goto out;
	}
	fclose(sg.f);
	sg.f = NULL;
	struct prune_job pj = {.file = strrchr(path, '/') ? strrchr(path, '/') + 1 : path,
	                       .from = base.seq + 1, .to = to};
	unsigned char md[32];
	crypto_hash_sha256_final(&sg.sha, md);
	sodium_bin2hex(pj.sha, sizeof(pj.sha), md, sizeof(md));
	/* link, not rename: a different file for the same range (another node's) is never
	 * replaced; the same bytes (left by a run that stopped before its prune) are used. */
	int link_errno = link(tmp, path) ? errno : 0;
	if (link_errno && (link_errno != EEXIST || !same_content(path, md))) {
		errno = link_errno;
		if (link_errno == EEXIST)
			so_warn("audit: %s exists with other content; nothing was pruned", path);
		else
			so_error("audit: cannot put %s in place: %s", path, strerror(errno));
		unlink(tmp);
		goto out;
	}
	unlink(tmp);
	if (fsync_path(srv->cfg->archive_dir, 1)) {
		so_error("audit: cannot put %s in place: %s", path, strerror(errno));
		goto out;
	}

	/* The new base: where the online log now starts. */
	pj.base.seq = to;
	pj.base.at = now;
	memcpy(pj.base.hash, sg.last_hash, 65);
	so_merkle_frontier_text(&sg.tree, pj.base.frontier);
	const so_checkpoint_row_t *last = NULL;
	for (size_t i = 0; i < sg.ncps; i++)
		if (sg.cps[i].size == to)
			last = &sg.cps[i];
	int found = 0;
	for (size_t k = 0; last && k < sg.nkeys && !found; k++) {
		char id[SO_KEY_ID_LEN + 1];
		so_audit_key_id(sg.keys[k], id);
		if (!strcmp(id, last->key_id)) {
			sodium_bin2hex(pj.base.public_key, sizeof(pj.base.public_key), sg.keys[k], 32);
			found = 1;
		}
	}
	if (!found) {
		so_error("audit: no known key signed checkpoint %" PRId64 "; nothing was pruned", to);
		goto out;
	}
	rc = so_writer_run(srv->writer, op_prune, &pj);
	if (rc == SO_OK && pj.overtaken) {
		/* The file stays: with a shared directory another node's record may name these
		 * very bytes, and a file of its own verifies alone anyway. */
		so_info("audit: another node archived events meanwhile; this run recorded nothing");
		goto out;
	}
	if (rc) {
		so_error("audit: could not prune after archiving %s: %s", path, so_strerror(rc));
		goto out;
	}
	so_info("audit: archived events %" PRId64 "..%" PRId64 " to %s (sha256 %s)", pj.from, to,
	        path, pj.sha);
out:
	if (s)
		readers_give(&srv->readers, s);
	if (sg.f)
		fclose(sg.f);
	so_buf_free(&sg.line);
	so_buf_free(&sg.ev);
	free(sg.cps);
}
