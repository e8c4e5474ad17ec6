/*
 * number.h - what the demos' command lines share: reading a number.
 */
#ifndef DEMOS_NUMBER_H
#define DEMOS_NUMBER_H

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

/* Reads s as a whole decimal number in [lo, hi] into *out; false (and
 * *out untouched) if s is NULL or not such a number. */
static inline bool demo_number(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = s != NULL ? strtol(s, &end, 10) : 0;
    if (s == NULL || *s == '\0' || *end != '\0' || errno != 0 || v < lo ||
        v > hi)
        return false;
    *out = v;
    return true;
}

#endif /* DEMOS_NUMBER_H */
