/*
 * Helpers shared by the C ABI tests (C99 and C++17): the CHECK macros and the reference inputs
 * of METHOD.md section 2. Functions are static inline because each test uses a subset.
 */
#ifndef NPMK_TEST_COMMON_H
#define NPMK_TEST_COMMON_H

#include "npmk.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures = 0;

#define CHECK(cond, ...)                                                                   \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "%s:%d: CHECK(%s) failed: ", __FILE__, __LINE__, #cond);       \
            fprintf(stderr, __VA_ARGS__);                                                  \
            fputc('\n', stderr);                                                           \
            failures++;                                                                    \
        }                                                                                  \
    } while (0)

/* A call that must succeed. */
#define OK(call)                                                                           \
    do {                                                                                   \
        int32_t ok_rc_ = (call);                                                           \
        CHECK(ok_rc_ == NPMK_OK, "%s returned %s: %s", #call, npmk_status_name(ok_rc_),     \
              npmk_last_error_message());                                                  \
    } while (0)

/* A call that must fail with `code` and leave a non-empty message naming the function. */
#define FAILS(code, fn, call)                                                              \
    do {                                                                                   \
        int32_t fails_rc_ = (call);                                                        \
        const char *fails_msg_ = npmk_last_error_message();                                \
        CHECK(fails_rc_ == (code), "%s returned %s, want %s (%s)", #call,                  \
              npmk_status_name(fails_rc_), npmk_status_name(code), fails_msg_);            \
        CHECK(fails_msg_ != NULL && strstr(fails_msg_, fn) == fails_msg_ &&                \
                  strlen(fails_msg_) > strlen(fn) + 4,                                     \
              "%s: message \"%s\" does not start with %s", #call,                          \
              fails_msg_ ? fails_msg_ : "(null)", fn);                                     \
    } while (0)

#define REF_N 1000000

/* ---- Reference inputs (METHOD.md section 2) ---------------------------------------------- */

/* x > 0 with P(Z > x) = q for a standard normal Z, q in (0, 0.5]: a rational first guess
 * (Abramowitz and Stegun 26.2.23) refined by Newton steps on erfc. */
static inline double upper_normal_quantile(double q) {
    double t = sqrt(-2.0 * log(q));
    double x = t - (2.515517 + 0.802853 * t + 0.010328 * t * t) /
                       (1.0 + 1.432788 * t + 0.189269 * t * t + 0.001308 * t * t * t);
    int it;
    for (it = 0; it < 6; it++) {
        double tail = 0.5 * erfc(x / sqrt(2.0));
        double pdf = exp(-0.5 * x * x) / sqrt(2.0 * 3.14159265358979323846);
        x += (tail - q) / pdf;
    }
    return x;
}

/* w_i = 0.02 PhiInv((1 + F_i) / 2), F_i = (i - 0.5) / n, i = 1..n; signs alternate (the sketch
 * sees |w|). The upper tail (1 - F_i) / 2 is formed directly, without cancellation. */
static inline double *half_normal_reference(size_t n) {
    double *w = (double *)malloc(n * sizeof(double));
    size_t i;
    for (i = 1; i <= n; i++) {
        double q = ((double)(n - i) + 0.5) / (2.0 * (double)n);
        double x = q >= 0.5 ? 0.0 : upper_normal_quantile(q);
        w[i - 1] = (i % 2 ? -0.02 : 0.02) * x;
    }
    return w;
}

static inline uint32_t f32_bits(float f) {
    uint32_t b;
    memcpy(&b, &f, sizeof b);
    return b;
}

/* bf16 of an f32, round to nearest even (finite inputs). */
static inline uint16_t bf16_of_f32(float f) {
    uint32_t b = f32_bits(f);
    b += 0x7FFFu + ((b >> 16) & 1u);
    return (uint16_t)(b >> 16);
}

static inline double bf16_value(uint16_t code) {
    uint32_t b = (uint32_t)code << 16;
    float f;
    memcpy(&f, &b, sizeof f);
    return (double)f;
}

/* IEEE binary16 of a double, round to nearest even, subnormals included (|x| < 65504). */
static inline uint16_t f16_of_double(double x) {
    uint16_t sign = x < 0 ? 0x8000u : 0;
    double a = fabs(x);
    int e;
    double m, sig;
    if (a < ldexp(1.0, -14)) {
        /* Subnormal: multiples of 2^-24; rounding up to 1024 yields the smallest normal. */
        return (uint16_t)(sign | (uint16_t)nearbyint(ldexp(a, 24)));
    }
    m = frexp(a, &e);           /* a = m 2^e, m in [0.5, 1) */
    sig = nearbyint(ldexp(m, 11)); /* 11 significant bits, in [1024, 2048] */
    if (sig == 2048.0) {
        sig = 1024.0;
        e += 1;
    }
    return (uint16_t)(sign | (uint16_t)((e - 1 + 15) << 10) | (uint16_t)((int)sig - 1024));
}

/* Copies n elements of `size` bytes to an odd address inside a fresh buffer; returns the
 * buffer (to free) and the misaligned start in *start. */
static inline unsigned char *misaligned_copy(const void *src, size_t n, size_t size, void **start) {
    unsigned char *buf = (unsigned char *)malloc(n * size + 8);
    memcpy(buf + 3, src, n * size);
    *start = buf + 3;
    return buf;
}

/* A sketch of the reference input in `dtype`, pushed from a misaligned pointer in 3 pushes. */
static inline npmk_sketch *reference_sketch(const double *w, size_t n, int32_t dtype) {
    size_t size = dtype == NPMK_DTYPE_F32 ? 4 : 2;
    unsigned char *typed = (unsigned char *)malloc(n * size);
    npmk_sketch *s = NULL;
    unsigned char *buf;
    void *start;
    size_t i, cut1 = n / 3, cut2 = n / 3 + 12345;
    for (i = 0; i < n; i++) {
        if (dtype == NPMK_DTYPE_F32) {
            float f = (float)w[i];
            memcpy(typed + 4 * i, &f, 4);
        } else {
            uint16_t c = dtype == NPMK_DTYPE_BF16 ? bf16_of_f32((float)w[i]) : f16_of_double(w[i]);
            memcpy(typed + 2 * i, &c, 2);
        }
    }
    buf = misaligned_copy(typed, n, size, &start);
    OK(npmk_sketch_new(&s));
    OK(npmk_sketch_push(s, dtype, start, cut1));
    OK(npmk_sketch_push(s, dtype, (unsigned char *)start + cut1 * size, cut2 - cut1));
    OK(npmk_sketch_push(s, dtype, (unsigned char *)start + cut2 * size, n - cut2));
    free(buf);
    free(typed);
    return s;
}

static inline int same_bits(double a, double b) {
    return memcmp(&a, &b, sizeof a) == 0;
}

static inline int same_fit(const npmk_fit *a, const npmk_fit *b) {
    return same_bits(a->k, b->k) && same_bits(a->lambda, b->lambda) && same_bits(a->r2, b->r2) &&
           same_bits(a->ks, b->ks) && a->n_used == b->n_used && a->n_usable == b->n_usable;
}

static inline int same_state(npmk_sketch *a, npmk_sketch *b) {
    uint64_t *wa = NULL, *wb = NULL;
    size_t na = 0, nb = 0;
    OK(npmk_sketch_state(a, &wa, &na));
    OK(npmk_sketch_state(b, &wb, &nb));
    return wa && wb && na == NPMK_STATE_WORDS && nb == na &&
           memcmp(wa, wb, na * sizeof(uint64_t)) == 0;
}

#endif /* NPMK_TEST_COMMON_H */
