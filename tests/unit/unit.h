/* What every unit test includes: cmocka and the C headers it needs first. */
#ifndef EMBER_TESTS_UNIT_H
#define EMBER_TESTS_UNIT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#endif
