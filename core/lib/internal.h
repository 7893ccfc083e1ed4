/* libferry internals shared between the library's files; not installed.
 * What the programs may use too is declared in core/app/private.h. */
#ifndef FERRY_INTERNAL_H
#define FERRY_INTERNAL_H

#include "../app/private.h"

#endif
