/* PCI bus 0 on the board: the host bridge at 00:00.0 and configuration
 * mechanism #1 at ports 0xCF8-0xCFF. */
#ifndef EMBER_DEVICES_PCI_HOST_H
#define EMBER_DEVICES_PCI_HOST_H

#include "util/err.h"

struct board;

int pci_host_board_setup(struct board *b) EMBER_MUST_CHECK;

#endif
