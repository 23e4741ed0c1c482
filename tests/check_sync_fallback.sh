#!/bin/sh
# check_sync again with goroutines forced onto the runtime wait table, the
# fallback for kernels without IORING_OP_FUTEX_WAIT (futex.c).
RINGO_NO_IO_URING_FUTEX=1
export RINGO_NO_IO_URING_FUTEX
exec "${top_builddir:-.}/tests/check_sync"
