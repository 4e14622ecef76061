/* A small helper for the examples: the numbers of one key of a flat JSON
 * object, as sampo hands the state's `config` table to sampo_init. Real
 * plugins would use a JSON library (cJSON, json-fortran, serde_json). */
#ifndef JSON_NUMBERS_H
#define JSON_NUMBERS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Where the value of "key" starts (just after its colon), or NULL. */
static inline const char *json_value(const char *json, const char *key) {
    char pattern[128];
    snprintf(pattern, sizeof pattern, "\"%s\"", key);
    const char *p = strstr(json, pattern);
    if (!p) return NULL;
    p = strchr(p + strlen(pattern), ':');
    return p ? p + 1 : NULL;
}

/* Reads up to max numbers of the value of "key" (a number, or an array of
 * numbers, nested arrays flattened) into out; returns how many, or -1 if
 * the key is missing. */
static inline int json_numbers(const char *json, const char *key, double *out, int max) {
    const char *p = json_value(json, key);
    if (!p) return -1;
    int depth = 0, n = 0;
    while (*p) {
        if (*p == '[') depth++;
        else if (*p == ']') { if (--depth <= 0) break; }
        else if (*p == ',' || *p == ' ' || *p == '\n') { if (depth == 0 && n > 0) break; }
        else if (*p == '}' && depth == 0) break;
        else {
            char *end;
            double v = strtod(p, &end);
            if (end != p) {
                if (n < max) out[n] = v;
                n++;
                p = end;
                continue;
            }
        }
        p++;
    }
    return n < max ? n : max;
}

/* The string value of "key" into out (at most len bytes with the NUL);
 * returns 0, or -1 if missing. */
static inline int json_string(const char *json, const char *key, char *out, size_t len) {
    const char *p = json_value(json, key);
    if (!p) return -1;
    p = strchr(p, '"');
    if (!p) return -1;
    const char *end = strchr(p + 1, '"');
    if (!end || (size_t)(end - p - 1) >= len) return -1;
    memcpy(out, p + 1, end - p - 1);
    out[end - p - 1] = '\0';
    return 0;
}

#endif
