/*
 * The audit log as an auditor sees it: the Merkle tree and its signed checkpoints (made by
 * the sweeper every audit.checkpoint_every events or audit.checkpoint_interval, and at
 * shutdown), the public key, inclusion and consistency proofs, the streamed export, and a
 * verification the server runs on its own store.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "audit/audit.h"
#include "audit/log.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"
#include "server/internal.h"

#define PAGE 2000
#define MAX_PROOF_LEAVES ((uint64_t)1 << 26) /* 2 GiB of hashes would be too much */

/* ---- converting stored rows ---- */

static int
row_to_checkpoint(const so_checkpoint_row_t *row, so_checkpoint_t *cp)
{
	memset(cp, 0, sizeof(*cp));
	cp->size = (uint64_t)row->size;
	cp->at = row->at;
	memcpy(cp->key_id, row->key_id, sizeof(cp->key_id));
	if (sodium_hex2bin(cp->root, SO_HASH_LEN, row->root, 64, NULL, NULL, NULL) ||
	    sodium_hex2bin(cp->signature, 64, row->signature, 128, NULL, NULL, NULL))
		return SO_EINVAL;
	return SO_OK;
}

static json_t *
checkpoint_json(const so_checkpoint_row_t *row)
{
	char at[40];
	so_clock_format(row->at, at, sizeof(at));
	return json_pack("{s:I, s:s, s:s, s:s, s:s}", "size", (json_int_t)row->size, "root", row->root,
	                 "at", at, "key_id", row->key_id, "signature", row->signature);
}

/* ---- the tree and checkpoints ---- */

struct leaves {
	so_merkle_frontier_t *tree;
	so_hash_t *all; /* when collecting leaves for proofs */
	uint64_t n, cap;
	int64_t last_seq;
	so_server_t *srv; /* when set: note key rotations (at start) */
};

static int
add_leaf(void *ctx, const so_audit_row_t *row)
{
	struct leaves *l = ctx;
	so_hash_t chain, leaf;
	if (row->seq != l->last_seq + 1 ||
	    sodium_hex2bin(chain, sizeof(chain), row->hash, 64, NULL, NULL, NULL))
		return SO_ECONFLICT; /* a gap or a damaged hash: no checkpoint can be made over it */
	so_merkle_leaf_hash(chain, SO_HASH_LEN, leaf);
	if (l->srv && !strcmp(row->type, "audit.key_rotated")) {
		json_error_t jerr;
		json_t *d = json_loads(row->data, 0, &jerr);
		const char *id = json_string_value(json_object_get(d, "new_key_id"));
		const char *old = json_string_value(json_object_get(d, "old_public_key"));
		if (id && strlen(id) == SO_KEY_ID_LEN)
			memcpy(l->srv->rotated_to, id, SO_KEY_ID_LEN + 1);
		if (old && strlen(old) == 64 && !l->srv->has_first_pk &&
		    !sodium_hex2bin(l->srv->first_pk, 32, old, 64, NULL, NULL, NULL))
			l->srv->has_first_pk = 1;
		json_decref(d);
	}
	if (l->tree)
		so_merkle_append(l->tree, leaf);
	if (l->all) {
		if (l->n == l->cap)
			return SO_ETOOLARGE;
		memcpy(l->all[l->n], leaf, SO_HASH_LEN);
	}
	l->n++;
	l->last_seq = row->seq;
	return SO_OK;
}

/* Extend `tree` with every stored event after tree->size (up to `limit` leaves when > 0). */
static int
extend_tree(so_store_t *s, so_merkle_frontier_t *tree, so_server_t *note_rotations)
{
	struct leaves l = {.tree = tree, .last_seq = (int64_t)tree->size, .srv = note_rotations};
	for (;;) {
		uint64_t before = l.n;
		int rc = s->ops->audit_each(s, l.last_seq, PAGE, add_leaf, &l);
		if (rc)
			return rc;
		if (l.n - before < PAGE)
			return SO_OK;
	}
}

/*
 * A rotation writes the next key to "<key file>.next", commits its audit event, then renames
 * the file. If signoffd stopped in between, the log decides: keep the new key if the log
 * names it, else throw it away.
 */
static int
finish_rotation(so_server_t *srv)
{
	char next[4200], err[512], id[SO_KEY_ID_LEN + 1];
	so_audit_key_t fresh;
	snprintf(next, sizeof(next), "%s.next", srv->cfg->signing_key_file);
	if (access(next, F_OK))
		return SO_OK;
	if (so_audit_key_load(next, &fresh, err, sizeof(err))) {
		so_error("audit: %s", err);
		return SO_ECONFIG;
	}
	so_audit_key_id(fresh.pk, id);
	int rc = SO_OK;
	if (!strcmp(id, srv->rotated_to)) {
		if ((rc = so_audit_key_install(next, srv->cfg->signing_key_file, err, sizeof(err))) == SO_OK) {
			*srv->key = fresh;
			so_info("audit: finished the rotation to key %s", id);
		}
	} else {
		unlink(next);
		so_warn("audit: discarded %s: no committed rotation names it", next);
	}
	so_audit_key_wipe(&fresh);
	return rc;
}

