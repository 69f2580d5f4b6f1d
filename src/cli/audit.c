/**
 * Verbs for auditors:
 *   signoff audit verify [--file EXPORT --pubkey HEX]   check chain, tree and signatures
 *   signoff audit export [--format jsonl|csv] [--after SEQ] [-o FILE]
 *   signoff audit pubkey                                 the checkpoint signing key
 *   signoff audit prove ID                               inclusion proofs of a request's events
 *   signoff explain ID                                   the story of one request
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "audit/log.h"
#include "cli/cli.h"
#include "common/buf.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/json.h"

#define MAX_LINE ((size_t)64 << 20)

static int
audit_help(FILE *f)
{
	fputs("usage: signoff audit verify [--file EXPORT --pubkey HEX|--pubkey-file F]\n"
	      "       signoff audit export [--format jsonl|csv] [--since TIME|--after SEQ] [-o FILE]\n"
	      "       signoff audit pubkey\n"
	      "       signoff audit rotate-key\n"
	      "       signoff audit prove REQUEST_ID\n\n"
	      "verify recomputes the hash chain, the Merkle tree and every checkpoint signature,\n"
	      "online through the daemon's export, or offline from an export file with the public\n"
	      "key you trust. It names the first sequence number where the log was modified,\n"
	      "deleted, reordered, inserted or truncated, and exits 1 then.\n\n"
	      "options:\n"
	      "  --file FILE        verify this export instead of asking the daemon\n"
	      "  --pubkey HEX       a trusted public key (hex; may repeat); default: the daemon's.\n"
	      "                     Pin the first key: later keys are vouched for by the log\n"
	      "  --pubkey-file F    read the trusted public key from a file\n"
	      "  --format F         export format: jsonl (verifiable, default) or csv\n"
	      "  --after SEQ        export only events after SEQ\n"
	      "  --since TIME       export only events from TIME on (2026-11-24T00:00:00Z); a\n"
	      "                     partial export still verifies: its header carries the base\n"
	      "  -o, --output FILE  write the export to FILE instead of stdout\n" CLI_COMMON_HELP,
	      f);
	return f == stdout ? CLI_EXIT_OK : CLI_EXIT_USAGE;
}

/* ---- feeding lines to a verifier from a stream or a file ---- */

struct line_feed {
	so_audit_verifier_t *v;
	so_buf_t partial;
	int too_long;
};

static void
feed_line(struct line_feed *lf, const char *line, size_t len)
{
	so_audit_verifier_line(lf->v, line, len);
}

static int
feed_bytes(const char *data, size_t len, void *ctx)
{
	struct line_feed *lf = ctx;
	while (len) {
		const char *nl = memchr(data, '\n', len);
		size_t n = nl ? (size_t)(nl - data) : len;
		if (lf->partial.len) {
			if (so_buf_add(&lf->partial, data, n)) {
				lf->too_long = 1;
				return 1;
			}
			if (nl) {
				feed_line(lf, lf->partial.data, lf->partial.len);
				so_buf_reset(&lf->partial);
			}
		} else if (nl) {
			feed_line(lf, data, n);
		} else if (so_buf_add(&lf->partial, data, n)) {
			lf->too_long = 1;
			return 1;
		}
		if (!nl)
			break;
		data = nl + 1;
		len -= n + 1;
	}
	return 0;
}

static int
parse_pubkey(const char *hex, unsigned char pk[32])
{
	size_t len = strlen(hex);
	while (len && (hex[len - 1] == '\n' || hex[len - 1] == ' '))
		len--;
	return len == 64 && sodium_hex2bin(pk, 32, hex, 64, NULL, NULL, NULL) == 0 ? 0 : -1;
}

/* The daemon's key in force, or with `first` the key its log started with (which vouches for
 * every later one through the rotations it recorded). */
static int
fetch_pubkey(struct cli *cli, unsigned char pk[32], int first)
{
	so_client_error_t err;
	json_t *o = NULL;
	int rc = so_client_get_json(cli->client, "/v1/audit/pubkey", &o, &err);
	if (rc != SO_CLIENT_OK)
		return cli_fail(cli, NULL, rc, &err);
	int bad = parse_pubkey(cli_str(o, first ? "first_public_key" : "public_key", ""), pk);
	json_decref(o);
	if (bad) {
		cli_warn("audit: the daemon's public key is malformed");
		return CLI_EXIT_ERROR;
	}
	return CLI_EXIT_OK;
}

