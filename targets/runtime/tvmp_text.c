#include "tvmp_text.h"

void tvmp_text_init(tvmp_text* t, char* buf, uint32_t cap) {
  t->buf = buf;
  t->cap = cap;
  t->len = 0;
  if (cap > 0) buf[0] = '\0';
}

static void put(tvmp_text* t, char c) {
  if (t->cap == 0 || t->len + 1 >= t->cap) return;
  t->buf[t->len++] = c;
  t->buf[t->len] = '\0';
}

void tvmp_text_str(tvmp_text* t, const char* s) {
  if (s == 0) s = "(null)";
  while (*s) put(t, *s++);
}

void tvmp_text_u64(tvmp_text* t, uint64_t v) {
  char digits[20];
  int n = 0;
  do {
    digits[n++] = (char)('0' + (int)(v % 10u));
    v /= 10u;
  } while (v != 0u);
  while (n > 0) put(t, digits[--n]);
}

void tvmp_text_i64(tvmp_text* t, int64_t v) {
  if (v < 0) {
    put(t, '-');
    tvmp_text_u64(t, (uint64_t)0 - (uint64_t)v);
  } else {
    tvmp_text_u64(t, (uint64_t)v);
  }
}

void tvmp_text_hex32(tvmp_text* t, uint32_t v) {
  static const char hex[] = "0123456789abcdef";
  put(t, '0');
  put(t, 'x');
  for (int shift = 28; shift >= 0; shift -= 4) put(t, hex[(v >> shift) & 0xFu]);
}
