#include "devices/serial_8250.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch/x86_64/layout.h"
#include "devices/board.h"
#include "util/log.h"

#define REG_RBR_THR 0 /* DLL when DLAB */
#define REG_IER 1     /* DLM when DLAB */
#define REG_IIR_FCR 2
#define REG_LCR 3
#define REG_MCR 4
#define REG_LSR 5
#define REG_MSR 6
#define REG_SCR 7

#define IER_RDI 0x01  /* received data available */
#define IER_THRI 0x02 /* transmitter holding register empty */
#define IER_RLSI 0x04 /* receiver line status */
#define IER_MSI 0x08  /* modem status */
#define IER_MASK 0x0f

#define IIR_NO_INT 0x01
#define IIR_MSI 0x00
#define IIR_THRI 0x02
#define IIR_RDI 0x04
#define IIR_FIFO_ENABLED 0xc0

#define FCR_ENABLE 0x01
#define FCR_CLEAR_RX 0x02

#define LCR_DLAB 0x80

#define MCR_DTR 0x01
#define MCR_RTS 0x02
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08
#define MCR_LOOP 0x10
#define MCR_MASK 0x1f

#define LSR_DR 0x01
#define LSR_THRE 0x20
#define LSR_TEMT 0x40

#define MSR_DELTA_MASK 0x0f
#define MSR_CTS 0x10
#define MSR_DSR 0x20
#define MSR_RI 0x40
#define MSR_DCD 0x80

static uint8_t serial_iir(const struct serial *s)
{
    uint8_t fifo = (s->fcr & FCR_ENABLE) ? IIR_FIFO_ENABLED : 0;
    if ((s->ier & IER_RDI) && s->rx_count)
        return fifo | IIR_RDI;
    if ((s->ier & IER_THRI) && s->thre_pending)
        return fifo | IIR_THRI;
    if ((s->ier & IER_MSI) && (s->msr & MSR_DELTA_MASK))
        return fifo | IIR_MSI;
    return fifo | IIR_NO_INT;
}

/* The interrupt line follows IIR, as on the chip. */
static void serial_update_irq(struct serial *s)
{
    bool level = !(serial_iir(s) & IIR_NO_INT);
    if (level != s->irq_level) {
        s->irq_level = level;
        irq_line_set(&s->irq, level);
    }
}

static void serial_reset_regs(struct serial *s)
{
    s->rx_head = s->rx_count = 0;
    s->tx_count = 0;
    s->ier = s->lcr = s->mcr = s->scr = s->fcr = 0;
    s->dll = 12; /* 9600 baud */
    s->dlm = 0;
    s->lsr = LSR_THRE | LSR_TEMT;
    s->msr = MSR_DCD | MSR_DSR | MSR_CTS;
    s->thre_pending = false;
    s->irq_level = false;
}

void serial_init(struct serial *s, struct irq_line irq, const struct chardev_host *host)
{
    memset(s, 0, sizeof(*s));
    pthread_mutex_init(&s->lock, NULL);
    s->irq = irq;
    s->host = *host;
    serial_reset_regs(s);
}

void serial_set_rate_limit(struct serial *s, const struct bucket_config *cfg,
                           uint64_t (*clock)(void))
{
    s->clock = clock ? clock : rate_limiter_now_ns;
    token_bucket_init(&s->out_limit, cfg, s->clock());
}

/* False: the byte is over the rate limit and dropped. */
static bool serial_output_allowed(struct serial *s)
{
    uint64_t owed_ms;
    if (!s->out_limit.active || token_bucket_reduce(&s->out_limit, 1, s->clock(), &owed_ms))
        return true;
    s->limit_dropped++;
    return false;
}

void serial_destroy(struct serial *s)
{
    pthread_mutex_destroy(&s->lock);
}

static void rx_push(struct serial *s, uint8_t byte)
{
    if (s->rx_count == SERIAL_FIFO_SIZE)
        return; /* overrun: the byte is lost, as on the chip */
    s->rx_fifo[(s->rx_head + s->rx_count) % SERIAL_FIFO_SIZE] = byte;
    s->rx_count++;
    s->bytes_in++;
}

static uint8_t rx_pop(struct serial *s)
{
    if (!s->rx_count)
        return 0;
    uint8_t byte = s->rx_fifo[s->rx_head];
    s->rx_head = (s->rx_head + 1) % SERIAL_FIFO_SIZE;
    s->rx_count--;
    return byte;
}

/* Input waits until the guest's driver has really opened the port: receive
 * interrupts on and OUT2 set (on a PC, OUT2 gates the UART's interrupt line).
 * Linux's probe sets IER alone to test the register, and its start-up clears
 * the FIFO before setting OUT2: bytes offered earlier would be lost. */
