// The git commit the binary was built from. `make build` writes commit.h beside this file
// (`#define DERIV8_COMMIT "abc1234"`, not tracked by git); a build without it says "unknown".
#if __has_include("commit.h")
#include "commit.h"
#endif
#ifndef DERIV8_COMMIT
#define DERIV8_COMMIT "unknown"
#endif

static inline const char *deriv8_commit(void) { return DERIV8_COMMIT; }
