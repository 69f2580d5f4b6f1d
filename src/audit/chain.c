#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "audit/audit.h"
#include "audit/log.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/json.h"

int
so_audit_hash(const char prev_hash[65], const json_t *event, char out[65])
{
	unsigned char prev[32], md[32];
	if (sodium_hex2bin(prev, sizeof(prev), prev_hash, 64, NULL, NULL, NULL) != 0)
		return SO_EINVAL;
	char *canon = so_json_canonical_str(event);
	if (!canon)
		return SO_ENOMEM;
	crypto_hash_sha256_state st;
	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, prev, sizeof(prev));
	crypto_hash_sha256_update(&st, (const unsigned char *)canon, strlen(canon));
	crypto_hash_sha256_final(&st, md);
	free(canon);
	sodium_bin2hex(out, 65, md, sizeof(md));
	return SO_OK;
}

int
so_audit_append_text(so_store_t *s, const char *type, const char *request_id, const char *actor,
                     const char *data_text, int64_t now)
{
	so_audit_row_t row = {.at = now, .type = type, .request_id = request_id, .actor = actor,
	                      .data = data_text};
	unsigned char prev[SO_HASH_LEN];
	so_hash_t h;
	so_buf_t buf;
	int64_t head;
	int rc;

	if ((rc = s->ops->audit_head(s, &head, row.prev_hash)))
		return rc;
	row.seq = head + 1;
	/* hash = SHA-256(prev_hash bytes || canonical event) */
	so_buf_init(&buf, (size_t)64 << 20);
	if (sodium_hex2bin(prev, sizeof(prev), row.prev_hash, 64, NULL, NULL, NULL))
		rc = SO_ESTORE;
	if (!rc)
		rc = so_buf_add(&buf, prev, sizeof(prev));
	if (!rc)
		rc = so_audit_event_canonical(row.seq, now, type, request_id, actor, data_text, &buf);
	if (!rc) {
		so_sha256(so_buf_cstr(&buf), buf.len, h);
		sodium_bin2hex(row.hash, sizeof(row.hash), h, sizeof(h));
		rc = s->ops->audit_insert(s, &row);
	}
	so_buf_free(&buf);
	return rc;
}

int
so_audit_append(so_store_t *s, const char *type, const char *request_id, const char *actor,
                json_t *data, int64_t now)
{
	if (!data)
		data = json_object();
	char *text = data ? so_json_canonical_str(data) : NULL;
	int rc = text ? so_audit_append_text(s, type, request_id, actor, text, now) : SO_ENOMEM;
	free(text);
	json_decref(data);
	return rc;
}

int
so_audit_verify_events(const json_t *events, int64_t *seq, char prev[65], int64_t *bad)
{
	size_t i;
	json_t *ev;
	json_array_foreach(events, i, ev) {
		int64_t s = (int64_t)json_integer_value(json_object_get(ev, "seq"));
		const char *p = json_string_value(json_object_get(ev, "prev_hash"));
		const char *h = json_string_value(json_object_get(ev, "hash"));
		char want[65];
		json_t *body = json_deep_copy(ev);
		if (!body)
			return SO_ENOMEM;
		json_object_del(body, "prev_hash");
		json_object_del(body, "hash");
		int ok = s == *seq + 1 && p && h && strcmp(p, prev) == 0 &&
		         so_audit_hash(prev, body, want) == SO_OK && strcmp(want, h) == 0;
		json_decref(body);
		if (!ok) {
			*bad = *seq + 1;
			return SO_EINVAL;
		}
		*seq = s;
		memcpy(prev, h, 65);
	}
	return SO_OK;
}
