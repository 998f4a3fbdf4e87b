/* zpl.h - the ZPL reader of shoald's and shoal-broker's configs (czmq's format: 4-space
 * indents, `key = value`, `#` comments), building the same zconfig tree zconfig does.
 *
 * Not zconfig_load: zconfig prints a syntax error on stdout (czmq's zclock_log, whatever
 * zsys's log stream), and a daemon's stdout must stay clean. This reader refuses what
 * zconfig refuses and puts the line and the reason into the caller's one error line; it
 * also refuses a name holding '/' (zconfig would keep `a/b = 1` as one key nobody reads),
 * a key or section written twice in one section (zconfig keeps both and every lookup takes
 * the first: "line 9: cluster/shards is written twice (lines 3 and 9)"), lines over 1024
 * bytes (zconfig cuts them) and NUL bytes. */
#ifndef SHOAL_ZPL_H
#define SHOAL_ZPL_H

#include <czmq.h>
#include <stddef.h>
#include <stdint.h>

/* The tree of text[0 .. size), or NULL with "line N: reason" in err. */
zconfig_t *zpl_parse(const char *text, size_t size, char *err, size_t errlen);
/* Reads a whole config file (at most 1 MiB) into *text (malloc'd, NUL-terminated). */
int zpl_read_file(const char *path, char **text, size_t *size, char *err, size_t errlen);
/* Refuses (SHOAL_EINVAL, the key's path in err) any item of root that is not one of keys
 * (NULL-terminated paths such as "node/id"; "*" matches any one name) or a section above
 * one, and a section given a value: a misspelt key would otherwise keep its default. */
int zpl_check_keys(const char *const *keys, zconfig_t *root, char *err, size_t errlen);

/* The keys of the cluster section, which the node's and the broker's configs share. */
#define ZPL_CLUSTER_KEYS                                                                           \
    "cluster/id", "cluster/shards", "cluster/replicas", "cluster/vnodes",                          \
        "cluster/nodes/*/endpoint", "cluster/nodes/*/pub_endpoint"

/* cluster/id, which nodes and brokers read alike: 1 to 16 hex digits, not all zero (0 means
 * "not known"); absent leaves *out alone. 0, or SHOAL_EINVAL with the key in err. */
int zpl_cluster_id(zconfig_t *root, uint64_t *out, char *err, size_t errlen);

/* Fills a config struct from a checked tree: 0, or SHOAL_E* with one line in err. */
typedef int(zpl_fill_fn)(zconfig_t *root, void *cfg, char *err, size_t errlen);
/* Parses text, checks its keys against keys (zpl_check_keys), then calls fill. */
int zpl_load_text(const char *text, size_t size, const char *const *keys, zpl_fill_fn *fill,
                  void *cfg, char *err, size_t errlen);
/* Same for the file at path; err starts with "config PATH: ". */
int zpl_load_file(const char *path, const char *const *keys, zpl_fill_fn *fill, void *cfg,
                  char *err, size_t errlen);

#endif