int
audit_tree_init(so_server_t *srv)
{
	so_checkpoint_row_t latest;
	so_audit_base_t base;
	so_store_t *s = readers_take(&srv->readers);
	so_merkle_frontier_init(&srv->tree);
	int rc = s->ops->audit_base_get(s, &base);
	if (rc == SO_OK) {
		/* Older events were archived: the tree goes on from the frontier kept there, and the
		 * key that signed the archive's last checkpoint is where trust starts. */
		if (so_merkle_frontier_parse((uint64_t)base.seq, base.frontier, &srv->tree) ||
		    sodium_hex2bin(srv->first_pk, 32, base.public_key, 64, NULL, NULL, NULL))
			rc = SO_ESTORE;
		else
			srv->has_first_pk = 1;
	} else if (rc == SO_ENOTFOUND) {
		rc = SO_OK;
	}
	if (rc == SO_OK)
		rc = extend_tree(s, &srv->tree, srv);
	if (rc == SO_ECONFLICT) {
		so_error("audit: the log is damaged after event %" PRIu64 " (an event is missing or "
		         "altered); state changes are refused until it is restored from a backup, and "
		         "`signoff audit verify` names the point", srv->tree.size);
		srv->audit_damaged = 1;
		rc = SO_OK;
	}
	if (rc == SO_OK) {
		int crc = s->ops->checkpoint_latest(s, &latest);
		srv->checkpointed = crc == SO_OK ? (uint64_t)latest.size : 0;
		if (crc && crc != SO_ENOTFOUND)
			rc = crc;
		if (crc == SO_OK && (uint64_t)latest.size > srv->tree.size) {
			so_error("audit: a checkpoint covers %" PRId64 " events but the log holds %" PRIu64
			         " (truncated); state changes are refused until it is restored", latest.size,
			         srv->tree.size);
			srv->audit_damaged = 1;
		}
	}
	readers_give(&srv->readers, s);
	srv->last_checkpoint_at = so_clock_mono_ms();
	if (rc == SO_OK && srv->key)
		rc = finish_rotation(srv);
	return rc;
}

struct checkpoint_job {
	so_server_t *srv;
	so_merkle_frontier_t next;
	so_checkpoint_t cp;
	int made;
	int rotating;     /* signing over our own key's rotation (with the old key) */
	int64_t covered;  /* another node had signed this far already */
};

/*
 * Runs in the writer, so on a shared store no other node appends or signs meanwhile: the
 * tree is brought up to every stored event (other nodes' too), and nothing is signed twice
 * at one size. A node whose key another node rotated away signs nothing.
 */
static int
op_checkpoint(so_store_t *s, void *arg)
{
	struct checkpoint_job *job = arg;
	so_server_t *srv = job->srv;
	so_checkpoint_row_t row, latest;
	char own_id[SO_KEY_ID_LEN + 1];
	job->next = srv->tree;
	int rc = extend_tree(s, &job->next, srv);
	if (rc)
		return rc;
	if (job->next.size == srv->checkpointed)
		return SO_OK;
	if ((rc = s->ops->checkpoint_latest(s, &latest)) == SO_OK &&
	    (uint64_t)latest.size >= job->next.size) {
		job->covered = latest.size;
		return SO_OK;
	}
	if (rc && rc != SO_ENOTFOUND)
		return rc;
	/* The key in force is the one the last rotation named, else the one that signed so far:
	 * a node holding another (rotated away elsewhere, or a key file that does not belong to
	 * this log, as after restoring a backup beside a newer key) signs nothing. */
	const char *in_force = srv->rotated_to[0] ? srv->rotated_to : rc == SO_OK ? latest.key_id
	                                                                          : NULL;
	so_audit_key_id(srv->key->pk, own_id);
	if (!job->rotating && in_force && strcmp(in_force, own_id)) {
		so_error("audit: the log's signing key is %s, but this node holds %s: it signs no "
		         "checkpoint until that key file is installed here and signoffd restarted",
		         in_force, own_id);
		return SO_EDENIED;
	}
	job->cp.size = job->next.size;
	job->cp.at = so_clock_now_ms();
	so_merkle_frontier_root(&job->next, job->cp.root);
	if ((rc = so_checkpoint_sign(&job->cp, srv->key->sk, srv->key->pk)))
		return rc;
	row.size = (int64_t)job->cp.size;
	row.at = job->cp.at;
	memcpy(row.key_id, job->cp.key_id, sizeof(row.key_id));
	sodium_bin2hex(row.root, sizeof(row.root), job->cp.root, SO_HASH_LEN);
	sodium_bin2hex(row.signature, sizeof(row.signature), job->cp.signature, 64);
	if ((rc = s->ops->checkpoint_insert(s, &row)))
		return rc;
	job->made = 1;
	return SO_OK;
}

static void checkpoint_locked(so_server_t *srv, int force);

void
audit_checkpoint_maybe(so_server_t *srv, int force)
{
	pthread_mutex_lock(&srv->audit_lock);
	checkpoint_locked(srv, force);
	pthread_mutex_unlock(&srv->audit_lock);
}

