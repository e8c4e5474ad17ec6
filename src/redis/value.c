/*
 * value.c - a value's bytes as stored in Redis, and the checks a value
 * read back must pass before any caller sees it. See fleet.h.
 */
#include "fleet.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char magic[4] = {'S', 'C', 'R', '1'};

static void put64(char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (char)(v & 0xff);
}

static uint64_t get64(const char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | (unsigned char)p[i];
    return v;
}

char *scr__value_encode(uint64_t fence, const void *val, size_t len)
{
    char *e = malloc(SCR_VALUE_HEADER + len);
    if (e == NULL)
        return NULL;
    memcpy(e, magic, sizeof magic);
    put64(e + 4, fence);
    put64(e + 12, len);
    if (len > 0)
        memcpy(e + SCR_VALUE_HEADER, val, len);
    return e;
}

int scr__value_decode(const char *entry, size_t n, size_t max, uint64_t *fence,
                      const char **val, size_t *len)
{
    if (n < SCR_VALUE_HEADER || memcmp(entry, magic, sizeof magic) != 0)
        return -EBADMSG;
    uint64_t stated = get64(entry + 12);
    if (stated != n - SCR_VALUE_HEADER) /* truncated, or padded */
        return -EBADMSG;
    if (stated > max)
        return -EMSGSIZE;
    *fence = get64(entry + 4);
    *val = entry + SCR_VALUE_HEADER;
    *len = (size_t)stated;
    return 0;
}
