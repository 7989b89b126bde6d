#include "bus/pci/msix.h"

#include <string.h>

#include "util/log.h"
#include "util/util.h"

#define MSIX_CTRL_ENABLE 0x8000
#define MSIX_CTRL_FUNCTION_MASK 0x4000
#define MSIX_VECTOR_MASKED 0x1

static bool vector_deliverable(const struct msix *m, unsigned v)
{
    return m->enabled && !m->function_masked && !(m->table[v].ctrl & MSIX_VECTOR_MASKED);
}

static void msix_program(struct msix *m, unsigned v)
{
    const struct msix_entry *e = &m->table[v];
    uint64_t address = (uint64_t)e->addr_hi << 32 | e->addr_lo;
    if (m->ops->set(m->ops_ctx, m->handles[v], address, e->data, vector_deliverable(m, v)))
        log_guest("%s: cannot program MSI-X vector %u: %s", m->dev->name, v, err_msg());
}

/* A vector that became deliverable gets its pending message now. */
static void msix_refresh(struct msix *m, unsigned v)
{
    msix_program(m, v);
    if (vector_deliverable(m, v) && (m->pending & (1ull << v))) {
        m->pending &= ~(1ull << v);
        m->ops->fire(m->ops_ctx, m->handles[v]);
    }
}

int msix_init(struct msix *m, struct pci_device *dev, unsigned nr_vectors, unsigned bar,
              uint32_t table_offset, uint32_t pba_offset, const struct msi_ops *ops,
              void *ops_ctx)
{
    memset(m, 0, sizeof(*m));
    if (nr_vectors == 0 || nr_vectors > MSIX_MAX_VECTORS)
        return err_set(-EINVAL, "%s: %u MSI-X vectors", dev->name, nr_vectors);
    m->dev = dev;
    m->nr_vectors = nr_vectors;
    m->ops = ops;
    m->ops_ctx = ops_ctx;
    for (unsigned v = 0; v < MSIX_MAX_VECTORS; v++)
        m->handles[v] = -1;
    uint8_t body[10];
    le16_store(body, (uint16_t)(nr_vectors - 1));
    le32_store(body + 2, table_offset | bar);
    le32_store(body + 6, pba_offset | bar);
    int cap = pci_device_add_capability(dev, PCI_CAP_ID_MSIX, body, sizeof(body));
    if (cap < 0)
        return cap;
    m->cap = (uint8_t)cap;
    dev->wmask[cap + 3] = (MSIX_CTRL_ENABLE | MSIX_CTRL_FUNCTION_MASK) >> 8;
    for (unsigned v = 0; v < nr_vectors; v++) {
        int ret = ops->alloc(ops_ctx, &m->handles[v]);
        if (ret)
            return ret;
        m->table[v].ctrl = MSIX_VECTOR_MASKED;
    }
    return 0;
}

void msix_destroy(struct msix *m)
{
    for (unsigned v = 0; v < m->nr_vectors; v++)
        if (m->handles[v] >= 0 && m->ops->release)
            m->ops->release(m->ops_ctx, m->handles[v]);
}

bool msix_is_enabled(const struct msix *m)
{
    return m->enabled;
}

void msix_config_written(struct msix *m)
{
    uint16_t ctrl = le16_load(m->dev->config + m->cap + 2);
    bool enabled = ctrl & MSIX_CTRL_ENABLE, masked = ctrl & MSIX_CTRL_FUNCTION_MASK;
    if (enabled == m->enabled && masked == m->function_masked)
        return;
    m->enabled = enabled;
    m->function_masked = masked;
    for (unsigned v = 0; v < m->nr_vectors; v++)
        msix_refresh(m, v);
}

/* Entries are accessed as dwords (or a qword over two); anything else is
 * ignored, as the PCI spec allows. */
void msix_table_read(struct msix *m, uint64_t offset, void *data, unsigned len)
{
    uint64_t end = (uint64_t)m->nr_vectors * MSIX_ENTRY_SIZE;
    memset(data, 0xff, len);
    if ((len != 4 && len != 8) || (offset & 3) || offset + len > end)
        return;
    for (unsigned i = 0; i < len; i += 4) {
        const struct msix_entry *e = &m->table[(offset + i) / MSIX_ENTRY_SIZE];
        const uint32_t words[4] = {e->addr_lo, e->addr_hi, e->data, e->ctrl};
        le32_store((uint8_t *)data + i, words[((offset + i) % MSIX_ENTRY_SIZE) / 4]);
    }
}

