/**
 * One line per event on stderr: "TIME LEVEL message". Thread-safe.
 */
#ifndef SO_COMMON_LOG_H
#define SO_COMMON_LOG_H

enum so_log_level { SO_LOG_DEBUG, SO_LOG_INFO, SO_LOG_WARN, SO_LOG_ERROR };

/** Set the lowest level that is printed. */
void so_log_set_level(enum so_log_level lvl);
/** Parse "debug", "info", "warn" or "error". Returns SO_OK or SO_EINVAL. */
int so_log_parse_level(const char *s, enum so_log_level *lvl);
void so_log(enum so_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define so_debug(...) so_log(SO_LOG_DEBUG, __VA_ARGS__)
#define so_info(...) so_log(SO_LOG_INFO, __VA_ARGS__)
#define so_warn(...) so_log(SO_LOG_WARN, __VA_ARGS__)
#define so_error(...) so_log(SO_LOG_ERROR, __VA_ARGS__)

#endif