static double
seconds_since(const struct timespec *t0)
{
	struct timespec t1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

static int
report(struct cli *cli, const so_audit_verify_result_t *r, double secs)
{
	if (cli->json) {
		json_t *o = json_pack("{s:b, s:I, s:I, s:I, s:I, s:I, s:f}", "ok", r->ok, "events",
		                      (json_int_t)r->events, "checkpoints", (json_int_t)r->checkpoints,
		                      "signed_size", (json_int_t)r->signed_size, "unsigned_tail",
		                      (json_int_t)r->unsigned_tail, "archived_through",
		                      (json_int_t)r->base, "seconds", secs);
		if (!r->ok) {
			json_object_set_new(o, "first_bad_seq", json_integer(r->first_bad_seq));
			json_object_set_new(o, "reason", json_string(r->reason));
		}
		cli_print_json(o);
		json_decref(o);
	} else if (r->ok) {
		printf("ok: %lld events, %lld checkpoints verified (signed through %llu)",
		       (long long)r->events, (long long)r->checkpoints, (unsigned long long)r->signed_size);
		if (r->unsigned_tail)
			printf("; %lld newer events are not yet under a checkpoint", (long long)r->unsigned_tail);
		if (r->base)
			printf("; events up to %lld are archived", (long long)r->base);
		printf(" [%.2fs]\n", secs);
	} else {
		printf("FAILED at event %lld: %s\n", (long long)r->first_bad_seq, r->reason);
	}
	return r->ok ? CLI_EXIT_OK : 1;
}

#define MAX_PINNED 8

static int
verify(struct cli *cli, const char *file, const char **pins, int npins, const char *pubkey_file)
{
	unsigned char pk[MAX_PINNED][32];
	const char *pubkey_hex = npins ? pins[0] : NULL;
	char keybuf[256];
	so_audit_verifier_t v;
	so_audit_verify_result_t r;
	struct timespec t0;
	int status;

	if (pubkey_file) {
		FILE *f = fopen(pubkey_file, "r");
		if (!f || !fgets(keybuf, sizeof(keybuf), f)) {
			if (f)
				fclose(f);
			cli_warn("audit verify: cannot read %s", pubkey_file);
			return CLI_EXIT_ERROR;
		}
		fclose(f);
		pubkey_hex = keybuf;
		pins = &pubkey_hex;
		npins = 1;
	}
	for (int i = 0; i < npins; i++)
		if (parse_pubkey(pins[i], pk[i]))
			return cli_usage_error(cli, "--pubkey must be 64 hex characters");
	if (file && !pubkey_hex)
		return cli_usage_error(cli, "offline verification needs the public key you trust "
		                            "(--pubkey or --pubkey-file)");
	if (!file) {
		if ((status = cli_connect(cli, true)) != CLI_EXIT_OK)
			return status;
		if (!pubkey_hex) {
			if ((status = fetch_pubkey(cli, pk[0], 1)) != CLI_EXIT_OK)
				return status;
			npins = 1;
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	so_audit_verifier_init(&v, (const unsigned char(*)[32])pk, (size_t)npins);
	struct line_feed lf = {.v = &v};
	so_buf_init(&lf.partial, MAX_LINE);
	if (file) {
		FILE *f = fopen(file, "r");
		if (!f) {
			cli_warn("audit verify: cannot open %s: %s", file, strerror(errno));
			status = CLI_EXIT_ERROR;
			goto out;
		}
		static char chunk[1 << 16];
		size_t n;
		while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0 && !feed_bytes(chunk, n, &lf))
			;
		fclose(f);
	} else {
		so_client_error_t err;
		int rc = so_client_get_stream(cli->client, "/v1/audit/export?format=jsonl", feed_bytes, &lf,
		                              &err);
		if (rc != SO_CLIENT_OK && !lf.too_long) {
			status = cli_fail(cli, NULL, rc, &err);
			goto out;
		}
	}
	if (lf.too_long) {
		cli_warn("audit verify: a line is longer than %zu bytes", MAX_LINE);
		status = CLI_EXIT_ERROR;
		goto out;
	}
	if (lf.partial.len)
		feed_line(&lf, lf.partial.data, lf.partial.len);
	so_audit_verifier_finish(&v, &r);
	status = report(cli, &r, seconds_since(&t0));
out:
	so_buf_free(&lf.partial);
	so_audit_verifier_free(&v);
	return status;
}

static int
write_out(const char *data, size_t len, void *ctx)
{
	return fwrite(data, 1, len, ctx) == len ? 0 : 1;
}

static int
export(struct cli *cli, const char *format, const char *after, const char *since,
       const char *output)
{
	char path[256];
	long seq = 0;
	int64_t ms;
	so_client_error_t err;
	int status;
	if (format && strcmp(format, "jsonl") && strcmp(format, "csv"))
		return cli_usage_error(cli, "--format is jsonl or csv");
	if (after && !cli_parse_long(after, 0, 1L << 62, &seq))
		return cli_usage_error(cli, "--after takes a sequence number");
	if (since && so_clock_parse_rfc3339(since, &ms))
		return cli_usage_error(cli, "--since takes a time like 2026-11-24T00:00:00Z");
	if ((status = cli_connect(cli, true)) != CLI_EXIT_OK)
		return status;
	FILE *f = output ? fopen(output, "w") : stdout;
	if (!f) {
		cli_warn("audit export: cannot write %s: %s", output, strerror(errno));
		return CLI_EXIT_ERROR;
	}
	if (since)
		snprintf(path, sizeof(path), "/v1/audit/export?format=%s&since=%s",
		         format ? format : "jsonl", since);
	else
		snprintf(path, sizeof(path), "/v1/audit/export?format=%s&after=%ld",
		         format ? format : "jsonl", seq);
	int rc = so_client_get_stream(cli->client, path, write_out, f, &err);
	int bad = fflush(f) != 0;
	if (output)
		bad |= fclose(f) != 0;
	if (rc != SO_CLIENT_OK)
		return cli_fail(cli, NULL, rc, &err);
	if (bad) {
		cli_warn("audit export: write failed");
		return CLI_EXIT_ERROR;
	}
	return CLI_EXIT_OK;
}

static int
pubkey(struct cli *cli)
{
	so_client_error_t err;
	json_t *o = NULL;
	int status = cli_connect(cli, true);
	if (status != CLI_EXIT_OK)
		return status;
	int rc = so_client_get_json(cli->client, "/v1/audit/pubkey", &o, &err);
	if (rc != SO_CLIENT_OK)
		return cli_fail(cli, NULL, rc, &err);
	if (cli->json)
		cli_print_json(o);
	else
		printf("%s\n", cli_str(o, "public_key", "?"));
	json_decref(o);
	return CLI_EXIT_OK;
}

/* Check one proof bundle alone: chain hash, leaf, inclusion, checkpoint signature. */
static int
check_proof(const json_t *p, const unsigned char pk[32], char *why, size_t whylen)
{
	so_checkpoint_t cp;
	so_hash_t chain, leaf, proof[SO_MERKLE_MAX_PROOF];
	unsigned char prev[32];
	const char *prev_hex = cli_str(p, "prev_hash", ""), *hash_hex = cli_str(p, "hash", "");
	json_t *cpj = json_object_get(p, "checkpoint"), *list = json_object_get(p, "proof");
	char *cptext = json_dumps(cpj, JSON_COMPACT);
	int cp_ok = cptext && so_checkpoint_parse(cptext, strlen(cptext), &cp) == SO_OK;
	free(cptext);
	if (!cp_ok || strlen(prev_hex) != 64 ||
	    sodium_hex2bin(prev, 32, prev_hex, 64, NULL, NULL, NULL) ||
	    json_array_size(list) > SO_MERKLE_MAX_PROOF) {
		snprintf(why, whylen, "malformed proof");
		return 0;
	}
	so_buf_t b;
	so_buf_init(&b, MAX_LINE);
	so_buf_add(&b, prev, 32);
	so_json_canonical(json_object_get(p, "event"), &b);
	so_sha256(so_buf_cstr(&b), b.len, chain);
	so_buf_free(&b);
	char chain_hex[65];
	sodium_bin2hex(chain_hex, sizeof(chain_hex), chain, 32);
	if (strcmp(chain_hex, hash_hex)) {
		snprintf(why, whylen, "the event does not hash to %.16s...", hash_hex);
		return 0;
	}
	so_merkle_leaf_hash(chain, 32, leaf);
	size_t i;
	json_t *h;
	json_array_foreach(list, i, h) {
		const char *x = json_string_value(h);
		if (!x || strlen(x) != 64 || sodium_hex2bin(proof[i], 32, x, 64, NULL, NULL, NULL)) {
			snprintf(why, whylen, "malformed proof hash");
			return 0;
		}
	}
	json_int_t seq = json_integer_value(json_object_get(p, "seq"));
	if (seq < 1 || !so_merkle_verify_inclusion(leaf, (uint64_t)seq - 1, cp.size, proof,
	                                           json_array_size(list), cp.root)) {
		snprintf(why, whylen, "the inclusion proof does not lead to the checkpoint's root");
		return 0;
	}
	if (!so_checkpoint_verify(&cp, pk)) {
		snprintf(why, whylen, "the checkpoint's signature does not hold for this key");
		return 0;
	}
	return 1;
}

static int
rotate_key(struct cli *cli)
{
	so_client_error_t err;
	json_t *o = NULL;
	int status = cli_connect(cli, true);
	if (status != CLI_EXIT_OK)
		return status;
	int rc = so_client_post_json(cli->client, "/v1/admin/audit/rotate-key", NULL, &o, &err);
	if (rc != SO_CLIENT_OK)
		return cli_fail(cli, NULL, rc, &err);
	if (cli->json)
		cli_print_json(o);
	else
		printf("rotated: new key %s (%s); the old key signed checkpoint %lld over the rotation\n",
		       cli_str(o, "key_id", "?"), cli_str(o, "public_key", "?"),
		       (long long)json_integer_value(json_object_get(o, "checkpoint_size")));
	json_decref(o);
	return CLI_EXIT_OK;
}

static int
prove(struct cli *cli, const char *id)
{
	so_client_error_t err;
	json_t *story = NULL, *bundle = NULL;
	unsigned char pk[32];
	char path[256];
	int status = cli_connect(cli, true), failed = 0;
	if (status != CLI_EXIT_OK)
		return status;
	unsigned char first[32];
	if ((status = fetch_pubkey(cli, pk, 0)) != CLI_EXIT_OK ||
	    (status = fetch_pubkey(cli, first, 1)) != CLI_EXIT_OK)
		return status;
	snprintf(path, sizeof(path), "/v1/requests/%.64s/explain", id);
	int rc = so_client_get_json(cli->client, path, &story, &err);
	if (rc != SO_CLIENT_OK)
		return cli_fail(cli, id, rc, &err);
	char pkhex[65];
	sodium_bin2hex(pkhex, sizeof(pkhex), pk, 32);
	bundle = json_pack("{s:s, s:s, s:[]}", "request_id", id, "public_key", pkhex, "proofs");
	size_t i;
	json_t *ev;
	json_array_foreach(json_object_get(story, "events"), i, ev) {
		json_t *p = NULL;
		char why[256];
		snprintf(path, sizeof(path), "/v1/audit/proof?seq=%lld",
		         (long long)json_integer_value(json_object_get(ev, "seq")));
		rc = so_client_get_json(cli->client, path, &p, &err);
		if (rc != SO_CLIENT_OK) {
			status = cli_fail(cli, id, rc, &err);
			failed = 1;
			break;
		}
		/* The latest checkpoint is signed by the key in force, or by the first one. */
		int ok = check_proof(p, pk, why, sizeof(why)) || check_proof(p, first, why, sizeof(why));
		if (!ok) {
			cli_warn("audit prove: event %lld: %s",
			         (long long)json_integer_value(json_object_get(ev, "seq")), why);
			failed = 1;
		}
		json_array_append_new(json_object_get(bundle, "proofs"), p);
	}
	if (!failed || status == CLI_EXIT_OK)
		cli_print_json(bundle);
	if (!failed)
		fprintf(stderr, "signoff: %zu events of %s verified against their checkpoint with key "
		                "%.16s...\n", json_array_size(json_object_get(bundle, "proofs")), id, pkhex);
	json_decref(story);
	json_decref(bundle);
	return failed ? (status != CLI_EXIT_OK ? status : 1) : CLI_EXIT_OK;
}

int
cli_audit(struct cli *cli, int argc, char **argv)
{
	enum { OPT_FILE = CLI_OPT_FIRST_VERB, OPT_PUBKEY, OPT_PUBKEY_FILE, OPT_FORMAT, OPT_AFTER,
	       OPT_SINCE };
	static const struct option options[] = {
		CLI_COMMON_OPTIONS,
		{"file", required_argument, NULL, OPT_FILE},
		{"pubkey", required_argument, NULL, OPT_PUBKEY},
		{"pubkey-file", required_argument, NULL, OPT_PUBKEY_FILE},
		{"format", required_argument, NULL, OPT_FORMAT},
		{"after", required_argument, NULL, OPT_AFTER},
		{"since", required_argument, NULL, OPT_SINCE},
		{"output", required_argument, NULL, 'o'},
		{NULL, 0, NULL, 0},
	};
	const char *file = NULL, *pubkey_file = NULL, *format = NULL, *after = NULL, *output = NULL,
	           *since = NULL;
	const char *pins[MAX_PINNED];
	int npins = 0;
	int opt;

	while ((opt = getopt_long(argc, argv, ":ho:", options, NULL)) != -1) {
		switch (opt) {
		case OPT_FILE: file = optarg; continue;
		case OPT_PUBKEY:
			if (npins == MAX_PINNED)
				return cli_usage_error(cli, "at most %d --pubkey", MAX_PINNED);
			pins[npins++] = optarg;
			continue;
		case OPT_PUBKEY_FILE: pubkey_file = optarg; continue;
		case OPT_FORMAT: format = optarg; continue;
		case OPT_AFTER: after = optarg; continue;
		case OPT_SINCE: since = optarg; continue;
		case 'o': output = optarg; continue;
		}
		switch (cli_option(cli, opt, argv)) {
		case CLI_OPT_HANDLED:
			break;
		case CLI_OPT_HELP:
			return audit_help(stdout);
		default:
			return CLI_EXIT_USAGE;
		}
	}
	if (argc - optind < 1)
		return audit_help(stderr);
	const char *sub = argv[optind];
	int nargs = argc - optind - 1;
	if (!strcmp(sub, "verify") && nargs == 0)
		return verify(cli, file, pins, npins, pubkey_file);
	if (!strcmp(sub, "export") && nargs == 0)
		return export(cli, format, after, since, output);
	if (!strcmp(sub, "pubkey") && nargs == 0)
		return pubkey(cli);
	if (!strcmp(sub, "rotate-key") && nargs == 0)
		return rotate_key(cli);
	if (!strcmp(sub, "prove") && nargs == 1)
		return prove(cli, argv[optind + 1]);
	return cli_usage_error(cli, "expected: audit verify|export|pubkey|rotate-key|prove ID "
	                            "(see --help)");
}

#define EXPLAIN_USAGE                                                                      \
	"usage: signoff explain REQUEST_ID\n\n"                                                \
	"Tell the whole story of one request in plain language: who asked, for what, why,\n"   \
	"which rules decided, who approved or denied through which channel, what ran and how\n" \
	"it ended, and the signed checkpoint that covers it.\n"

int
cli_explain(struct cli *cli, int argc, char **argv)
{
	so_client_error_t err;
	json_t *o = NULL;
	char path[256];
	int status = cli_common_args(cli, argc, argv, EXPLAIN_USAGE);
	if (status >= 0)
		return status;
	const char *id;
	status = cli_connect_for_id(cli, argc, argv, &id);
	if (status != CLI_EXIT_OK)
		return status;
	snprintf(path, sizeof(path), "/v1/requests/%.64s/explain", id);
	int rc = so_client_get_json(cli->client, path, &o, &err);
	if (rc != SO_CLIENT_OK)
		return cli_fail(cli, id, rc, &err);
	if (cli->json) {
		cli_print_json(o);
	} else {
		size_t i;
		json_t *line;
		json_array_foreach(json_object_get(o, "story"), i, line) {
			cli_put_safe(stdout, json_string_value(line));
			fputc('\n', stdout);
		}
	}
	json_decref(o);
	return CLI_EXIT_OK;
}
