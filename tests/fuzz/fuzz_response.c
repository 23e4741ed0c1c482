/*
 * fuzz_response.c — libFuzzer target: fuzz_response() of harness.c over each input
 * (built and run by `make fuzz`, see tests/fuzz/run.sh).
 */
#include <stddef.h>
#include <stdint.h>

#include "harness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char out[4096];
    fuzz_response(data, size, out, sizeof out);
    return 0;
}
