/*
 * Webhooks: each request event POSTed as JSON, signed with the webhook's secret:
 *   Signoff-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "notify/internal.h"

#define TIMEOUT_MS 10000

static void
webhook_deliver(so_notifier_t *n, const so_outbox_row_t *row, const json_t *req,
                const so_message_ref_t *refs, size_t nrefs, so_delivery_t *d)
{
	const so_webhook_config_t *w = NULL;
	for (size_t i = 0; i < n->cfg->nwebhooks && !w; i++)
		if (!strcmp(n->cfg->webhooks[i].url, row->target))
			w = &n->cfg->webhooks[i];
	if (!w) {
		snprintf(d->error, sizeof(d->error), "webhook %s is no longer configured", row->target);
		return;
	}
	/* The body was fixed when the event happened; sign exactly those bytes. */
	const char *body = row->body;
	long long t = (long long)time(NULL);
	char prefix[32], sig_hex[65], header[160];
	unsigned char mac[crypto_auth_hmacsha256_BYTES];
	crypto_auth_hmacsha256_state st;
	snprintf(prefix, sizeof(prefix), "%lld.", t);
	crypto_auth_hmacsha256_init(&st, (const unsigned char *)w->secret, strlen(w->secret));
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)prefix, strlen(prefix));
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)body, strlen(body));
	crypto_auth_hmacsha256_final(&st, mac);
	sodium_bin2hex(sig_hex, sizeof(sig_hex), mac, sizeof(mac));
	snprintf(header, sizeof(header), "Signoff-Signature: t=%lld,v1=%s", t, sig_hex);
	const char *headers[] = {header, NULL};
	long status = 0;
	so_buf_t answer;
	int rc = so_http_post(w->url, NULL, headers, body, TIMEOUT_MS, &status, &answer,
	                      &d->retry_after, d->error, sizeof(d->error));
	so_buf_free(&answer);
	if (rc) {
		d->retry = 1;
	} else if (status >= 200 && status <= 299) {
		d->ok = 1;
	} else {
		snprintf(d->error, sizeof(d->error), "HTTP %ld", status);
		d->retry = status == 429 || status >= 500 || status == 408;
	}
}

const so_channel_ops_t so_channel_webhook = {
	.name = "webhook",
	.deliver = webhook_deliver,
};
