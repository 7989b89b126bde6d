/* The PC ember emulates: which devices it has, in which order. */
#ifndef EMBER_VMM_PC_H
#define EMBER_VMM_PC_H

#include "devices/board.h"

/* Set up every device the configuration asks for on 'b'. On failure the
 * devices made so far stay on the board (board_destroy frees them). */
int pc_board_setup(struct board *b) EMBER_MUST_CHECK;

#endif
