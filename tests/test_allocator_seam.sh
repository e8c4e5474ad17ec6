#!/bin/sh
# test_allocator_seam.sh - the fault injection of tests/test_memory.c wraps
# malloc and calloc. If the library ever calls another allocator, its failure
# paths would go untested: this check fails first.
#
#   tests/test_allocator_seam.sh BUILD_DIR
set -eu
obj=${1:-build}/obj/sharedcalls.o
extra=$(nm -u "$obj" |
    awk '$2 ~ /^(realloc|reallocarray|strdup|strndup|aligned_alloc|posix_memalign|memalign|valloc)$/ { printf " %s", $2 }')
if [ -n "$extra" ]; then
    echo "the library calls allocators the fault injection misses:$extra"
    exit 1
fi
echo "the library allocates only through malloc and calloc, both wrapped"