void
audit_public_key(so_server_t *srv, unsigned char pk[32])
{
	pthread_mutex_lock(&srv->audit_lock);
	memcpy(pk, srv->key->pk, 32);
	pthread_mutex_unlock(&srv->audit_lock);
}

static void
checkpoint_locked(so_server_t *srv, int force)
{
	int64_t head = 0;
	char hash[65];
	if (!srv->key || srv->audit_damaged)
		return; /* never sign over a log that does not hold together */
	so_store_t *s = readers_take(&srv->readers);
	int rc = s->ops->audit_head(s, &head, hash);
	readers_give(&srv->readers, s);
	if (rc || (uint64_t)head <= srv->checkpointed)
		return;
	uint64_t unsigned_events = (uint64_t)head - srv->checkpointed;
	int64_t age = so_clock_mono_ms() - srv->last_checkpoint_at;
	if (!force && unsigned_events < (uint64_t)srv->cfg->checkpoint_every &&
	    age < srv->cfg->checkpoint_interval * 1000)
		return;
	/* Catch the tree up on a read connection first: on a shared store other nodes may have
	 * written many events, and reading them under the write lock would hold up every node. */
	so_merkle_frontier_t caught_up = srv->tree;
	s = readers_take(&srv->readers);
	if (extend_tree(s, &caught_up, srv) == SO_OK)
		srv->tree = caught_up;
	readers_give(&srv->readers, s);
	struct checkpoint_job *job = calloc(1, sizeof(*job));
	if (!job)
		return;
	job->srv = srv;
	rc = so_writer_run(srv->writer, op_checkpoint, job);
	if (rc == SO_OK && (job->made || job->covered)) {
		srv->tree = job->next;
		srv->checkpointed = job->made ? job->cp.size : (uint64_t)job->covered;
		srv->last_checkpoint_at = so_clock_mono_ms();
		if (job->made)
			so_debug("audit: checkpoint at %" PRIu64, job->cp.size);
	} else if (rc) {
		so_error("audit: could not sign a checkpoint: %s", so_strerror(rc));
	}
	free(job);
}

/* ---- endpoints ---- */

static int
first_key(so_server_t *srv, unsigned char pk[32])
{
	pthread_mutex_lock(&srv->audit_lock);
	int has = srv->has_first_pk;
	if (has)
		memcpy(pk, srv->first_pk, 32);
	pthread_mutex_unlock(&srv->audit_lock);
	return has ? 0 : -1;
}

/* ---- key rotation ---- */

struct rotation {
	so_server_t *srv;
	const char *actor;
	so_audit_key_t *fresh;
	struct checkpoint_job cp;
};

static int
op_rotate(so_store_t *s, void *arg)
{
	struct rotation *ro = arg;
	so_server_t *srv = ro->srv;
	char old_id[SO_KEY_ID_LEN + 1], new_id[SO_KEY_ID_LEN + 1], old_pk[65], new_pk[65];
	so_audit_key_id(srv->key->pk, old_id);
	so_audit_key_id(ro->fresh->pk, new_id);
	sodium_bin2hex(old_pk, sizeof(old_pk), srv->key->pk, 32);
	sodium_bin2hex(new_pk, sizeof(new_pk), ro->fresh->pk, 32);
	int rc = so_audit_append(s, "audit.key_rotated", NULL, ro->actor,
	                         json_pack("{s:s, s:s, s:s, s:s}", "old_key_id", old_id,
	                                   "old_public_key", old_pk, "new_key_id", new_id,
	                                   "new_public_key", new_pk),
	                         so_clock_now_ms());
	/* The old key signs a checkpoint over the rotation: that is how verifiers learn the new one. */
	return rc ? rc : op_checkpoint(s, &ro->cp);
}

void
h_audit_rotate_key(struct conn *c, struct MHD_Connection *mc)
{
	so_server_t *srv = c->srv;
	char next[4200], err[512], id[SO_KEY_ID_LEN + 1];
	so_audit_key_t fresh;
	if (!is_admin(srv, c->caller)) {
		reply_error(c, 403, "forbidden", "only members of '%s' may rotate the audit key",
		            srv->cfg->admin_group);
		return;
	}
	if (srv->audit_damaged) {
		reply_error(c, 503, "audit_damaged", "the audit log is damaged; the key is not rotated");
		return;
	}
	snprintf(next, sizeof(next), "%s.next", srv->cfg->signing_key_file);
	pthread_mutex_lock(&srv->audit_lock);
	unlink(next); /* a leftover from a rotation that never committed */
	if (so_audit_key_create(next, &fresh, err, sizeof(err))) {
		pthread_mutex_unlock(&srv->audit_lock);
		reply_error(c, 503, "unavailable", "%s", err);
		return;
	}
	struct rotation ro = {.srv = srv, .actor = c->caller->id, .fresh = &fresh};
	ro.cp.srv = srv;
	ro.cp.rotating = 1;
	unsigned char old_pk[32];
	char was_rotated_to[sizeof(srv->rotated_to)];
	memcpy(old_pk, srv->key->pk, 32);
	memcpy(was_rotated_to, srv->rotated_to, sizeof(was_rotated_to));
	int rc = so_writer_run(srv->writer, op_rotate, &ro);
	if (rc == SO_OK) {
		srv->tree = ro.cp.next;
		srv->checkpointed = ro.cp.cp.size;
		srv->last_checkpoint_at = so_clock_mono_ms();
		if (!srv->has_first_pk) {
			memcpy(srv->first_pk, old_pk, 32);
			srv->has_first_pk = 1;
		}
		so_audit_key_id(fresh.pk, id);
		memcpy(srv->rotated_to, id, sizeof(id));
		if (so_audit_key_install(next, srv->cfg->signing_key_file, err, sizeof(err)))
			so_error("audit: %s (the rotation is recorded; restart finishes it)", err);
		*srv->key = fresh;
	} else {
		/* the tree walk saw our own rotation event, which did not commit */
		memcpy(srv->rotated_to, was_rotated_to, sizeof(was_rotated_to));
		unlink(next);
	}
	pthread_mutex_unlock(&srv->audit_lock);
	so_audit_key_wipe(&fresh);
	if (rc) {
		reply_store_err(c, rc);
		return;
	}
	char pk[65];
	sodium_bin2hex(pk, sizeof(pk), srv->key->pk, 32);
	so_info("audit: signing key rotated by %s to %s", c->caller->id, id);
	reply_json(c, 200, json_pack("{s:s, s:s, s:I}", "key_id", id, "public_key", pk,
	                             "checkpoint_size", (json_int_t)ro.cp.cp.size));
}

