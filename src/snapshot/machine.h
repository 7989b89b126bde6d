/* The machine a snapshot was taken of (the part of vm_config that shapes
 * the VM: vCPUs, memory, devices and their backends), as a record. */
#ifndef EMBER_SNAPSHOT_MACHINE_H
#define EMBER_SNAPSHOT_MACHINE_H

#include "snapshot/record.h"
#include "config/config.h"
#include "config/cpu_template.h"

void machine_save(const struct vm_config *cfg, struct rec r);
/* Strings in 'cfg' point into 'r', its CPU template (if the machine had
 * one) into 'template'. Every count and size is range-checked. */
int machine_load(struct rec r, struct vm_config *cfg, struct cpu_template *template)
    EMBER_MUST_CHECK;

#endif
