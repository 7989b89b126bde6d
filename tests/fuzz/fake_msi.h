/* MSI for fuzz targets that drive a virtio transport: vectors are handed
 * out and recorded, never delivered; a vector the transport never
 * allocated aborts. Included by one file per target. */
#ifndef EMBER_TESTS_FUZZ_FAKE_MSI_H
#define EMBER_TESTS_FUZZ_FAKE_MSI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

static unsigned msi_handles;
static int fp_alloc(void *ctx, int *h)
{
    (void)ctx;
    *h = (int)msi_handles++;
    return 0;
}
static int fp_set(void *ctx, int h, uint64_t addr, uint32_t data, bool enabled)
{
    (void)ctx, (void)addr, (void)data, (void)enabled;
    if (h < 0 || (unsigned)h >= msi_handles)
        abort(); /* a vector the transport never allocated */
    return 0;
}
static void fp_fire(void *ctx, int h)
{
    (void)ctx;
    if (h < 0 || (unsigned)h >= msi_handles)
        abort();
}
static const struct msi_ops fp_msi = {fp_alloc, fp_set, fp_fire, NULL};

#endif
