/*
 * http_parse_ref.h — the reference request parser (tests/http_parse_ref.c).
 */
#ifndef HTTP_PARSE_REF_H
#define HTTP_PARSE_REF_H

#include <stddef.h>

#include "http_parse.h"

/* http_next_request's contract, computed the straightforward way. */
int ref_next_request(const char *in, size_t have, size_t *pos, size_t *skip,
                     struct http_request *req);

#endif