static int
auditor_only(struct conn *c)
{
	if (is_auditor(c->srv, c->caller))
		return 0;
	reply_error(c, 403, "forbidden", "only auditors and admins may read the audit log");
	return -1;
}

void
h_audit_pubkey(struct conn *c, struct MHD_Connection *mc)
{
	char pk[65], id[SO_KEY_ID_LEN + 1], first_pk[65], first_id[SO_KEY_ID_LEN + 1];
	unsigned char raw[32], first[32];
	audit_public_key(c->srv, raw);
	if (first_key(c->srv, first))
		memcpy(first, raw, 32);
	sodium_bin2hex(pk, sizeof(pk), raw, 32);
	so_audit_key_id(raw, id);
	sodium_bin2hex(first_pk, sizeof(first_pk), first, 32);
	so_audit_key_id(first, first_id);
	reply_json(c, 200, json_pack("{s:s, s:s, s:s, s:s, s:s}", "algorithm", "ed25519", "key_id",
	                             id, "public_key", pk, "first_key_id", first_id,
	                             "first_public_key", first_pk));
}

void
h_audit_checkpoint(struct conn *c, struct MHD_Connection *mc)
{
	so_checkpoint_row_t row;
	if (auditor_only(c))
		return;
	so_store_t *s = readers_take(&c->srv->readers);
	int rc = s->ops->checkpoint_latest(s, &row);
	readers_give(&c->srv->readers, s);
	if (rc == SO_ENOTFOUND)
		reply_error(c, 404, "not_found", "no checkpoint has been signed yet");
	else if (rc)
		reply_store_err(c, rc);
	else
		reply_json(c, 200, checkpoint_json(&row));
}

static int
query_u64(struct MHD_Connection *mc, const char *key, uint64_t *out)
{
	const char *v = MHD_lookup_connection_value(mc, MHD_GET_ARGUMENT_KIND, key);
	char *end;
	if (!v)
		return 0;
	unsigned long long n = strtoull(v, &end, 10);
	if (*end || end == v || v[0] == '-')
		return -1;
	*out = n;
	return 1;
}

/*
 * The leaf hashes of events base->size + 1 .. size, malloc'd into `*out`; `base` is the
 * frontier at the start of the online log (size 0 when nothing was archived).
 */
static int
load_leaves(so_store_t *s, uint64_t size, so_merkle_frontier_t *base, so_hash_t **out)
{
	so_audit_base_t b;
	so_merkle_frontier_init(base);
	int rc = s->ops->audit_base_get(s, &b);
	if (rc == SO_OK) {
		if (so_merkle_frontier_parse((uint64_t)b.seq, b.frontier, base))
			return SO_ESTORE;
	} else if (rc != SO_ENOTFOUND) {
		return rc;
	}
	if (size < base->size)
		return SO_ENOTFOUND;
	uint64_t want_total = size - base->size;
	struct leaves l = {.cap = want_total, .last_seq = (int64_t)base->size};
	if (want_total > MAX_PROOF_LEAVES)
		return SO_ETOOLARGE;
	l.all = malloc((want_total ? want_total : 1) * sizeof(so_hash_t));
	if (!l.all)
		return SO_ENOMEM;
	while (l.n < want_total) {
		uint64_t before = l.n;
		size_t want = want_total - l.n < PAGE ? (size_t)(want_total - l.n) : PAGE;
		rc = s->ops->audit_each(s, l.last_seq, want, add_leaf, &l);
		if (rc || l.n == before) {
			free(l.all);
			return rc ? rc : SO_ESTORE;
		}
	}
	*out = l.all;
	return SO_OK;
}

static json_t *
hashes_json(const so_hash_t *h, int n)
{
	json_t *a = json_array();
	for (int i = 0; i < n; i++) {
		char hex[65];
		sodium_bin2hex(hex, sizeof(hex), h[i], SO_HASH_LEN);
		json_array_append_new(a, json_string(hex));
	}
	return a;
}

