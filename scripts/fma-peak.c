// The machine's fp32 FMA peak, the ceiling docs/PERFORMANCE.md measures the matrix multiplies
// against: each thread runs 12 independent chains of 512-bit (or, with -DWIDTH=256, 256-bit)
// fused multiply-adds, enough to cover the FMA latency on current x86 cores.
//
//   clang -O2 -mavx512f -mfma -pthread -o /tmp/fma-peak scripts/fma-peak.c && /tmp/fma-peak 2
//   clang -O2 -mavx2 -mfma -DWIDTH=256 -pthread -o /tmp/fma-peak256 scripts/fma-peak.c && /tmp/fma-peak256 2
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#ifndef WIDTH
#define WIDTH 512
#endif
#if WIDTH == 512
typedef __m512 vec;
#define LANES 16
#define SET1 _mm512_set1_ps
#define FMA _mm512_fmadd_ps
#define FIRST(v) _mm512_cvtss_f32(v)
#else
typedef __m256 vec;
#define LANES 8
#define SET1 _mm256_set1_ps
#define FMA _mm256_fmadd_ps
#define FIRST(v) _mm256_cvtss_f32(v)
#endif
#define CHAINS 12
static const long steps = 200000000L;

static void *chains(void *result) {
    vec acc[CHAINS];
    const vec scale = SET1(1.0000001f), offset = SET1(1e-7f);
    for (int i = 0; i < CHAINS; ++i) acc[i] = SET1((float)i);
    for (long s = 0; s < steps; ++s)
        for (int i = 0; i < CHAINS; ++i) acc[i] = FMA(acc[i], scale, offset);
    float sum = 0;
    for (int i = 0; i < CHAINS; ++i) sum += FIRST(acc[i]);
    *(float *)result = sum;   // used, so the loop is not optimised away
    return NULL;
}

int main(int argc, char **argv) {
    const int threads = argc > 1 ? atoi(argv[1]) : 1;
    if (threads < 1 || threads > 256) { fprintf(stderr, "usage: fma-peak [threads]\n"); return 64; }
    pthread_t ids[256];
    float results[256];
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (int t = 0; t < threads; ++t) pthread_create(&ids[t], NULL, chains, &results[t]);
    for (int t = 0; t < threads; ++t) pthread_join(ids[t], NULL);
    clock_gettime(CLOCK_MONOTONIC, &end);
    const double seconds = (end.tv_sec - start.tv_sec) + 1e-9 * (end.tv_nsec - start.tv_nsec);
    printf("%d threads, %d-bit FMA: %.1f GFLOP/s (fp32)\n", threads, WIDTH,
           2.0 * LANES * CHAINS * steps * threads / seconds / 1e9);
    return 0;
}
