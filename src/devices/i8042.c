#include "devices/i8042.h"

#include <stdlib.h>
#include <string.h>

#include "arch/x86_64/layout.h"
#include "devices/board.h"

#define OFF_DATA 0
#define OFF_CMD 4

#define STATUS_OBF 0x01
#define STATUS_SYS 0x04
#define STATUS_CMD 0x08
#define STATUS_UNLOCKED 0x10
#define STATUS_AUX_OBF 0x20

#define CTR_KBD_INT 0x01
#define CTR_AUX_INT 0x02
#define CTR_SYS 0x04
#define CTR_KBD_DISABLE 0x10
#define CTR_AUX_DISABLE 0x20
#define CTR_XLATE 0x40

#define CMD_READ_CTR 0x20
#define CMD_WRITE_CTR 0x60
#define CMD_AUX_DISABLE 0xa7
#define CMD_AUX_ENABLE 0xa8
#define CMD_AUX_TEST 0xa9
#define CMD_SELF_TEST 0xaa
#define CMD_KBD_TEST 0xab
#define CMD_KBD_DISABLE 0xad
#define CMD_KBD_ENABLE 0xae
#define CMD_READ_INPUT 0xc0
#define CMD_READ_OUTPORT 0xd0
#define CMD_WRITE_OUTPORT 0xd1
#define CMD_WRITE_KBD_OBUF 0xd2
#define CMD_WRITE_AUX_OBUF 0xd3
#define CMD_WRITE_AUX 0xd4
#define CMD_PULSE_FIRST 0xf0

#define OUTPORT_RESET_HIGH 0x01 /* the reset line is active low */

#define KBD_ACK 0xfa
#define KBD_RESEND 0xfe
#define KBD_BAT_OK 0xaa

static void i8042_queue(struct i8042 *c, uint8_t byte, bool aux)
{
    if (c->q_count == I8042_QUEUE_SIZE)
        return;
    unsigned tail = (c->q_head + c->q_count) % I8042_QUEUE_SIZE;
    c->queue[tail].byte = byte;
    c->queue[tail].aux = aux;
    c->q_count++;
}

/* Raise the line that matches the byte now at the head of the queue. Each
 * byte gets its own edge, as when the chip reloads its output buffer. */
static void i8042_signal(struct i8042 *c)
{
    if (!c->q_count)
        return;
    bool aux = c->queue[c->q_head].aux;
    if (aux && (c->ctr & CTR_AUX_INT))
        irq_line_pulse(&c->aux_irq);
    else if (!aux && (c->ctr & CTR_KBD_INT))
        irq_line_pulse(&c->kbd_irq);
}

static uint8_t i8042_status(const struct i8042 *c)
{
    uint8_t status = STATUS_UNLOCKED | ((c->ctr & CTR_SYS) ? STATUS_SYS : 0);
    if (c->last_write_was_cmd)
        status |= STATUS_CMD;
    if (c->q_count) {
        status |= STATUS_OBF;
        if (c->queue[c->q_head].aux)
            status |= STATUS_AUX_OBF;
    }
    return status;
}

static void i8042_reset_system(struct i8042 *c)
{
    if (c->host && c->host->reset)
        c->host->reset(c->host_ctx);
}

