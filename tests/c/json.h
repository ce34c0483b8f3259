/*
 * A minimal JSON reader for the C tests: enough to read tests/vectors/records.json and the
 * devagent's JSON lines, keeping object key order so MetaData can be compared exactly.
 * Strings are decoded to UTF-8 (with \u escapes and surrogate pairs) and keep their length.
 */
#ifndef KEPMLOG_TEST_JSON_H
#define KEPMLOG_TEST_JSON_H

#include <stdlib.h>
#include <string.h>

typedef enum { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ } jtype;

typedef struct jval {
    jtype t;
    int b;
    double num;
    char *s; /* J_STR: decoded bytes, NUL-terminated; len excludes the NUL */
    size_t len;
    size_t n;          /* J_ARR/J_OBJ: number of items */
    char **keys;       /* J_OBJ: n keys */
    struct jval *items;
} jval;

typedef struct {
    const char *p;
    const char *end;
    int depth;
} jparser;

static void j_free(jval *v) {
    size_t i;
    if (!v) return;
    if (v->t == J_STR) free(v->s);
    if (v->t == J_ARR || v->t == J_OBJ) {
        for (i = 0; i < v->n; i++) {
            j_free(&v->items[i]);
            if (v->keys) free(v->keys[i]);
        }
        free(v->items);
        free(v->keys);
    }
    memset(v, 0, sizeof *v);
}

static void j_ws(jparser *ps) {
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')) ps->p++;
}

static int j_hex4(jparser *ps, unsigned *out) {
    unsigned v = 0;
    int i;
    if (ps->end - ps->p < 4) return -1;
    for (i = 0; i < 4; i++) {
        char c = *ps->p++;
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
        else return -1;
    }
    *out = v;
    return 0;
}

static int j_string(jparser *ps, char **out, size_t *outlen) {
    size_t cap = 16, len = 0;
    char *buf;
    if (ps->p >= ps->end || *ps->p != '"') return -1;
    ps->p++;
    buf = (char *)malloc(cap);
    if (!buf) return -1;
    while (ps->p < ps->end && *ps->p != '"') {
        unsigned cp;
        char tmp[4];
        size_t k = 0, i;
        unsigned char c = (unsigned char)*ps->p++;
        if (c == '\\') {
            if (ps->p >= ps->end) break;
            c = (unsigned char)*ps->p++;
            switch (c) {
            case 'n': tmp[k++] = '\n'; break;
            case 'r': tmp[k++] = '\r'; break;
            case 't': tmp[k++] = '\t'; break;
            case 'b': tmp[k++] = '\b'; break;
            case 'f': tmp[k++] = '\f'; break;
            case '/': case '\\': case '"': tmp[k++] = (char)c; break;
            case 'u':
                if (j_hex4(ps, &cp)) goto fail;
                if (cp >= 0xD800 && cp < 0xDC00) {
                    unsigned lo;
                    if (ps->end - ps->p < 6 || ps->p[0] != '\\' || ps->p[1] != 'u') goto fail;
                    ps->p += 2;
                    if (j_hex4(ps, &lo) || lo < 0xDC00 || lo > 0xDFFF) goto fail;
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                }
                if (cp < 0x80) tmp[k++] = (char)cp;
                else if (cp < 0x800) { tmp[k++] = (char)(0xC0 | (cp >> 6)); tmp[k++] = (char)(0x80 | (cp & 0x3F)); }
                else if (cp < 0x10000) { tmp[k++] = (char)(0xE0 | (cp >> 12)); tmp[k++] = (char)(0x80 | ((cp >> 6) & 0x3F)); tmp[k++] = (char)(0x80 | (cp & 0x3F)); }
                else { tmp[k++] = (char)(0xF0 | (cp >> 18)); tmp[k++] = (char)(0x80 | ((cp >> 12) & 0x3F)); tmp[k++] = (char)(0x80 | ((cp >> 6) & 0x3F)); tmp[k++] = (char)(0x80 | (cp & 0x3F)); }
                break;
            default: goto fail;
            }
        } else {
            tmp[k++] = (char)c;
        }
        if (len + k + 1 > cap) {
            char *nb;
            while (len + k + 1 > cap) cap *= 2;
            nb = (char *)realloc(buf, cap);
            if (!nb) goto fail;
            buf = nb;
        }
        for (i = 0; i < k; i++) buf[len++] = tmp[i];
    }
    if (ps->p >= ps->end) goto fail;
    ps->p++;
    buf[len] = '\0';
    *out = buf;
    *outlen = len;
    return 0;
fail:
    free(buf);
    return -1;
}

