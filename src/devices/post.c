/* Port 0x80, where firmware writes POST codes and Linux writes for I/O
 * delays: accepted and ignored, so those writes cost no log line. */
#include "devices/post.h"

#include <string.h>

#include "arch/x86_64/layout.h"
#include "devices/board.h"

static void post_read(void *dev, uint64_t offset, void *data, unsigned len)
{
    (void)dev;
    (void)offset;
    memset(data, 0, len);
}

static void post_write(void *dev, uint64_t offset, const void *data, unsigned len)
{
    (void)dev;
    (void)offset;
    (void)data;
    (void)len;
}

static const struct bus_ops post_bus_ops = {.read = post_read, .write = post_write};

int post_board_setup(struct board *b)
{
    return bus_register(b->pio, PORT_POST, 1, &post_bus_ops, NULL, "post");
}
