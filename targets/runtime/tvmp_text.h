/*
 * Tiny text builder: strings and integers into a fixed buffer, always NUL
 * terminated, silently truncated. It replaces snprintf so that the runtime,
 * the harness and the fault handler pull in neither stdio nor malloc, and so
 * that it is safe to use from a fault handler.
 */
#ifndef TVMP_TEXT_H_
#define TVMP_TEXT_H_

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  char* buf;    /* destination, NUL terminated after every call */
  uint32_t cap; /* bytes available in buf, including the NUL */
  uint32_t len; /* characters written so far */
} tvmp_text;

void tvmp_text_init(tvmp_text* t, char* buf, uint32_t cap);
void tvmp_text_str(tvmp_text* t, const char* s);
void tvmp_text_u64(tvmp_text* t, uint64_t v);
void tvmp_text_i64(tvmp_text* t, int64_t v);
/* "0x" followed by exactly 8 hex digits. */
void tvmp_text_hex32(tvmp_text* t, uint32_t v);

#ifdef __cplusplus
}
#endif

#endif /* TVMP_TEXT_H_ */