static int j_value(jparser *ps, jval *v);

static int j_push(jval *v, size_t *cap) {
    if (v->n == *cap) {
        size_t nc = *cap ? *cap * 2 : 4;
        jval *ni = (jval *)realloc(v->items, nc * sizeof *ni);
        if (!ni) return -1;
        v->items = ni;
        if (v->t == J_OBJ) {
            char **nk = (char **)realloc(v->keys, nc * sizeof *nk);
            if (!nk) return -1;
            v->keys = nk;
        }
        *cap = nc;
    }
    memset(&v->items[v->n], 0, sizeof v->items[v->n]);
    if (v->t == J_OBJ) v->keys[v->n] = NULL;
    return 0;
}

static int j_container(jparser *ps, jval *v, char close) {
    size_t cap = 0;
    ps->p++;
    j_ws(ps);
    if (ps->p < ps->end && *ps->p == close) { ps->p++; return 0; }
    for (;;) {
        if (j_push(v, &cap)) return -1;
        v->n++; /* counted now so j_free releases a half-parsed item */
        if (close == '}') {
            size_t klen;
            j_ws(ps);
            if (j_string(ps, &v->keys[v->n - 1], &klen)) return -1;
            j_ws(ps);
            if (ps->p >= ps->end || *ps->p != ':') return -1;
            ps->p++;
        }
        if (j_value(ps, &v->items[v->n - 1])) return -1;
        j_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') { ps->p++; continue; }
        if (ps->p < ps->end && *ps->p == close) { ps->p++; return 0; }
        return -1;
    }
}

static int j_value(jparser *ps, jval *v) {
    memset(v, 0, sizeof *v);
    j_ws(ps);
    if (ps->p >= ps->end || ++ps->depth > 64) return -1;
    switch (*ps->p) {
    case '{': v->t = J_OBJ; if (j_container(ps, v, '}')) return -1; break;
    case '[': v->t = J_ARR; if (j_container(ps, v, ']')) return -1; break;
    case '"': v->t = J_STR; if (j_string(ps, &v->s, &v->len)) return -1; break;
    case 't': if (ps->end - ps->p < 4 || strncmp(ps->p, "true", 4)) return -1; v->t = J_BOOL; v->b = 1; ps->p += 4; break;
    case 'f': if (ps->end - ps->p < 5 || strncmp(ps->p, "false", 5)) return -1; v->t = J_BOOL; ps->p += 5; break;
    case 'n': if (ps->end - ps->p < 4 || strncmp(ps->p, "null", 4)) return -1; v->t = J_NULL; ps->p += 4; break;
    default: {
        char *endp;
        v->t = J_NUM;
        v->num = strtod(ps->p, &endp);
        if (endp == ps->p || endp > ps->end) return -1;
        ps->p = endp;
    }
    }
    ps->depth--;
    return 0;
}

/* Parses text[0..len) into *v; 0 on success (free with j_free either way). */
static int j_parse(const char *text, size_t len, jval *v) {
    jparser ps;
    ps.p = text;
    ps.end = text + len;
    ps.depth = 0;
    if (j_value(&ps, v)) { j_free(v); return -1; }
    j_ws(&ps);
    if (ps.p != ps.end) { j_free(v); return -1; }
    return 0;
}

static const jval *j_get(const jval *obj, const char *key) {
    size_t i;
    if (!obj || obj->t != J_OBJ) return NULL;
    for (i = 0; i < obj->n; i++) {
        if (strcmp(obj->keys[i], key) == 0) return &obj->items[i];
    }
    return NULL;
}

static const char *j_str(const jval *obj, const char *key) {
    const jval *v = j_get(obj, key);
    return v && v->t == J_STR ? v->s : NULL;
}

/* Deep equality; objects must have the same keys in the same order. */
static int j_equal(const jval *a, const jval *b) {
    size_t i;
    if (a->t != b->t) return 0;
    switch (a->t) {
    case J_NULL: return 1;
    case J_BOOL: return a->b == b->b;
    case J_NUM: return a->num == b->num;
    case J_STR: return a->len == b->len && memcmp(a->s, b->s, a->len) == 0;
    case J_ARR:
    case J_OBJ:
        if (a->n != b->n) return 0;
        for (i = 0; i < a->n; i++) {
            if (a->t == J_OBJ && strcmp(a->keys[i], b->keys[i]) != 0) return 0;
            if (!j_equal(&a->items[i], &b->items[i])) return 0;
        }
        return 1;
    }
    return 0;
}

#endif
