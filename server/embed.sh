#!/bin/sh
# Emit C source embedding each file as a byte array (migrations, the API
# document), so the fitd binary is self-contained. Output: an array of
# {name, bytes, length} entries, NUL-terminated data, in argument order.
set -eu
i=0
for f in "$@"; do
  printf 'static const unsigned char f%d[] = {\n' "$i"
  od -An -v -tx1 "$f" | sed -e 's/ \([0-9a-f][0-9a-f]\)/0x\1,/g'
  printf '0x00};\n'
  i=$((i + 1))
done
printf '#include "embedded.h"\nconst srv_embedded_file srv_embedded[] = {\n'
i=0
for f in "$@"; do
  printf '  {"%s", (const char *)f%d, sizeof f%d - 1},\n' "$f" "$i" "$i"
  i=$((i + 1))
done
printf '  {0, 0, 0}\n};\n'
