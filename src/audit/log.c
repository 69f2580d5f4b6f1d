/* Checkpoints, export lines, and the streaming verifier (see log.h). */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "audit/log.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/json.h"

void
so_audit_key_id(const unsigned char pk[32], char out[SO_KEY_ID_LEN + 1])
{
	so_hash_t h;
	so_sha256(pk, 32, h);
	sodium_bin2hex(out, SO_KEY_ID_LEN + 1, h, SO_KEY_ID_LEN / 2);
}

int
so_checkpoint_message(const so_checkpoint_t *cp, so_buf_t *b)
{
	char root[65], at[40];
	sodium_bin2hex(root, sizeof(root), cp->root, SO_HASH_LEN);
	so_clock_format(cp->at, at, sizeof(at));
	return so_buf_printf(b, "signoff-checkpoint/v1\nsize %" PRIu64 "\nroot %s\ntime %s\nkey %s\n",
	                     cp->size, root, at, cp->key_id);
}

int
so_checkpoint_sign(so_checkpoint_t *cp, const unsigned char sk[64], const unsigned char pk[32])
{
	so_buf_t msg;
	so_audit_key_id(pk, cp->key_id);
	so_buf_init(&msg, 4096);
	int rc = so_checkpoint_message(cp, &msg);
	if (rc == SO_OK)
		crypto_sign_detached(cp->signature, NULL, (const unsigned char *)so_buf_cstr(&msg),
		                     msg.len, sk);
	so_buf_free(&msg);
	return rc;
}

int
so_checkpoint_verify(const so_checkpoint_t *cp, const unsigned char pk[32])
{
	char id[SO_KEY_ID_LEN + 1];
	so_audit_key_id(pk, id);
	if (strcmp(id, cp->key_id))
		return 0;
	so_buf_t msg;
	so_buf_init(&msg, 4096);
	int ok = so_checkpoint_message(cp, &msg) == SO_OK &&
	         crypto_sign_verify_detached(cp->signature, (const unsigned char *)so_buf_cstr(&msg),
	                                     msg.len, pk) == 0;
	so_buf_free(&msg);
	return ok;
}

int
so_checkpoint_line(const so_checkpoint_t *cp, so_buf_t *b)
{
	char root[65], sig[129], at[40];
	sodium_bin2hex(root, sizeof(root), cp->root, SO_HASH_LEN);
	sodium_bin2hex(sig, sizeof(sig), cp->signature, sizeof(cp->signature));
	so_clock_format(cp->at, at, sizeof(at));
	return so_buf_printf(b,
	                     "{\"checkpoint\":{\"at\":\"%s\",\"key_id\":\"%s\",\"root\":\"%s\","
	                     "\"signature\":\"%s\",\"size\":%" PRIu64 "}}",
	                     at, cp->key_id, root, sig, cp->size);
}

int
so_checkpoint_parse(const char *text, size_t len, so_checkpoint_t *cp)
{
	json_error_t jerr;
	json_t *o = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	int rc = SO_EINVAL;
	const char *at = json_string_value(json_object_get(o, "at"));
	const char *key = json_string_value(json_object_get(o, "key_id"));
	const char *root = json_string_value(json_object_get(o, "root"));
	const char *sig = json_string_value(json_object_get(o, "signature"));
	json_t *size = json_object_get(o, "size");
	memset(cp, 0, sizeof(*cp));
	if (at && key && root && sig && json_is_integer(size) && json_integer_value(size) > 0 &&
	    strlen(key) == SO_KEY_ID_LEN && strlen(root) == 64 && strlen(sig) == 128 &&
	    !so_clock_parse_rfc3339(at, &cp->at) &&
	    !sodium_hex2bin(cp->root, SO_HASH_LEN, root, 64, NULL, NULL, NULL) &&
	    !sodium_hex2bin(cp->signature, 64, sig, 128, NULL, NULL, NULL)) {
		cp->size = (uint64_t)json_integer_value(size);
		memcpy(cp->key_id, key, SO_KEY_ID_LEN + 1);
		rc = SO_OK;
	}
	json_decref(o);
	return rc;
}

static int
add_string_or_null(const char *s, so_buf_t *b)
{
	return s ? so_json_canonical_string(s, strlen(s), b) : so_buf_add(b, "null", 4);
}

