/*
 * harness.h — drivers for the parsers of examples/http_parse.c, shared by
 * the libFuzzer targets (tests/fuzz/fuzz_*.c, built by `make fuzz`) and by
 * tests/check_http_parse (make check).
 *
 * Each driver runs one parser over arbitrary bytes the way its program does
 * (httpd's connection loop, load's response loop, load's URL handling),
 * checks what must hold whatever the bytes are, and writes a one-line
 * summary of the outcome to out.  A broken invariant prints what broke and
 * aborts, which libFuzzer reports as a crash and make check as a failure.
 */
#ifndef FUZZ_HARNESS_H
#define FUZZ_HARNESS_H

#include <stddef.h>
#include <stdint.h>

/* The data as the byte stream a client sends httpd.  Summary: one word per
 * request answered ("ok:keep", "ok:close:head", "ok:keep:body=5"), then
 * how the connection ends: "eof" (the stream ended; httpd would wait for
 * more), "400", "431" or "501", or nothing after a request that closes. */
void fuzz_request(const uint8_t *data, size_t size, char *out, size_t cap);

/* The data as the byte stream a server sends load, read into a buffer of
 * FUZZ_RESPONSE_CAP bytes.  Summary: "ok:LEN" per response ("ok:LEN:close"
 * for one after which load closes the connection, and stops), then "eof"
 * (the stream ended within or between responses), "EPROTO" or
 * "EMSGSIZE". */
#define FUZZ_RESPONSE_CAP 1024
void fuzz_response(const uint8_t *data, size_t size, char *out, size_t cap);

/* The data (up to its first NUL) as load's URL argument.  Summary: "host=H
 * port=P authority=A path=P" (bytes outside printable ASCII as \xNN), or
 * "EINVAL" / "EPROTONOSUPPORT" / "EMSGSIZE". */
void fuzz_url(const uint8_t *data, size_t size, char *out, size_t cap);

#endif
