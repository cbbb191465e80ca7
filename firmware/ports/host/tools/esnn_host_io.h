/* Host test drivers only (esnn_check, ann_check; never part of a firmware image): read a
 * whole file into a fresh heap buffer. Returns NULL when the file cannot be opened or read, or
 * is larger than max_bytes; the caller frees. malloc's alignment suits the in-place readers. */
#ifndef ESNN_HOST_IO_H
#define ESNN_HOST_IO_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static uint8_t *esnn_host_read_file(const char *path, uint32_t *len, unsigned long max_bytes)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf;
    long n;
    if (f == NULL) return NULL;
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || (unsigned long)n > max_bytes ||
        fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return NULL;
    }
    buf = (uint8_t *)malloc((size_t)n + 8u); /* malloc: aligned for any type */
    if (buf == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        fclose(f);
        return NULL;
    }
    fclose(f);
    *len = (uint32_t)n;
    return buf;
}

#endif