int
so_audit_event_canonical(int64_t seq, int64_t at, const char *type, const char *request_id,
                         const char *actor, const char *data, so_buf_t *b)
{
	char when[40];
	so_clock_format(at, when, sizeof(when));
	/* Keys in byte order: actor, at, data, request_id, seq, type. */
	int rc = so_buf_adds(b, "{\"actor\":");
	if (!rc)
		rc = add_string_or_null(actor, b);
	if (!rc)
		rc = so_buf_printf(b, ",\"at\":\"%s\",\"data\":", when);
	if (!rc)
		rc = so_buf_adds(b, data);
	if (!rc)
		rc = so_buf_adds(b, ",\"request_id\":");
	if (!rc)
		rc = add_string_or_null(request_id, b);
	if (!rc)
		rc = so_buf_printf(b, ",\"seq\":%" PRId64 ",\"type\":", seq);
	if (!rc)
		rc = so_json_canonical_string(type, strlen(type), b);
	if (!rc)
		rc = so_buf_add(b, "}", 1);
	return rc;
}

#define LINE_HEAD "{\"event\":"
#define LINE_TAIL_LEN (9 + 64 + 15 + 64 + 2) /* ,"hash":"H","prev_hash":"P"} */

int
so_audit_event_line(const char *event, size_t len, const char hash[65], const char prev_hash[65],
                    so_buf_t *b)
{
	int rc = so_buf_adds(b, LINE_HEAD);
	if (!rc)
		rc = so_buf_add(b, event, len);
	if (!rc)
		rc = so_buf_printf(b, ",\"hash\":\"%.64s\",\"prev_hash\":\"%.64s\"}", hash, prev_hash);
	return rc;
}

/* ---- the verifier ---- */

void
so_audit_verifier_init(so_audit_verifier_t *v, const unsigned char (*keys)[32], size_t nkeys)
{
	memset(v, 0, sizeof(*v));
	v->nkeys = nkeys < SO_AUDIT_MAX_KEYS ? nkeys : SO_AUDIT_MAX_KEYS;
	memcpy(v->keys, keys, v->nkeys * 32);
	memset(v->prev, '0', 64);
	so_merkle_frontier_init(&v->tree);
	so_buf_init(&v->scratch, (size_t)64 << 20);
	v->result.ok = 1;
	v->through = -1;
}

void
so_audit_verifier_free(so_audit_verifier_t *v)
{
	so_buf_free(&v->scratch);
}