struct one_event {
	int64_t seq;
	json_t *event;
	char hash[65];
	char prev_hash[65];
};

static int
grab_event(void *ctx, const so_audit_row_t *row)
{
	struct one_event *e = ctx;
	so_buf_t b;
	so_buf_init(&b, (size_t)64 << 20);
	int rc = so_audit_event_canonical(row->seq, row->at, row->type, row->request_id, row->actor,
	                                  row->data, &b);
	if (rc == SO_OK) {
		json_error_t jerr;
		e->event = json_loadb(so_buf_cstr(&b), b.len, 0, &jerr);
		memcpy(e->hash, row->hash, sizeof(e->hash));
		memcpy(e->prev_hash, row->prev_hash, sizeof(e->prev_hash));
		e->seq = row->seq;
	}
	so_buf_free(&b);
	return rc ? rc : 1; /* one row is enough */
}

void
h_audit_proof(struct conn *c, struct MHD_Connection *mc)
{
	uint64_t seq = 0, size = 0, from = 0, to = 0;
	so_checkpoint_row_t cp, cp_from;
	so_hash_t *leaves = NULL;
	so_hash_t proof[SO_MERKLE_MAX_PROOF];
	int rc;

	if (auditor_only(c))
		return;
	int has_seq = query_u64(mc, "seq", &seq), has_size = query_u64(mc, "size", &size);
	int has_from = query_u64(mc, "from", &from), has_to = query_u64(mc, "to", &to);
	if (has_seq < 0 || has_size < 0 || has_from < 0 || has_to < 0 ||
	    (has_seq > 0) == (has_from > 0 || has_to > 0) || (has_from > 0) != (has_to > 0)) {
		reply_error(c, 400, "bad_request",
		            "ask for ?seq=N[&size=M] (inclusion) or ?from=A&to=B (consistency)");
		return;
	}
	so_store_t *s = readers_take(&c->srv->readers);
	if (has_seq > 0) {
		/* Against the checkpoint of `size`, or the latest one. */
		rc = has_size > 0 ? s->ops->checkpoint_get(s, (int64_t)size, 0, &cp)
		                  : s->ops->checkpoint_latest(s, &cp);
		if (rc == SO_ENOTFOUND) {
			reply_error(c, 404, "not_found", "no checkpoint of that size");
			goto out;
		}
		if (rc)
			goto store_err;
		if (seq < 1 || seq > (uint64_t)cp.size) {
			reply_error(c, 404, "not_found", "event %" PRIu64 " is not covered by checkpoint %"
			            PRId64 " (yet)", seq, cp.size);
			goto out;
		}
		so_merkle_frontier_t base;
		if ((rc = load_leaves(s, (uint64_t)cp.size, &base, &leaves)))
			goto proof_err;
		int n = so_merkle_inclusion_proof_from(&base, leaves, (uint64_t)cp.size, seq - 1, proof);
		if (n < 0) {
			reply_error(c, 404, "not_found", "event %" PRIu64 " is archived; its proof is in "
			            "the archive file", seq);
			goto out;
		}
		struct one_event ev = {0};
		rc = s->ops->audit_each(s, (int64_t)seq - 1, 1, grab_event, &ev);
		if (rc < 0 || !ev.event) {
			json_decref(ev.event);
			goto store_err;
		}
		reply_json(c, 200, json_pack("{s:I, s:o, s:s, s:s, s:o, s:o}", "seq", (json_int_t)seq,
		                             "event", ev.event, "hash", ev.hash, "prev_hash", ev.prev_hash,
		                             "proof", hashes_json(proof, n), "checkpoint",
		                             checkpoint_json(&cp)));
		goto out;
	}
	if (from < 1 || from > to) {
		reply_error(c, 400, "bad_request", "need 0 < from <= to");
		goto out;
	}
	if ((rc = s->ops->checkpoint_get(s, (int64_t)from, 0, &cp_from)) ||
	    (rc = s->ops->checkpoint_get(s, (int64_t)to, 0, &cp))) {
		if (rc == SO_ENOTFOUND) {
			reply_error(c, 404, "not_found", "from and to must be sizes of checkpoints");
			goto out;
		}
		goto store_err;
	}
	so_merkle_frontier_t base;
	if ((rc = load_leaves(s, to, &base, &leaves)))
		goto proof_err;
	int n = so_merkle_consistency_proof_from(&base, leaves, from, to, proof);
	if (n < 0) {
		reply_error(c, 404, "not_found", "checkpoint %" PRIu64 " is archived", from);
		goto out;
	}
	reply_json(c, 200, json_pack("{s:I, s:I, s:o, s:o, s:o}", "from", (json_int_t)from, "to",
	                             (json_int_t)to, "proof", hashes_json(proof, n < 0 ? 0 : n),
	                             "from_checkpoint", checkpoint_json(&cp_from), "to_checkpoint",
	                             checkpoint_json(&cp)));
	goto out;
proof_err:
	if (rc == SO_ETOOLARGE) {
		reply_error(c, 413, "too_large", "a proof over this many events is not served online; "
		            "verify an export instead");
		goto out;
	}
	if (rc == SO_ENOTFOUND) {
		reply_error(c, 404, "not_found", "that part of the log is archived");
		goto out;
	}
store_err:
	reply_store_err(c, rc);
out:
	readers_give(&c->srv->readers, s);
	free(leaves);
}

