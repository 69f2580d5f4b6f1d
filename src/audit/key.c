/* The audit signing key: Ed25519, created on first start with mode 0600, never sent anywhere. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "audit/audit.h"
#include "common/error.h"
#include "common/log.h"

#define KEY_MAGIC "signoff-ed25519-v1\n"

static int
write_new_key(const char *path, so_audit_key_t *key, char *err, size_t errlen)
{
	crypto_sign_keypair(key->pk, key->sk);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
		return SO_EIO;
	}
	char hex[2 * crypto_sign_SECRETKEYBYTES + 1];
	sodium_bin2hex(hex, sizeof(hex), key->sk, sizeof(key->sk));
	char line[sizeof(KEY_MAGIC) + sizeof(hex) + 2];
	int n = snprintf(line, sizeof(line), "%s%s\n", KEY_MAGIC, hex);
	int rc = SO_OK;
	if (write(fd, line, (size_t)n) != n || fsync(fd)) {
		snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
		unlink(path);
		rc = SO_EIO;
	}
	close(fd);
	sodium_memzero(hex, sizeof(hex));
	sodium_memzero(line, sizeof(line));
	if (rc == SO_OK)
		so_info("audit: created signing key %s", path);
	return rc;
}

int
so_audit_key_create(const char *path, so_audit_key_t *key, char *err, size_t errlen)
{
	return write_new_key(path, key, err, errlen);
}

int
so_audit_key_install(const char *from, const char *to, char *err, size_t errlen)
{
	if (rename(from, to)) {
		snprintf(err, errlen, "cannot move %s to %s: %s", from, to, strerror(errno));
		return SO_EIO;
	}
	/* Make the rename itself durable. */
	char dir[4096];
	const char *slash = strrchr(to, '/');
	snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - to) : 1, slash ? to : ".");
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
	return SO_OK;
}

int
so_audit_key_load(const char *path, so_audit_key_t *key, char *err, size_t errlen)
{
	struct stat st;
	if (stat(path, &st) && errno == ENOENT)
		return write_new_key(path, key, err, errlen);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
		return SO_EIO;
	}
	if (fstat(fd, &st) == 0 && (st.st_mode & 077)) {
		close(fd);
		snprintf(err, errlen, "%s is readable by others (mode %o); chmod 600 it", path,
		         (unsigned)(st.st_mode & 0777));
		return SO_ECONFIG;
	}
	char buf[256];
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	int rc = SO_OK;
	size_t magic = strlen(KEY_MAGIC);
	if (n < (ssize_t)(magic + 2 * crypto_sign_SECRETKEYBYTES) || memcmp(buf, KEY_MAGIC, magic) ||
	    sodium_hex2bin(key->sk, sizeof(key->sk), buf + magic, 2 * crypto_sign_SECRETKEYBYTES,
	                   NULL, NULL, NULL)) {
		snprintf(err, errlen, "%s is not a signoff signing key", path);
		rc = SO_ECONFIG;
	} else {
		crypto_sign_ed25519_sk_to_pk(key->pk, key->sk);
	}
	sodium_memzero(buf, sizeof(buf));
	return rc;
}

void
so_audit_key_wipe(so_audit_key_t *key)
{
	sodium_memzero(key, sizeof(*key));
}