void msix_table_write(struct msix *m, uint64_t offset, const void *data, unsigned len)
{
    uint64_t end = (uint64_t)m->nr_vectors * MSIX_ENTRY_SIZE;
    if ((len != 4 && len != 8) || (offset & 3) || offset + len > end)
        return;
    for (unsigned i = 0; i < len; i += 4) {
        unsigned v = (unsigned)((offset + i) / MSIX_ENTRY_SIZE);
        struct msix_entry *e = &m->table[v];
        uint32_t value = le32_load((const uint8_t *)data + i);
        switch (((offset + i) % MSIX_ENTRY_SIZE) / 4) {
        case 0: e->addr_lo = value; break;
        case 1: e->addr_hi = value; break;
        case 2: e->data = value; break;
        default: e->ctrl = value & MSIX_VECTOR_MASKED; break;
        }
        msix_refresh(m, v);
    }
}

void msix_pba_read(struct msix *m, uint64_t offset, void *data, unsigned len)
{
    uint8_t pba[8];
    le64_store(pba, m->pending);
    memset(data, 0, len);
    if (offset < sizeof(pba))
        memcpy(data, pba + offset, MIN(len, sizeof(pba) - offset));
}

bool msix_notify(struct msix *m, unsigned vector)
{
    if (vector >= m->nr_vectors)
        return false;
    if (vector_deliverable(m, vector))
        m->ops->fire(m->ops_ctx, m->handles[vector]);
    else
        m->pending |= 1ull << vector;
    return true;
}

void msix_save(const struct msix *m, struct rec r)
{
    uint8_t table[MSIX_MAX_VECTORS * MSIX_ENTRY_SIZE];
    for (unsigned v = 0; v < m->nr_vectors; v++) {
        le32_store(table + v * MSIX_ENTRY_SIZE, m->table[v].addr_lo);
        le32_store(table + v * MSIX_ENTRY_SIZE + 4, m->table[v].addr_hi);
        le32_store(table + v * MSIX_ENTRY_SIZE + 8, m->table[v].data);
        le32_store(table + v * MSIX_ENTRY_SIZE + 12, m->table[v].ctrl);
    }
    rec_put_bytes(r, "table", table, m->nr_vectors * MSIX_ENTRY_SIZE);
    rec_put_u64(r, "pending", m->pending);
    rec_put_bool(r, "enabled", m->enabled);
    rec_put_bool(r, "function_masked", m->function_masked);
}

int msix_load(struct msix *m, struct rec r)
{
    uint8_t table[MSIX_MAX_VECTORS * MSIX_ENTRY_SIZE];
    uint64_t pending;
    bool enabled, masked;
    uint64_t all = m->nr_vectors == 64 ? UINT64_MAX : (1ull << m->nr_vectors) - 1;
    int ret = rec_get_bytes(r, "table", table, m->nr_vectors * MSIX_ENTRY_SIZE);
    if (!ret)
        ret = rec_get_u64(r, "pending", all, &pending);
    if (!ret)
        ret = rec_get_bool(r, "enabled", &enabled);
    if (!ret)
        ret = rec_get_bool(r, "function_masked", &masked);
    if (ret)
        return err_prefix(ret, "%s: MSI-X", m->dev->name);
    for (unsigned v = 0; v < m->nr_vectors; v++) {
        m->table[v].addr_lo = le32_load(table + v * MSIX_ENTRY_SIZE);
        m->table[v].addr_hi = le32_load(table + v * MSIX_ENTRY_SIZE + 4);
        m->table[v].data = le32_load(table + v * MSIX_ENTRY_SIZE + 8);
        m->table[v].ctrl = le32_load(table + v * MSIX_ENTRY_SIZE + 12) & MSIX_VECTOR_MASKED;
    }
    m->pending = pending;
    m->enabled = enabled;
    m->function_masked = masked;
    for (unsigned v = 0; v < m->nr_vectors; v++)
        msix_program(m, v);
    return 0;
}
