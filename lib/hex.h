/*
 * hex: lower-case hexadecimal encoding of byte strings (digests, signatures, file names) and
 * decoding back. No allocation, no state; safe from any thread.
 */
#ifndef LV_HEX_H
#define LV_HEX_H

#include <stddef.h>
#include <stdint.h>

/* Writes 2 * n lower-case hex digits and a NUL into out (2 * n + 1 bytes). Returns out. */
char *lv_hex_encode(const void *data, size_t n, char *out);

/* The value of one hex digit (either case), or -1 if c is not one. */
int lv_hex_digit(char c);

/*
 * Decodes exactly 2 * n hex digits (either case) from s into out[0..n). Returns 0 on success, -1 if
 * s is shorter or holds a non-hex character (out is then partly written).
 */
int lv_hex_decode(const char *s, uint8_t *out, size_t n);

#endif
