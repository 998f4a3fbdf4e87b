/* zpl.c - the ZPL reader of shoald's and shoal-broker's configs; see zpl.h. */
#include "actors/zpl.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h"

#define ZPL_MAX_LINE 1024          /* zconfig cuts a longer line; we refuse it */
#define CONFIG_MAX_BYTES (1 << 20) /* a config file larger than this is a mistake */

static bool zpl_namechar(char ch)
{
    return isalnum((unsigned char)ch) || (ch && strchr("$-_@.&+/", ch));
}

/* Nothing but blanks or a comment up to the end of the line. */
static bool zpl_rest_empty(const char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    return *s == '\0' || *s == '#';
}

/* Refuses name under parent when parent already has an item of that name (seen maps
 * "parent address/name" to the line that wrote it): zconfig would keep both and every
 * lookup would take the first, so a key written twice kept its first value without a word
 * (and a section written twice lost the keys of its second part). err names the path
 * (the sections of last[0 .. level), then name) and both lines. */
static int check_twice(zhashx_t *seen, zconfig_t *parent, zconfig_t *const *last, size_t level,
                       const char *name, int no, char *err, size_t errlen)
{
    char key[ZPL_MAX_LINE + 32];
    snprintf(key, sizeof key, "%p/%s", (void *)parent, name);
    void *first = zhashx_lookup(seen, key);
    if (!first) {
        if (zhashx_insert(seen, key, (void *)(intptr_t)no) == 0)
            return 0;
        snprintf(err, errlen, "line %d: out of memory", no);
        return SHOAL_ENOMEM;
    }
    char path[256] = "";
    size_t len = 0;
    for (size_t l = 0; l <= level && len < sizeof path; l++) {
        int n = snprintf(path + len, sizeof path - len, "%s%s", l ? "/" : "",
                         l < level ? zconfig_name(last[l]) : name);
        len += n > 0 ? (size_t)n : 0;
    }
    snprintf(err, errlen, "line %d: %s is written twice (lines %d and %d): write it once", no, path,
             (int)(intptr_t)first, no);
    return SHOAL_EINVAL;
}

/* Parses ZPL text into a zconfig tree as zconfig_str_load does (4 spaces a level, `name`,
 * `name = value`, a value quoted with " or ' or bare up to a `#`), but reports a syntax
 * error in err with its line number. A name holding '/' is refused too: zconfig takes it
 * as one name, so `storage/fsync = never` at the top level would be ignored; so is a name
 * written twice in one section (check_twice). NULL on error. */
zconfig_t *zpl_parse(const char *text, size_t size, char *err, size_t errlen)
{
    zconfig_t *root = zconfig_new("root", NULL);
    zhashx_t *seen = zhashx_new();     /* "parent/name" -> the line that wrote it */
    zconfig_t *last[ZPL_MAX_LINE / 4]; /* last[l]: the latest item at level l */
    size_t depth = 0;                  /* a new item may sit at levels 0 .. depth */
    char line[ZPL_MAX_LINE + 1], name[ZPL_MAX_LINE + 1];
    const char *p = text, *end = text + size;
    if (!root || !seen) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (int no = 1; p < end; no++) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        size_t n = (size_t)((eol ? eol : end) - p);
        if (n > ZPL_MAX_LINE || memchr(p, '\0', n)) {
            snprintf(err, errlen, "line %d: %s", no,
                     n > ZPL_MAX_LINE ? "longer than 1024 bytes" : "holds a NUL byte");
            goto fail;
        }
        memcpy(line, p, n);
        p = eol ? eol + 1 : end;
        while (n && isspace((unsigned char)line[n - 1]))
            n--;
        line[n] = '\0';
        char *s = line;
        while (*s == ' ')
            s++;
        size_t indent = (size_t)(s - line), len = 0;
        if (indent % 4) {
            snprintf(err, errlen, "line %d: indented by %zu spaces (ZPL indents by 4 a level)", no,
                     indent);
            goto fail;
        }
        while (zpl_namechar(s[len]))
            len++;
        if (len == 0) { /* a blank line or a comment */
            if (zpl_rest_empty(s))
                continue;
            if (*s == '\t')
                snprintf(err, errlen, "line %d: a tab (ZPL indents by 4 spaces a level)", no);
            else
                snprintf(err, errlen, "line %d: expected a name, found: %.40s", no, s);
            goto fail;
        }
        memcpy(name, s, len);
        name[len] = '\0';
        if (strchr(name, '/')) {
            snprintf(err, errlen,
                     "line %d: name \"%.80s\" holds a '/' (write the section, then each of its "
                     "keys on a line of its own, indented)",
                     no, name);
            goto fail;
        }
        s += len;
        while (isspace((unsigned char)*s))
            s++;
        const char *value = "";
        bool has_value = *s == '=';
        if (has_value) {
            s++;
            while (isspace((unsigned char)*s))
                s++;
            char quote = *s == '"' || *s == '\'' ? *s : 0;
            char *close = quote ? strchr(s + 1, quote) : NULL;
            if (quote && !close) {
                snprintf(err, errlen, "line %d: the value of %.80s has no closing %c", no, name,
                         quote);
                goto fail;
            }
            if (quote) {
                *close = '\0';
                value = s + 1;
                s = close + 1;
            } else {
                char *hash = strchr(s, '#');
                while (hash && hash > s && isspace((unsigned char)hash[-1]))
                    hash--;
                if (hash)
                    *hash = '\0';
                value = s;
                s += strlen(s);
            }
        }
        if (!zpl_rest_empty(s)) {
            while (isspace((unsigned char)*s))
                s++;
            if (has_value)
                snprintf(err, errlen, "line %d: text after the quoted value of %.80s: %.40s", no,
                         name, s);
            else
                snprintf(err, errlen, "line %d: expected %.80s = VALUE, found: %.40s", no, name, s);
            goto fail;
        }
        size_t level = indent / 4;
        if (level > depth) {
            snprintf(err, errlen,
                     "line %d: %.80s is indented deeper than one level below its section", no,
                     name);
            goto fail;
        }
        zconfig_t *parent = level ? last[level - 1] : root;
        if (check_twice(seen, parent, last, level, name, no, err, errlen) != 0)
            goto fail;
        zconfig_t *item = zconfig_new(name, parent);
        zconfig_set_value(item, "%s", value);
        last[level] = item;
        depth = level + 1;
    }
    zhashx_destroy(&seen);
    return root;