static void i8042_controller_command(struct i8042 *c, uint8_t cmd)
{
    switch (cmd) {
    case CMD_READ_CTR:
        i8042_queue(c, c->ctr, false);
        break;
    case CMD_WRITE_CTR:
    case CMD_WRITE_OUTPORT:
    case CMD_WRITE_KBD_OBUF:
    case CMD_WRITE_AUX_OBUF:
    case CMD_WRITE_AUX:
        c->pending_cmd = cmd;
        break;
    case CMD_AUX_DISABLE: c->ctr |= CTR_AUX_DISABLE; break;
    case CMD_AUX_ENABLE: c->ctr &= (uint8_t)~CTR_AUX_DISABLE; break;
    case CMD_KBD_DISABLE: c->ctr |= CTR_KBD_DISABLE; break;
    case CMD_KBD_ENABLE: c->ctr &= (uint8_t)~CTR_KBD_DISABLE; break;
    case CMD_AUX_TEST:
    case CMD_KBD_TEST:
        i8042_queue(c, 0x00, false); /* no error */
        break;
    case CMD_SELF_TEST:
        c->ctr |= CTR_SYS;
        i8042_queue(c, 0x55, false);
        break;
    case CMD_READ_INPUT:
        i8042_queue(c, 0x00, false);
        break;
    case CMD_READ_OUTPORT:
        i8042_queue(c, c->outport, false);
        break;
    default:
        /* 0xf0-0xff pulse output lines for a moment; bit 0 clear pulses
         * the reset line (0xfe is the usual reboot command). */
        if (cmd >= CMD_PULSE_FIRST && !(cmd & OUTPORT_RESET_HIGH))
            i8042_reset_system(c);
        break;
    }
}

static void i8042_keyboard_command(struct i8042 *c, uint8_t byte)
{
    if (c->kbd_pending) {
        uint8_t cmd = c->kbd_pending;
        c->kbd_pending = 0;
        i8042_queue(c, KBD_ACK, false);
        if (cmd == 0xf0 && byte == 0)
            i8042_queue(c, (c->ctr & CTR_XLATE) ? 0x41 : 0x02, false);
        return;
    }
    switch (byte) {
    case 0xff: /* reset */
        c->kbd_scanning = true;
        i8042_queue(c, KBD_ACK, false);
        i8042_queue(c, KBD_BAT_OK, false);
        break;
    case 0xf2: /* identify: an MF2 keyboard */
        i8042_queue(c, KBD_ACK, false);
        i8042_queue(c, 0xab, false);
        i8042_queue(c, 0x83, false);
        break;
    case 0xed: /* set LEDs */
    case 0xf3: /* set typematic rate */
    case 0xf0: /* get/set scan code set */
        c->kbd_pending = byte;
        i8042_queue(c, KBD_ACK, false);
        break;
    case 0xee: /* echo */
        i8042_queue(c, 0xee, false);
        break;
    case 0xf4: /* enable scanning */
        c->kbd_scanning = true;
        i8042_queue(c, KBD_ACK, false);
        break;
    case 0xf5: /* disable scanning and reset defaults */
        c->kbd_scanning = false;
        i8042_queue(c, KBD_ACK, false);
        break;
    default:
        i8042_queue(c, byte >= 0xf6 ? KBD_ACK : KBD_RESEND, false);
        break;
    }
}

static void i8042_write_data(struct i8042 *c, uint8_t byte)
{
    uint8_t cmd = c->pending_cmd;
    c->pending_cmd = 0;
    switch (cmd) {
    case CMD_WRITE_CTR:
        c->ctr = byte;
        break;
    case CMD_WRITE_OUTPORT:
        c->outport = byte;
        if (!(byte & OUTPORT_RESET_HIGH))
            i8042_reset_system(c);
        break;
    case CMD_WRITE_KBD_OBUF:
        i8042_queue(c, byte, false);
        break;
    case CMD_WRITE_AUX_OBUF:
        i8042_queue(c, byte, true);
        break;
    case CMD_WRITE_AUX:
        /* No mouse is attached: the controller answers "resend". */
        i8042_queue(c, KBD_RESEND, true);
        break;
    default:
        i8042_keyboard_command(c, byte);
        break;
    }
}

static void i8042_bus_read(void *dev, uint64_t offset, void *data, unsigned len)
{
    struct i8042 *c = dev;
    uint8_t value = 0xff;
    pthread_mutex_lock(&c->lock);
    if (offset == OFF_CMD) {
        value = i8042_status(c);
    } else if (offset == OFF_DATA) {
        if (c->q_count) {
            c->last_read = c->queue[c->q_head].byte;
            c->q_head = (c->q_head + 1) % I8042_QUEUE_SIZE;
            c->q_count--;
            i8042_signal(c);
        }
        value = c->last_read;
    }
    pthread_mutex_unlock(&c->lock);
    memset(data, value, len);
}