static bool serial_accepts_input(const struct serial *s)
{
    return (s->ier & IER_RDI) && (s->mcr & MCR_OUT2) && !(s->mcr & MCR_LOOP);
}

static void notify_rx_ready(struct serial *s)
{
    chardev_input_ready(&s->host);
}

size_t serial_receive(struct serial *s, const uint8_t *buf, size_t len)
{
    size_t taken = 0;
    pthread_mutex_lock(&s->lock);
    if (serial_accepts_input(s)) {
        while (taken < len && s->rx_count < SERIAL_FIFO_SIZE)
            rx_push(s, buf[taken++]);
        serial_update_irq(s);
    }
    pthread_mutex_unlock(&s->lock);
    return taken;
}

/* In loopback the modem inputs mirror the modem outputs. */
static uint8_t serial_msr(const struct serial *s)
{
    if (!(s->mcr & MCR_LOOP))
        return s->msr;
    uint8_t msr = s->msr & MSR_DELTA_MASK;
    if (s->mcr & MCR_RTS)
        msr |= MSR_CTS;
    if (s->mcr & MCR_DTR)
        msr |= MSR_DSR;
    if (s->mcr & MCR_OUT1)
        msr |= MSR_RI;
    if (s->mcr & MCR_OUT2)
        msr |= MSR_DCD;
    return msr;
}

static uint8_t serial_read_reg(struct serial *s, unsigned reg)
{
    bool dlab = s->lcr & LCR_DLAB;
    switch (reg) {
    case REG_RBR_THR: {
        if (dlab)
            return s->dll;
        uint8_t byte = rx_pop(s);
        if (s->rx_count == 0)
            notify_rx_ready(s);
        return byte;
    }
    case REG_IER:
        return dlab ? s->dlm : s->ier;
    case REG_IIR_FCR: {
        uint8_t iir = serial_iir(s);
        /* Reading IIR while it reports THRE acknowledges it. */
        if ((iir & 0x0f) == IIR_THRI)
            s->thre_pending = false;
        return iir;
    }
    case REG_LCR:
        return s->lcr;
    case REG_MCR:
        return s->mcr;
    case REG_LSR:
        return (uint8_t)(s->lsr | (s->rx_count ? LSR_DR : 0));
    case REG_MSR: {
        uint8_t msr = serial_msr(s);
        s->msr &= (uint8_t)~MSR_DELTA_MASK;
        return msr;
    }
    case REG_SCR:
    default:
        return s->scr;
    }
}

/* Hand held bytes to the host; the transmitter is empty again once they
 * have all gone, else wait for the host to have room. */
static void tx_flush(struct serial *s)
{
    if (s->tx_count) {
        size_t n = chardev_write(&s->host, s->tx_fifo, s->tx_count);
        memmove(s->tx_fifo, s->tx_fifo + n, s->tx_count - n);
        s->tx_count -= (unsigned)n;
    }
    if (s->tx_count) {
        if (!s->tx_waiting && chardev_wait_writable(&s->host, serial_host_writable, s))
            s->tx_waiting = true;
        else if (!s->tx_waiting)
            s->tx_count = 0; /* a host that cannot call back: drop */
    }
    if (!s->tx_count && !(s->lsr & LSR_THRE)) {
        s->lsr |= LSR_THRE | LSR_TEMT;
        s->thre_pending = true;
    }
}

void serial_host_writable(void *serial)
{
    struct serial *s = serial;
    pthread_mutex_lock(&s->lock);
    s->tx_waiting = false;
    tx_flush(s);
    serial_update_irq(s);
    pthread_mutex_unlock(&s->lock);
}

static void serial_transmit(struct serial *s, uint8_t byte)
{
    s->bytes_out++;
    if (s->mcr & MCR_LOOP) {
        rx_push(s, byte);
        s->thre_pending = true;
        return;
    }
    if (!serial_output_allowed(s)) {
        s->thre_pending = true; /* gone, as if sent */
        return;
    }
    if (s->tx_count) {
        /* The host is still busy with earlier bytes: they wait in the
         * transmit FIFO; a full one loses the byte, as the chip would. */
        if (s->tx_count < SERIAL_FIFO_SIZE)
            s->tx_fifo[s->tx_count++] = byte;
        else
            s->tx_dropped++;
        return;
    }
    if (chardev_write(&s->host, &byte, 1) == 1) {
        /* The byte leaves at once: the holding register is empty again. */
        s->thre_pending = true;
        return;
    }
    s->tx_fifo[0] = byte;
    s->tx_count = 1;
    s->lsr &= (uint8_t)~(LSR_THRE | LSR_TEMT);
    s->thre_pending = false;
    tx_flush(s);
}