fail:
    zhashx_destroy(&seen);
    zconfig_destroy(&root);
    return NULL;
}

/* Reads the whole file at path into *text (NUL-terminated; the caller frees it). */
int zpl_read_file(const char *path, char **text, size_t *size, char *err, size_t errlen)
{
    *text = NULL;
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "cannot open: %s", strerror(errno));
        return SHOAL_EIO;
    }
    char *buf = malloc(CONFIG_MAX_BYTES + 1);
    size_t n = buf ? fread(buf, 1, CONFIG_MAX_BYTES + 1, f) : 0;
    int rc = 0;
    if (!buf || ferror(f)) {
        snprintf(err, errlen, "cannot read: %s", buf ? strerror(errno) : "out of memory");
        rc = SHOAL_EIO;
    } else if (n > CONFIG_MAX_BYTES) {
        snprintf(err, errlen, "larger than %d bytes", CONFIG_MAX_BYTES);
        rc = SHOAL_EINVAL;
    }
    fclose(f);
    if (rc) {
        free(buf);
        return rc;
    }
    buf[n] = '\0';
    *text = buf;
    *size = n;
    return 0;
}

enum { KEY_UNKNOWN, KEY_SECTION, KEY_LEAF };

/* Whether path (names joined by '/') is one of keys (NULL-terminated; "*" in a key matches
 * any one name), a section above one, or neither. */
static int key_kind(const char *const *keys, const char *path)
{
    for (const char *const *k = keys; *k; k++) {
        const char *p = path, *q = *k;
        while (*p && *q) {
            if (*q == '*') {
                while (*p && *p != '/')
                    p++;
                q++;
            } else if (*p == *q) {
                p++;
                q++;
            } else
                break;
        }
        if (*p == '\0' && (*q == '\0' || *q == '/'))
            return *q ? KEY_SECTION : KEY_LEAF;
    }
    return KEY_UNKNOWN;
}

/* Refuses every item under sect (its path in path[0 .. len)) that is not one of keys or a
 * section above one, and a section given a value: a misspelt key would otherwise be
 * skipped for its default without a word. */
static int check_keys(const char *const *keys, zconfig_t *sect, char *path, size_t len, size_t cap,
                      char *err, size_t errlen)
{
    for (zconfig_t *k = zconfig_child(sect); k; k = zconfig_next(k)) {
        int n = snprintf(path + len, cap - len, "%s%s", len ? "/" : "", zconfig_name(k));
        int kind = n > 0 && (size_t)n < cap - len ? key_kind(keys, path) : KEY_UNKNOWN;
        const char *v = zconfig_value(k);
        if (kind == KEY_UNKNOWN) {
            snprintf(err, errlen, "unknown key \"%s\"", path);
            return SHOAL_EINVAL;
        }
        if (kind == KEY_SECTION && v && *v) {
            snprintf(err, errlen, "config key %s is a section: it takes no value", path);
            return SHOAL_EINVAL;
        }
        int rc = check_keys(keys, k, path, len + (size_t)n, cap, err, errlen);
        if (rc)
            return rc;
    }
    return 0;
}

int zpl_check_keys(const char *const *keys, zconfig_t *root, char *err, size_t errlen)
{
    char path[256] = "";
    return check_keys(keys, root, path, 0, sizeof path, err, errlen);
}

int zpl_cluster_id(zconfig_t *root, uint64_t *out, char *err, size_t errlen)
{
    char *v = zconfig_get(root, "cluster/id", NULL);
    if (!v)
        return 0;
    char *end;
    errno = 0;
    unsigned long long id = strtoull(v, &end, 16);
    size_t len = strlen(v);
    if (!len || len > 16 || strspn(v, "0123456789abcdefABCDEF") != len || *end || errno || !id) {
        snprintf(err, errlen,
                 "config key cluster/id = \"%s\": expected 1 to 16 hex digits, not all zero", v);
        return SHOAL_EINVAL;
    }
    *out = id;
    return 0;
}

int zpl_load_text(const char *text, size_t size, const char *const *keys, zpl_fill_fn *fill,
                  void *cfg, char *err, size_t errlen)
{
    zconfig_t *root = zpl_parse(text, size, err, errlen);
    if (!root)
        return SHOAL_EINVAL;
    int rc = zpl_check_keys(keys, root, err, errlen);
    if (rc == 0)
        rc = fill(root, cfg, err, errlen);
    zconfig_destroy(&root);
    return rc;
}

int zpl_load_file(const char *path, const char *const *keys, zpl_fill_fn *fill, void *cfg,
                  char *err, size_t errlen)
{
    char inner[512], *text;
    size_t size;
    int rc = zpl_read_file(path, &text, &size, inner, sizeof inner);
    if (rc == 0)
        rc = zpl_load_text(text, size, keys, fill, cfg, inner, sizeof inner);
    if (rc)
        snprintf(err, errlen, "config %s: %s", path, inner);
    free(text);
    return rc;
}
