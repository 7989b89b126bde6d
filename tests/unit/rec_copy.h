/* A record as a snapshot file would give it back: serialised and parsed. */
#ifndef EMBER_TESTS_REC_COPY_H
#define EMBER_TESTS_REC_COPY_H

#include "unit.h"

#include "snapshot/record.h"

/* Takes 'r' (freed) and returns its parsed copy. */
static inline struct rec rec_copy(struct rec r)
{
    size_t len;
    const char *text = rec_text(r, &len);
    struct rec back;
    assert_int_equal(rec_parse(text, len, &back), 0);
    rec_free(r);
    return back;
}

#endif