static void i8042_bus_write(void *dev, uint64_t offset, const void *data, unsigned len)
{
    struct i8042 *c = dev;
    if (len != 1)
        return;
    uint8_t byte = *(const uint8_t *)data;
    pthread_mutex_lock(&c->lock);
    bool was_empty = c->q_count == 0;
    if (offset == OFF_CMD) {
        c->last_write_was_cmd = true;
        c->pending_cmd = 0;
        i8042_controller_command(c, byte);
    } else if (offset == OFF_DATA) {
        c->last_write_was_cmd = false;
        i8042_write_data(c, byte);
    }
    if (was_empty)
        i8042_signal(c);
    pthread_mutex_unlock(&c->lock);
}

/* The data port (0x60) and the status/command port (0x64) are registered
 * separately: the range between them belongs to the PIT's speaker port. */
static void i8042_data_read(void *dev, uint64_t offset, void *data, unsigned len)
{
    i8042_bus_read(dev, offset == 0 ? OFF_DATA : ~0ull, data, len);
}

static void i8042_data_write(void *dev, uint64_t offset, const void *data, unsigned len)
{
    i8042_bus_write(dev, offset == 0 ? OFF_DATA : ~0ull, data, len);
}

static void i8042_cmd_read(void *dev, uint64_t offset, void *data, unsigned len)
{
    i8042_bus_read(dev, offset == 0 ? OFF_CMD : ~0ull, data, len);
}

static void i8042_cmd_write(void *dev, uint64_t offset, const void *data, unsigned len)
{
    i8042_bus_write(dev, offset == 0 ? OFF_CMD : ~0ull, data, len);
}

const struct bus_ops i8042_data_bus_ops = {.read = i8042_data_read, .write = i8042_data_write};
const struct bus_ops i8042_cmd_bus_ops = {.read = i8042_cmd_read, .write = i8042_cmd_write};

void i8042_init(struct i8042 *c, struct irq_line kbd_irq, struct irq_line aux_irq,
                const struct i8042_host_ops *host, void *host_ctx)
{
    memset(c, 0, sizeof(*c));
    pthread_mutex_init(&c->lock, NULL);
    c->kbd_irq = kbd_irq;
    c->aux_irq = aux_irq;
    c->host = host;
    c->host_ctx = host_ctx;
    c->ctr = CTR_KBD_INT | CTR_SYS | CTR_AUX_DISABLE | CTR_XLATE;
    c->outport = OUTPORT_RESET_HIGH;
    c->kbd_scanning = true;
}

void i8042_destroy(struct i8042 *c)
{
    pthread_mutex_destroy(&c->lock);
}

void i8042_send_ctrl_alt_del(struct i8042 *c)
{
    /* Set 1 (what the guest reads when the controller translates) and set 2. */
    static const uint8_t set1[] = {0x1d, 0x38, 0xe0, 0x53, 0xe0, 0xd3, 0xb8, 0x9d};
    static const uint8_t set2[] = {0x14, 0x11, 0xe0, 0x71, 0xe0, 0xf0, 0x71,
                                   0xf0, 0x11, 0xf0, 0x14};
    pthread_mutex_lock(&c->lock);
    bool was_empty = c->q_count == 0;
    bool xlate = c->ctr & CTR_XLATE;
    const uint8_t *codes = xlate ? set1 : set2;
    size_t n = xlate ? sizeof(set1) : sizeof(set2);
    if (c->kbd_scanning && !(c->ctr & CTR_KBD_DISABLE))
        for (size_t i = 0; i < n; i++)
            i8042_queue(c, codes[i], false);
    if (was_empty)
        i8042_signal(c);
    pthread_mutex_unlock(&c->lock);
}