static void serial_write_ier(struct serial *s, uint8_t value)
{
    uint8_t old = s->ier;
    s->ier = value & IER_MASK;
    /* Enabling THRE interrupts while the transmitter is idle raises one at
     * once; Linux's start-up test depends on that. */
    if (!(old & IER_THRI) && (s->ier & IER_THRI) && (s->lsr & LSR_THRE))
        s->thre_pending = true;
}

static void serial_write_reg(struct serial *s, unsigned reg, uint8_t value)
{
    bool dlab = s->lcr & LCR_DLAB;
    bool accepted = serial_accepts_input(s);
    switch (reg) {
    case REG_RBR_THR:
        if (dlab)
            s->dll = value;
        else
            serial_transmit(s, value);
        break;
    case REG_IER:
        if (dlab)
            s->dlm = value;
        else
            serial_write_ier(s, value);
        break;
    case REG_IIR_FCR:
        if (value & FCR_CLEAR_RX) {
            s->rx_head = s->rx_count = 0;
            notify_rx_ready(s);
        }
        s->fcr = value & 0xc9; /* enable, DMA mode, trigger level */
        break;
    case REG_LCR:
        s->lcr = value;
        break;
    case REG_MCR:
        s->mcr = value & MCR_MASK;
        break;
    case REG_SCR:
        s->scr = value;
        break;
    default:
        break; /* LSR and MSR are read-only */
    }
    if (!accepted && serial_accepts_input(s))
        notify_rx_ready(s);
}

static void serial_bus_read(void *dev, uint64_t offset, void *data, unsigned len)
{
    struct serial *s = dev;
    uint8_t *out = data;
    pthread_mutex_lock(&s->lock);
    for (unsigned i = 0; i < len; i++)
        out[i] = offset + i < SERIAL_REG_COUNT ? serial_read_reg(s, (unsigned)(offset + i)) : 0xff;
    serial_update_irq(s);
    pthread_mutex_unlock(&s->lock);
}

static void serial_bus_write(void *dev, uint64_t offset, const void *data, unsigned len)
{
    struct serial *s = dev;
    const uint8_t *in = data;
    pthread_mutex_lock(&s->lock);
    for (unsigned i = 0; i < len; i++)
        if (offset + i < SERIAL_REG_COUNT)
            serial_write_reg(s, (unsigned)(offset + i), in[i]);
    serial_update_irq(s);
    pthread_mutex_unlock(&s->lock);
}

const struct bus_ops serial_bus_ops = {
    .read = serial_bus_read,
    .write = serial_bus_write,
};

void serial_save(struct serial *s, struct rec r)
{
    pthread_mutex_lock(&s->lock);
    const uint8_t regs[] = {s->ier, s->lcr, s->mcr, s->lsr, s->msr, s->scr, s->fcr, s->dll,
                            s->dlm, s->thre_pending, s->irq_level};
    rec_put_bytes(r, "regs", regs, sizeof(regs));
    uint8_t fifo[SERIAL_FIFO_SIZE];
    for (unsigned i = 0; i < s->rx_count; i++)
        fifo[i] = s->rx_fifo[(s->rx_head + i) % SERIAL_FIFO_SIZE];
    rec_put_bytes(r, "rx", fifo, s->rx_count);
    rec_put_bytes(r, "tx", s->tx_fifo, s->tx_count);
    pthread_mutex_unlock(&s->lock);
}

