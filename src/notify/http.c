/* One bounded HTTP call (POST, PUT or GET) with libcurl, for the channels. */
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>

#include "common/error.h"
#include "notify/internal.h"

#define MAX_ANSWER (1 << 20)

static size_t
on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	so_buf_t *b = arg;
	size_t n = size * nmemb;
	return so_buf_add(b, data, n) == SO_OK ? n : 0;
}

static size_t
on_header(char *data, size_t size, size_t nmemb, void *arg)
{
	int64_t *retry_after = arg;
	size_t n = size * nmemb;
	if (n > 12 && !strncasecmp(data, "Retry-After:", 12)) {
		long long v = 0;
		if (sscanf(data + 12, " %lld", &v) == 1 && v > 0 && v < 86400)
			*retry_after = v;
	}
	return n;
}

int
so_http_post(const char *url, const char *content_type, const char *const *headers,
             const char *body, long timeout_ms, long *status, so_buf_t *answer,
             int64_t *retry_after, char *err, size_t errlen)
{
	return so_http_send("POST", url, content_type, headers, body, timeout_ms, status, answer,
	                    retry_after, err, errlen);
}

int
so_http_send(const char *method, const char *url, const char *content_type,
             const char *const *headers, const char *body, long timeout_ms, long *status,
             so_buf_t *answer, int64_t *retry_after, char *err, size_t errlen)
{
	CURL *c = curl_easy_init();
	struct curl_slist *list = NULL;
	char ct[128];
	int rc = SO_OK;
	*status = 0;
	*retry_after = 0;
	so_buf_init(answer, MAX_ANSWER);
	if (!c) {
		snprintf(err, errlen, "out of memory");
		return SO_ENOMEM;
	}
	snprintf(ct, sizeof(ct), "Content-Type: %s", content_type ? content_type
	                                                           : "application/json; charset=utf-8");
	if (body)
		list = curl_slist_append(list, ct);
	list = curl_slist_append(list, "Expect:");
	for (const char *const *h = headers; h && *h; h++)
		list = curl_slist_append(list, *h);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms < 5000 ? timeout_ms : 5000L);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, list);
	if (body) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
		if (strcmp(method, "POST"))
			curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	} else {
		curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
	}
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, answer);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, retry_after);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "signoffd");
	CURLcode cc = curl_easy_perform(c);
	if (cc != CURLE_OK) {
		snprintf(err, errlen, "%s", curl_easy_strerror(cc));
		rc = SO_EIO;
	} else {
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
	}
	curl_slist_free_all(list);
	curl_easy_cleanup(c);
	return rc;
}