/* ---- export, streamed ---- */

struct export {
	so_server_t *srv;
	int csv;
	int64_t seq, end;           /* last event written; last event to write */
	so_checkpoint_row_t *cps;   /* checkpoints up to `end`, by size */
	size_t ncps, next_cp;
	so_buf_t out;               /* what is ready to send */
	size_t sent;                /* of `out` */
	int done;
};

static int
csv_field(so_buf_t *b, const char *s)
{
	if (!s)
		return SO_OK;
	int rc = so_buf_add(b, "\"", 1);
	for (const char *p = s; rc == SO_OK && *p; p++)
		rc = *p == '"' ? so_buf_add(b, "\"\"", 2) : so_buf_add(b, p, 1);
	return rc ? rc : so_buf_add(b, "\"", 1);
}

static int
export_row(void *ctx, const so_audit_row_t *row)
{
	struct export *x = ctx;
	int rc;
	if (x->csv) {
		char at[40];
		so_clock_format(row->at, at, sizeof(at));
		rc = so_buf_printf(&x->out, "%" PRId64 ",%s,", row->seq, at);
		if (!rc) rc = csv_field(&x->out, row->type);
		if (!rc) rc = so_buf_add(&x->out, ",", 1);
		if (!rc) rc = csv_field(&x->out, row->request_id);
		if (!rc) rc = so_buf_add(&x->out, ",", 1);
		if (!rc) rc = csv_field(&x->out, row->actor);
		if (!rc) rc = so_buf_printf(&x->out, ",%s,%s,", row->hash, row->prev_hash);
		if (!rc) rc = csv_field(&x->out, row->data);
		if (!rc) rc = so_buf_add(&x->out, "\n", 1);
	} else {
		so_buf_t ev;
		so_buf_init(&ev, (size_t)64 << 20);
		rc = so_audit_event_canonical(row->seq, row->at, row->type, row->request_id, row->actor,
		                              row->data, &ev);
		if (!rc)
			rc = so_audit_event_line(so_buf_cstr(&ev), ev.len, row->hash, row->prev_hash, &x->out);
		if (!rc)
			rc = so_buf_add(&x->out, "\n", 1);
		so_buf_free(&ev);
		/* A checkpoint goes right after the event it ends at. */
		while (!rc && x->next_cp < x->ncps && x->cps[x->next_cp].size <= row->seq) {
			so_checkpoint_t cp;
			if (x->cps[x->next_cp].size == row->seq &&
			    row_to_checkpoint(&x->cps[x->next_cp], &cp) == SO_OK) {
				rc = so_checkpoint_line(&cp, &x->out);
				if (!rc)
					rc = so_buf_add(&x->out, "\n", 1);
			}
			x->next_cp++;
		}
	}
	x->seq = row->seq;
	return rc;
}

static ssize_t
export_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct export *x = cls;
	while (x->sent == x->out.len) {
		so_buf_reset(&x->out);
		x->sent = 0;
		if (x->done)
			return MHD_CONTENT_READER_END_OF_STREAM;
		if (x->seq >= x->end) {
			/* Checkpoints claiming more than the log holds: the verifier must see them. */
			for (; !x->csv && x->next_cp < x->ncps; x->next_cp++) {
				so_checkpoint_t cp;
				if (x->cps[x->next_cp].size > x->end &&
				    row_to_checkpoint(&x->cps[x->next_cp], &cp) == SO_OK &&
				    (so_checkpoint_line(&cp, &x->out) || so_buf_add(&x->out, "\n", 1)))
					return MHD_CONTENT_READER_END_WITH_ERROR;
			}
			x->done = 1;
			continue;
		}
		int64_t before = x->seq;
		size_t want = x->end - x->seq < 500 ? (size_t)(x->end - x->seq) : 500;
		so_store_t *s = readers_take(&x->srv->readers);
		int rc = s->ops->audit_each(s, x->seq, want, export_row, x);
		readers_give(&x->srv->readers, s);
		if (rc || x->seq == before) {
			so_error("audit export stopped after event %" PRId64 ": %s", x->seq, so_strerror(rc));
			return MHD_CONTENT_READER_END_WITH_ERROR;
		}
	}
	size_t n = x->out.len - x->sent < max ? x->out.len - x->sent : max;
	memcpy(buf, x->out.data + x->sent, n);
	x->sent += n;
	return (ssize_t)n;
}

static void
export_free(void *cls)
{
	struct export *x = cls;
	so_buf_free(&x->out);
	free(x->cps);
	free(x);
}