int serial_load(struct serial *s, struct rec r)
{
    uint8_t regs[11];
    uint8_t tx[SERIAL_FIFO_SIZE];
    int ret = rec_get_bytes(r, "regs", regs, sizeof(regs));
    const char *rx = rec_get_str_or_null(r, "rx");
    size_t count = rx ? strlen(rx) / 2 : 0;
    if (!ret && (!rx || count > SERIAL_FIFO_SIZE))
        ret = err_set(-EINVAL, "'rx' is missing or longer than the FIFO");
    if (!ret)
        ret = rec_get_bytes(r, "rx", s->rx_fifo, count);
    /* Bytes the host had not taken (optional: older snapshots have none). */
    const char *txs = rec_has(r, "tx") ? rec_get_str_or_null(r, "tx") : "";
    size_t tx_count = txs ? strlen(txs) / 2 : 0;
    if (!ret && (!txs || tx_count > SERIAL_FIFO_SIZE))
        ret = err_set(-EINVAL, "'tx' is not a string of at most the FIFO's size");
    if (!ret && tx_count)
        ret = rec_get_bytes(r, "tx", tx, tx_count);
    if (ret)
        return err_prefix(ret, "serial");
    pthread_mutex_lock(&s->lock);
    s->ier = regs[0] & IER_MASK, s->lcr = regs[1], s->mcr = regs[2] & MCR_MASK;
    s->lsr = regs[3], s->msr = regs[4];
    s->scr = regs[5], s->fcr = regs[6], s->dll = regs[7], s->dlm = regs[8];
    s->thre_pending = regs[9] != 0;
    s->irq_level = false;
    s->rx_head = 0;
    s->rx_count = (unsigned)count;
    /* The transmitter is empty unless bytes wait for this host. */
    memcpy(s->tx_fifo, tx, tx_count);
    s->tx_count = (unsigned)tx_count;
    s->tx_waiting = false;
    s->lsr |= LSR_THRE | LSR_TEMT;
    if (s->tx_count) {
        s->lsr &= (uint8_t)~(LSR_THRE | LSR_TEMT);
        tx_flush(s);
    }
    bool level = regs[10] != 0;
    pthread_mutex_unlock(&s->lock);
    if (level) { /* the line was up: raise it again in the new interrupt controller */
        s->irq_level = true;
        irq_line_set(&s->irq, true);
    }
    return 0;
}

/* --- on the board --------------------------------------------------------- */

static void serial_device_destroy(void *dev)
{
    serial_destroy(dev);
    free(dev);
}

static void serial_device_save(void *dev, struct rec r)
{
    serial_save(dev, r);
}

static int serial_device_load(void *dev, struct rec r)
{
    return serial_load(dev, r);
}

static size_t serial_counters(void *dev, struct device_counter *out)
{
    struct serial *s = dev;
    pthread_mutex_lock(&s->lock);
    out[0] = (struct device_counter){"write_count", s->bytes_out};
    out[1] = (struct device_counter){"read_count", s->bytes_in};
    out[2] = (struct device_counter){"rate_limiter_dropped_bytes", s->limit_dropped};
    pthread_mutex_unlock(&s->lock);
    return 3;
}

void serial_dump(struct serial *s)
{
    pthread_mutex_lock(&s->lock);
    log_warn("serial: LSR 0x%02x IER 0x%02x IIR-THRE %s, %u byte(s) held%s, %llu out, %llu dropped",
             s->lsr, s->ier, s->thre_pending ? "pending" : "no", s->tx_count,
             s->tx_waiting ? " waiting for the host" : "", (unsigned long long)s->bytes_out,
             (unsigned long long)(s->tx_dropped + s->limit_dropped));
    pthread_mutex_unlock(&s->lock);
}

static void serial_device_dump(void *dev)
{
    serial_dump(dev);
}

static const struct device_ops serial_device_ops = {
    .destroy = serial_device_destroy,
    .dump = serial_device_dump,
    .save = serial_device_save,
    .load = serial_device_load,
    .counters = serial_counters,
};

static size_t serial_console_input(void *dev, const uint8_t *buf, size_t len)
{
    return serial_receive(dev, buf, len);
}

int serial_board_setup(struct board *b)
{
    struct serial *s = calloc(1, sizeof(*s));
    if (!s)
        return err_set(-ENOMEM, "out of memory");
    serial_init(s, board_irq(b, IRQ_COM1), b->serial_out.ops ? &b->serial_out : &b->console);
    serial_set_rate_limit(s, &b->cfg->serial_limit, NULL);
    struct device *d = board_add(b, &serial_device_ops, s, "serial");
    if (!d)
        return -ENOSPC;
    snprintf(d->metrics, sizeof(d->metrics), "uart"); /* Firecracker's name */
    const struct acpi_device acpi = {
        .name = "COM1", .hid = "PNP0501", .uid = 1,
        .io = {{PORT_COM1, SERIAL_REG_COUNT}}, .nr_io = 1, .irq = IRQ_COM1};
    int ret = bus_register(b->pio, PORT_COM1, SERIAL_REG_COUNT, &serial_bus_ops, s, "com1");
    /* A byte to send (or DLL): the guest learns what became of it only by
     * reading LSR or IIR, or from the interrupt a real UART also raises
     * some time later. Linux's console polls LSR before each byte, so the
     * bytes go out one read later, at half the trips to ember. */
    board_post_writes(b, PORT_COM1 + REG_RBR_THR, 1);
    if (!ret)
        ret = board_describe(b, &acpi);
    if (!ret && b->cfg->console == CONSOLE_SERIAL)
        board_take_console(b, serial_console_input, s);
    return ret;
}
