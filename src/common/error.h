/**
 * Error codes shared by every module: SO_OK is 0, errors are negative.
 */
#ifndef SO_COMMON_ERROR_H
#define SO_COMMON_ERROR_H

enum {
	SO_OK = 0,
	SO_ENOMEM = -1,     /**< out of memory */
	SO_EINVAL = -2,     /**< invalid argument or value */
	SO_EBADJSON = -3,   /**< malformed JSON */
	SO_ETOODEEP = -4,   /**< JSON nested too deep */
	SO_ETOOLONG = -5,   /**< a string or list over its limit */
	SO_ETOOLARGE = -6,  /**< a body or buffer over its limit */
	SO_ENOTFOUND = -7,  /**< no such object */
	SO_ESTORE = -8,     /**< the store failed; nothing was changed */
	SO_EIO = -9,        /**< file or socket error */
	SO_ECONFIG = -10,   /**< invalid configuration */
	SO_ECONFLICT = -11, /**< wrong state for this change */
	SO_EDENIED = -12,   /**< not allowed */
	SO_EBUSY = -13,     /**< try again later */
};

/** A static English description of `err`. */
const char *so_strerror(int err);

#endif