/* The base of an export that starts after event `*start` (moved up to the archive's base). */
static int
export_base(so_store_t *s, int64_t *start, json_t **out)
{
	so_audit_base_t base;
	int rc = s->ops->audit_base_get(s, &base);
	if (rc == SO_ENOTFOUND) {
		base.seq = 0;
		rc = SO_OK;
	}
	if (rc)
		return rc;
	if (*start <= base.seq) {
		*start = base.seq;
		if (base.seq)
			*out = json_pack("{s:I, s:s, s:s, s:s}", "seq", (json_int_t)base.seq, "hash",
			                 base.hash, "frontier", base.frontier, "public_key", base.public_key);
		return SO_OK;
	}
	/* a later start: the frontier there, from the leaves since the base */
	so_merkle_frontier_t f;
	so_hash_t *leaves = NULL;
	if ((rc = load_leaves(s, (uint64_t)*start, &f, &leaves)))
		return rc == SO_ENOTFOUND ? SO_ESTORE : rc;
	for (uint64_t i = 0; f.size < (uint64_t)*start; i++)
		so_merkle_append(&f, leaves[i]);
	free(leaves);
	struct one_event ev = {0};
	rc = s->ops->audit_each(s, *start - 1, 1, grab_event, &ev);
	json_decref(ev.event);
	if (rc < 0 || ev.seq != *start)
		return SO_ESTORE;
	char text[64 * 65 + 1];
	so_merkle_frontier_text(&f, text);
	*out = json_pack("{s:I, s:s, s:s}", "seq", (json_int_t)*start, "hash", ev.hash, "frontier",
	                 text);
	return SO_OK;
}

/* The first event at or after `ms` (events are appended in time order). */
static int
seq_at(so_store_t *s, int64_t ms, uint64_t *after)
{
	int64_t head = 0;
	char hash[65];
	so_audit_base_t base;
	int rc = s->ops->audit_head(s, &head, hash);
	if (rc)
		return rc;
	int64_t lo = s->ops->audit_base_get(s, &base) == SO_OK ? base.seq : 0, hi = head;
	/* find the smallest seq in (lo, hi] with at >= ms; answer it minus one */
	while (lo < hi) {
		int64_t mid = lo + (hi - lo + 1) / 2;
		struct one_event ev = {0};
		rc = s->ops->audit_each(s, mid - 1, 1, grab_event, &ev);
		int64_t at = 0;
		if (ev.event &&
		    so_clock_parse_rfc3339(json_string_value(json_object_get(ev.event, "at")), &at))
			at = 0;
		json_decref(ev.event);
		if (rc < 0)
			return rc;
		if (at >= ms)
			hi = mid - 1;
		else
			lo = mid;
	}
	*after = (uint64_t)lo;
	return SO_OK;
}

/* The export answers from a callback, so it queues its own response. */
void
h_audit_export(struct conn *c, struct MHD_Connection *mc)
{
	const char *format = MHD_lookup_connection_value(mc, MHD_GET_ARGUMENT_KIND, "format");
	uint64_t after = 0;
	char hash[65];
	if (auditor_only(c))
		return;
	if (format && strcmp(format, "jsonl") && strcmp(format, "csv")) {
		reply_error(c, 400, "bad_request", "format is jsonl or csv");
		return;
	}
	if (query_u64(mc, "after", &after) < 0) {
		reply_error(c, 400, "bad_request", "after must be a sequence number");
		return;
	}
	const char *since = MHD_lookup_connection_value(mc, MHD_GET_ARGUMENT_KIND, "since");
	if (since) {
		int64_t ms;
		if (so_clock_parse_rfc3339(since, &ms)) {
			reply_error(c, 400, "bad_request", "since is a time like 2026-11-24T00:00:00Z");
			return;
		}
		so_store_t *st = readers_take(&c->srv->readers);
		int src = seq_at(st, ms, &after);
		readers_give(&c->srv->readers, st);
		if (src) {
			reply_store_err(c, src);
			return;
		}
	}
	struct export *x = calloc(1, sizeof(*x));
	if (!x) {
		reply_error(c, 500, "internal", "out of memory");
		return;
	}
	x->srv = c->srv;
	x->csv = format && !strcmp(format, "csv");
	x->seq = (int64_t)after;
	so_buf_init(&x->out, (size_t)128 << 20);
	so_store_t *s = readers_take(&c->srv->readers);
	int rc = s->ops->audit_head(s, &x->end, hash);
	if (!rc && !x->csv)
		rc = s->ops->checkpoint_list(s, (int64_t)after, 10000000, &x->cps, &x->ncps);
	readers_give(&c->srv->readers, s);
	if (rc) {
		export_free(x);
		reply_store_err(c, rc);
		return;
	}
	char pk[65], id[SO_KEY_ID_LEN + 1], now[40];
	unsigned char raw[32];
	audit_public_key(c->srv, raw);
	sodium_bin2hex(pk, sizeof(pk), raw, 32);
	so_audit_key_id(raw, id);
	so_clock_format(so_clock_now_ms(), now, sizeof(now));
	if (x->csv) {
		so_buf_adds(&x->out, "seq,at,type,request_id,actor,hash,prev_hash,data\n");
	} else {
		/* Where this export starts: after the archived part, or after `after`. A verifier
		 * starts there from the base written in the header (the event's hash and the Merkle
		 * frontier at that size); the next checkpoint's signature proves the base. */
		json_t *b = json_null();
		s = readers_take(&c->srv->readers);
		rc = export_base(s, &x->seq, &b);
		readers_give(&c->srv->readers, s);
		if (rc) {
			export_free(x);
			reply_store_err(c, rc);
			return;
		}
		json_t *h = json_pack("{s:{s:I, s:s, s:s, s:s, s:s, s:I, s:o}}", "export", "after",
		                      (json_int_t)after, "exported_at", now, "format",
		                      "signoff-audit-jsonl/1", "key_id", id, "public_key", pk, "through",
		                      (json_int_t)x->end, "base", b);
		char *text = h ? json_dumps(h, JSON_COMPACT) : NULL;
		so_buf_adds(&x->out, text ? text : "{\"export\":{}}");
		so_buf_add(&x->out, "\n", 1);
		free(text);
		json_decref(h);
	}
	struct MHD_Response *resp =
	    MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024, export_read, x, export_free);
	if (!resp) {
		export_free(x);
		reply_error(c, 500, "internal", "out of memory");
		return;
	}
	MHD_add_response_header(resp, "Content-Type",
	                        x->csv ? "text/csv; charset=utf-8" : "application/x-ndjson");
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	MHD_queue_response(mc, 200, resp);
	MHD_destroy_response(resp);
	c->queued = 1;
}

