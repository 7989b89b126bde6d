/* The POST-code port 0x80: writes accepted and ignored, reads give 0. */
#ifndef EMBER_DEVICES_POST_H
#define EMBER_DEVICES_POST_H

#include "util/err.h"

struct board;

int post_board_setup(struct board *b) EMBER_MUST_CHECK;

#endif
