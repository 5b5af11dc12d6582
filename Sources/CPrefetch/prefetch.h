// Asks the CPU to start loading the cache line holding `address` (for reading, into all cache
// levels). A hint only: it never faults, so an address past an array's end is harmless.
static inline void prefetch_line(const void *address) { __builtin_prefetch(address, 0, 3); }