static int
fail(so_audit_verifier_t *v, int64_t seq, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int
fail(so_audit_verifier_t *v, int64_t seq, const char *fmt, ...)
{
	if (v->result.ok) {
		va_list ap;
		v->result.ok = 0;
		v->result.first_bad_seq = seq;
		va_start(ap, fmt);
		vsnprintf(v->result.reason, sizeof(v->result.reason), fmt, ap);
		va_end(ap);
	}
	return SO_EINVAL;
}

int
so_audit_verifier_start_at(so_audit_verifier_t *v, int64_t seq, const char *hash,
                           const char *frontier_text)
{
	if (seq < 0 || !hash || strlen(hash) != 64 ||
	    so_merkle_frontier_parse((uint64_t)seq, frontier_text, &v->tree))
		return fail(v, seq + 1, "the log's base (archived prefix) is malformed");
	v->seq = seq;
	memcpy(v->prev, hash, 64);
	v->prev[64] = '\0';
	v->last_checkpoint = (uint64_t)seq;
	v->base = seq;
	return SO_OK;
}

/* The top-level seq of a canonical EVENT: the last ,"seq": in it (nothing after it but the
 * type string, in which an unescaped quote cannot appear). */
static int
event_seq(const char *e, size_t len, int64_t *seq)
{
	static const char key[] = ",\"seq\":";
	const size_t klen = sizeof(key) - 1;
	for (size_t i = len >= klen ? len - klen + 1 : 0; i-- > 0;) {
		if (memcmp(e + i, key, klen) == 0) {
			int64_t n = 0;
			size_t j = i + klen;
			if (j >= len || e[j] < '0' || e[j] > '9')
				return -1;
			for (; j < len && e[j] >= '0' && e[j] <= '9' && n < INT64_MAX / 10; j++)
				n = n * 10 + (e[j] - '0');
			*seq = n;
			return 0;
		}
	}
	return -1;
}

static int
is_hex64(const char *s)
{
	for (int i = 0; i < 64; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

/* A key rotation names the next key; it is trusted once a checkpoint covers the event. */
static void
note_rotation(so_audit_verifier_t *v, int64_t seq, const char *event, size_t len)
{
	json_error_t jerr;
	json_t *ev = json_loadb(event, len, 0, &jerr);
	const char *pk = json_string_value(json_object_get(json_object_get(ev, "data"),
	                                                   "new_public_key"));
	if (pk && strlen(pk) == 64 && v->npending < SO_AUDIT_MAX_KEYS &&
	    !sodium_hex2bin(v->pending[v->npending], 32, pk, 64, NULL, NULL, NULL))
		v->pending_seq[v->npending++] = seq;
	json_decref(ev);
}

int
so_audit_verifier_event(so_audit_verifier_t *v, const char *event, size_t len,
                        const char *prev_hash, const char *hash)
{
	int64_t seq, want = v->seq + 1;
	unsigned char prev[SO_HASH_LEN];
	so_hash_t got;

	if (!v->result.ok)
		return SO_EINVAL;
	if (event_seq(event, len, &seq))
		return fail(v, want, "event after seq %" PRId64 " has no sequence number", v->seq);
	if (seq != want)
		return fail(v, want, "expected event %" PRId64 ", found %" PRId64
		                     " (an event was deleted, inserted or moved)", want, seq);
	if (!is_hex64(prev_hash) || !is_hex64(hash))
		return fail(v, seq, "event %" PRId64 " has a malformed hash", seq);
	if (memcmp(prev_hash, v->prev, 64))
		return fail(v, seq, "event %" PRId64 " does not follow event %" PRId64
		                    " (its prev_hash differs)", seq, v->seq);
	sodium_hex2bin(prev, sizeof(prev), prev_hash, 64, NULL, NULL, NULL);
	so_buf_reset(&v->scratch);
	if (so_buf_add(&v->scratch, prev, sizeof(prev)) || so_buf_add(&v->scratch, event, len))
		return fail(v, seq, "event %" PRId64 " is too large", seq);
	so_sha256(so_buf_cstr(&v->scratch), v->scratch.len, got);
	char got_hex[65];
	sodium_bin2hex(got_hex, sizeof(got_hex), got, sizeof(got));
	if (memcmp(got_hex, hash, 64))
		return fail(v, seq, "event %" PRId64 " was modified (its hash does not match its content)",
		            seq);
	static const char rotated[] = "\"type\":\"audit.key_rotated\"}";
	if (len > sizeof(rotated) && !memcmp(event + len - (sizeof(rotated) - 1), rotated,
	                                     sizeof(rotated) - 1))
		note_rotation(v, seq, event, len);
	so_hash_t leaf;
	so_merkle_leaf_hash(got, SO_HASH_LEN, leaf);
	so_merkle_append(&v->tree, leaf);
	v->seq = seq;
	memcpy(v->prev, hash, 64);
	v->result.events++;
	return SO_OK;
}

int
so_audit_verifier_checkpoint(so_audit_verifier_t *v, const so_checkpoint_t *cp)
{
	if (!v->result.ok)
		return SO_EINVAL;
	if (cp->size > v->max_checkpoint)
		v->max_checkpoint = cp->size;
	if (cp->size != (uint64_t)v->seq) {
		if (cp->size > (uint64_t)v->seq)
			return fail(v, v->seq + 1, "checkpoint of size %" PRIu64 " comes after event %" PRId64
			                           " (events are missing)", cp->size, v->seq);
		return fail(v, (int64_t)cp->size + 1, "checkpoint of size %" PRIu64 " is out of place",
		            cp->size);
	}
	const unsigned char *pk = NULL;
	for (size_t i = 0; i < v->nkeys && !pk; i++) {
		char id[SO_KEY_ID_LEN + 1];
		so_audit_key_id(v->keys[i], id);
		if (!strcmp(id, cp->key_id))
			pk = v->keys[i];
	}
	if (!pk)
		return fail(v, (int64_t)cp->size, "checkpoint at %" PRIu64 " is signed by key %s, which "
		                                  "is not trusted", cp->size, cp->key_id);
	if (!so_checkpoint_verify(cp, pk))
		return fail(v, (int64_t)cp->size, "checkpoint at %" PRIu64 " has a bad signature",
		            cp->size);
	so_hash_t root;
	so_merkle_frontier_root(&v->tree, root);
	if (memcmp(root, cp->root, SO_HASH_LEN))
		return fail(v, (int64_t)v->last_checkpoint + 1,
		            "events %" PRIu64 "..%" PRIu64 " differ from what checkpoint %" PRIu64
		            " signed (rewritten after signing)", v->last_checkpoint + 1, cp->size, cp->size);
	v->last_checkpoint = cp->size;
	v->result.checkpoints++;
	/* Keys announced at or before this size are now vouched for by a trusted signature. */
	for (size_t i = 0; i < v->npending;) {
		if ((uint64_t)v->pending_seq[i] <= cp->size && v->nkeys < SO_AUDIT_MAX_KEYS) {
			memcpy(v->keys[v->nkeys++], v->pending[i], 32);
			memmove(&v->pending[i], &v->pending[i + 1], (v->npending - i - 1) * 32);
			memmove(&v->pending_seq[i], &v->pending_seq[i + 1],
			        (v->npending - i - 1) * sizeof(v->pending_seq[0]));
			v->npending--;
		} else {
			i++;
		}
	}
	v->result.signed_size = cp->size;
	return SO_OK;
}

int
so_audit_verifier_line(so_audit_verifier_t *v, const char *line, size_t len)
{
	while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
		len--;
	if (!len)
		return SO_OK;
	v->lines++;
	static const char head[] = LINE_HEAD;
	static const char cp_head[] = "{\"checkpoint\":";
	if (len > sizeof(head) - 1 + LINE_TAIL_LEN && !memcmp(line, head, sizeof(head) - 1)) {
		const char *tail = line + len - LINE_TAIL_LEN;
		if (memcmp(tail, ",\"hash\":\"", 9) || memcmp(tail + 9 + 64, "\",\"prev_hash\":\"", 15) ||
		    memcmp(tail + LINE_TAIL_LEN - 2, "\"}", 2))
			return fail(v, v->seq + 1, "line after event %" PRId64 " is malformed", v->seq);
		return so_audit_verifier_event(v, line + sizeof(head) - 1,
		                               len - (sizeof(head) - 1) - LINE_TAIL_LEN, tail + 9 + 64 + 15,
		                               tail + 9);
	}
	if (len > sizeof(cp_head) && !memcmp(line, cp_head, sizeof(cp_head) - 1) &&
	    line[len - 1] == '}') {
		so_checkpoint_t cp;
		if (so_checkpoint_parse(line + sizeof(cp_head) - 1, len - sizeof(cp_head), &cp))
			return fail(v, v->seq, "malformed checkpoint after event %" PRId64, v->seq);
		return so_audit_verifier_checkpoint(v, &cp);
	}
	if (len > 10 && !memcmp(line, "{\"export\":", 10)) {
		/* A header may say the log starts after an archived prefix. */
		json_error_t jerr;
		json_t *h = json_loadb(line, len, 0, &jerr);
		json_t *base = json_object_get(json_object_get(h, "export"), "base");
		json_t *through = json_object_get(json_object_get(h, "export"), "through");
		int rc = SO_OK;
		if (json_is_integer(through))
			v->through = (int64_t)json_integer_value(through);
		if (json_is_object(base) && v->seq == 0 && !v->result.events)
			rc = so_audit_verifier_start_at(
			    v, (int64_t)json_integer_value(json_object_get(base, "seq")),
			    json_string_value(json_object_get(base, "hash")),
			    json_string_value(json_object_get(base, "frontier")));
		json_decref(h);
		return rc;
	}
	return fail(v, v->seq + 1, "line after event %" PRId64 " is neither an event nor a checkpoint",
	            v->seq);
}

void
so_audit_verifier_finish(so_audit_verifier_t *v, so_audit_verify_result_t *out)
{
	if (v->result.ok && !v->lines && !v->result.events)
		fail(v, 1, "there is nothing to verify (an empty export)");
	if (v->result.ok && v->through > v->seq)
		fail(v, v->seq + 1, "the export says it holds events through %" PRId64 " but ends at %"
		                    PRId64 " (truncated)", v->through, v->seq);
	if (v->result.ok && v->max_checkpoint > (uint64_t)v->seq)
		fail(v, v->seq + 1, "the log ends at event %" PRId64 " but a checkpoint covers %" PRIu64
		                    " (truncated)", v->seq, v->max_checkpoint);
	v->result.unsigned_tail = v->seq - (int64_t)v->last_checkpoint;
	v->result.base = v->base;
	*out = v->result;
}