void i8042_save(struct i8042 *c, struct rec r)
{
    pthread_mutex_lock(&c->lock);
    const uint8_t regs[] = {c->last_read, c->ctr, c->outport, c->pending_cmd, c->kbd_pending,
                            c->last_write_was_cmd, c->kbd_scanning};
    rec_put_bytes(r, "regs", regs, sizeof(regs));
    uint8_t bytes[I8042_QUEUE_SIZE], aux[I8042_QUEUE_SIZE];
    for (unsigned i = 0; i < c->q_count; i++) {
        unsigned k = (c->q_head + i) % I8042_QUEUE_SIZE;
        bytes[i] = c->queue[k].byte;
        aux[i] = c->queue[k].aux;
    }
    rec_put_bytes(r, "queue", bytes, c->q_count);
    rec_put_bytes(r, "queue_aux", aux, c->q_count);
    pthread_mutex_unlock(&c->lock);
}

int i8042_load(struct i8042 *c, struct rec r)
{
    uint8_t regs[7], bytes[I8042_QUEUE_SIZE], aux[I8042_QUEUE_SIZE];
    const char *q = rec_get_str_or_null(r, "queue");
    size_t count = q ? strlen(q) / 2 : 0;
    int ret = rec_get_bytes(r, "regs", regs, sizeof(regs));
    if (!ret && (!q || count > I8042_QUEUE_SIZE))
        ret = err_set(-EINVAL, "'queue' is missing or too long");
    if (!ret)
        ret = rec_get_bytes(r, "queue", bytes, count);
    if (!ret)
        ret = rec_get_bytes(r, "queue_aux", aux, count);
    if (ret)
        return err_prefix(ret, "i8042");
    pthread_mutex_lock(&c->lock);
    c->last_read = regs[0], c->ctr = regs[1], c->outport = regs[2], c->pending_cmd = regs[3];
    c->kbd_pending = regs[4], c->last_write_was_cmd = regs[5] != 0;
    c->kbd_scanning = regs[6] != 0;
    c->q_head = 0;
    c->q_count = (unsigned)count;
    for (size_t i = 0; i < count; i++) {
        c->queue[i].byte = bytes[i];
        c->queue[i].aux = aux[i] != 0;
    }
    pthread_mutex_unlock(&c->lock);
    return 0;
}

/* --- on the board --------------------------------------------------------- */

static void i8042_device_destroy(void *dev)
{
    i8042_destroy(dev);
    free(dev);
}

static void i8042_device_save(void *dev, struct rec r)
{
    i8042_save(dev, r);
}

static int i8042_device_load(void *dev, struct rec r)
{
    return i8042_load(dev, r);
}

static const struct device_ops i8042_device_ops = {
    .destroy = i8042_device_destroy,
    .save = i8042_device_save,
    .load = i8042_device_load,
};

static void i8042_board_reset(void *ctx)
{
    board_event(ctx, BOARD_RESET);
}

static const struct i8042_host_ops i8042_board_ops = {.reset = i8042_board_reset};

int i8042_board_setup(struct board *b)
{
    struct i8042 *c = calloc(1, sizeof(*c));
    if (!c)
        return err_set(-ENOMEM, "out of memory");
    i8042_init(c, board_irq(b, IRQ_KEYBOARD), board_irq(b, IRQ_MOUSE), &i8042_board_ops, b);
    if (!board_add(b, &i8042_device_ops, c, "i8042"))
        return -ENOSPC;
    const struct acpi_device acpi = {
        .name = "PS2K", .hid = "PNP0303", .uid = 0,
        .io = {{PORT_I8042_DATA, 1}, {PORT_I8042_CMD, 1}}, .nr_io = 2, .irq = IRQ_KEYBOARD};
    int ret = bus_register(b->pio, PORT_I8042_DATA, 1, &i8042_data_bus_ops, c, "i8042-data");
    if (!ret)
        ret = bus_register(b->pio, PORT_I8042_CMD, 1, &i8042_cmd_bus_ops, c, "i8042-cmd");
    return ret ? ret : board_describe(b, &acpi);
}

struct i8042 *i8042_on_board(const struct board *b)
{
    return board_find(b, &i8042_device_ops, 0);
}
