// Asks the CPU to start loading the cache line holding `address` (for reading, into all cache
// levels). A hint only: it never faults, so an address past an array's end is harmless.
static inline void prefetch_line(const void *address) { __builtin_prefetch(address, 0, 3); }

// Tells the CPU this thread is spinning on a flag, so it yields pipeline resources to the
// other hyper-thread and saves power (x86 `pause`; nothing elsewhere).
static inline void spin_pause(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}