/* ---- verification by the server over its own store ---- */

struct verify_run {
	so_audit_verifier_t v;
	so_checkpoint_row_t *cps;
	size_t ncps, next_cp;
	so_buf_t ev;
};

static int
verify_row(void *ctx, const so_audit_row_t *row)
{
	struct verify_run *vr = ctx;
	so_buf_reset(&vr->ev);
	if (so_audit_event_canonical(row->seq, row->at, row->type, row->request_id, row->actor,
	                             row->data, &vr->ev))
		return SO_ENOMEM;
	if (so_audit_verifier_event(&vr->v, so_buf_cstr(&vr->ev), vr->ev.len, row->prev_hash,
	                            row->hash))
		return 1; /* stop: the result says where */
	while (vr->next_cp < vr->ncps && vr->cps[vr->next_cp].size <= row->seq) {
		so_checkpoint_t cp;
		if (vr->cps[vr->next_cp].size == row->seq &&
		    (row_to_checkpoint(&vr->cps[vr->next_cp], &cp) ||
		     so_audit_verifier_checkpoint(&vr->v, &cp)))
			return 1;
		vr->next_cp++;
	}
	return SO_OK;
}

int
audit_verify_store(so_server_t *srv, so_audit_verify_result_t *out)
{
	struct verify_run vr = {0};
	unsigned char first[1][32];
	/* The log vouches for its later keys; trust starts from the first one it was signed with. */
	if (first_key(srv, first[0]))
		audit_public_key(srv, first[0]);
	so_audit_verifier_init(&vr.v, (const unsigned char(*)[32])first, 1);
	so_buf_init(&vr.ev, (size_t)64 << 20);
	so_store_t *s = readers_take(&srv->readers);
	so_audit_base_t base;
	int64_t after = 0;
	int rc = s->ops->audit_base_get(s, &base);
	if (rc == SO_OK) {
		so_audit_verifier_start_at(&vr.v, base.seq, base.hash, base.frontier);
		after = base.seq;
	} else if (rc == SO_ENOTFOUND) {
		rc = SO_OK;
	}
	if (rc == SO_OK)
		rc = s->ops->checkpoint_list(s, after, 10000000, &vr.cps, &vr.ncps);
	while (rc == SO_OK) {
		int64_t before = vr.v.seq;
		rc = s->ops->audit_each(s, after, PAGE, verify_row, &vr);
		if (rc || vr.v.seq - before < PAGE)
			break;
		after = vr.v.seq;
	}
	readers_give(&srv->readers, s);
	/* Checkpoints past the last event: the log was cut short. */
	for (size_t i = vr.next_cp; rc != SO_ESTORE && i < vr.ncps; i++) {
		so_checkpoint_t cp;
		if (!row_to_checkpoint(&vr.cps[i], &cp))
			so_audit_verifier_checkpoint(&vr.v, &cp);
	}
	so_audit_verifier_finish(&vr.v, out);
	so_audit_verifier_free(&vr.v);
	so_buf_free(&vr.ev);
	free(vr.cps);
	return rc == 1 ? SO_OK : rc;
}

void
h_audit_verify(struct conn *c, struct MHD_Connection *mc)
{
	so_audit_verify_result_t r;
	if (auditor_only(c))
		return;
	int rc = audit_verify_store(c->srv, &r);
	if (rc && rc != SO_EINVAL) {
		reply_store_err(c, rc);
		return;
	}
	json_t *o = json_pack("{s:b, s:I, s:I, s:I, s:I, s:I}", "ok", r.ok, "events",
	                      (json_int_t)r.events, "checkpoints", (json_int_t)r.checkpoints,
	                      "signed_size", (json_int_t)r.signed_size, "unsigned_tail",
	                      (json_int_t)r.unsigned_tail, "archived_through", (json_int_t)r.base);
	if (!r.ok) {
		json_object_set_new(o, "first_bad_seq", json_integer(r.first_bad_seq));
		json_object_set_new(o, "reason", json_string(r.reason));
	}
	reply_json(c, 200, o);
}
