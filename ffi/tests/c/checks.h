/*
 * The C ABI checks shared by the C (test_api.c, C99) and C++ (test_api.cpp, C++17) tests.
 * Written in the common subset of both languages. Every check can fail; failures are counted
 * and printed with the library's message.
 */
#ifndef NPMK_TEST_CHECKS_H
#define NPMK_TEST_CHECKS_H

#include "common.h"

/* ---- Checks ------------------------------------------------------------------------------ */

static void check_version(void) {
    char built[64];
    snprintf(built, sizeof built, "%d.%d.%d", NPMK_VERSION_MAJOR, NPMK_VERSION_MINOR,
             NPMK_VERSION_PATCH);
    CHECK(npmk_version() != NULL && strcmp(npmk_version(), built) == 0,
          "npmk_version() = %s, header macros say %s", npmk_version(), built);
    CHECK(strcmp(NPMK_VERSION_STRING, built) == 0, "NPMK_VERSION_STRING = %s", NPMK_VERSION_STRING);
    /* The header's code values and the library's agree, name by name. */
    {
        static const int32_t codes[10] = {
            NPMK_OK, NPMK_ERR_NULL_ARGUMENT, NPMK_ERR_INVALID_ARGUMENT,
            NPMK_ERR_UNSUPPORTED_DTYPE, NPMK_ERR_IO, NPMK_ERR_BAD_FORMAT,
            NPMK_ERR_INSUFFICIENT_DATA, NPMK_ERR_PANIC, NPMK_ERR_BUFFER_TOO_SMALL,
            NPMK_ERR_CALL_ORDER};
        static const char *names[10] = {
            "NPMK_OK", "NPMK_ERR_NULL_ARGUMENT", "NPMK_ERR_INVALID_ARGUMENT",
            "NPMK_ERR_UNSUPPORTED_DTYPE", "NPMK_ERR_IO", "NPMK_ERR_BAD_FORMAT",
            "NPMK_ERR_INSUFFICIENT_DATA", "NPMK_ERR_PANIC", "NPMK_ERR_BUFFER_TOO_SMALL",
            "NPMK_ERR_CALL_ORDER"};
        int c;
        for (c = 0; c < 10; c++) {
            CHECK(strcmp(npmk_status_name(codes[c]), names[c]) == 0, "code %d is named %s, want %s",
                  (int)codes[c], npmk_status_name(codes[c]), names[c]);
        }
    }
    CHECK(strcmp(npmk_status_name(1000), "NPMK_ERR_UNKNOWN") == 0, "%s", npmk_status_name(1000));
}

/* METHOD.md section 2 through every dtype, from misaligned pointers. */
static void check_reference_values(const double *w) {
    static const double lo[3] = {NPMK_TRIM_MID80_LO, NPMK_TRIM_MID90_LO, NPMK_TRIM_FULL_LO};
    static const double hi[3] = {NPMK_TRIM_MID80_HI, NPMK_TRIM_MID90_HI, NPMK_TRIM_FULL_HI};
    static const double k_ref[3] = {1.205434, 1.190923, 1.151068};
    static const double lambda_ref[3] = {0.887487, 0.880888, 0.874835};
    npmk_sketch *s;
    npmk_fit fit;
    npmk_counts counts;
    double q;
    int t;

    s = reference_sketch(w, REF_N, NPMK_DTYPE_F32);
    for (t = 0; t < 3; t++) {
        OK(npmk_sketch_fit(s, lo[t], hi[t], &fit));
        CHECK(fabs(fit.k - k_ref[t]) < 2e-6, "f32 trim %d: k = %.7f, want %.6f", t, fit.k,
              k_ref[t]);
        CHECK(fabs(fit.lambda / 0.02 - lambda_ref[t]) < 2e-6, "f32 trim %d: lambda = %.9f", t,
              fit.lambda);
        CHECK(fit.r2 > 0.99 && fit.r2 <= 1.0 && fit.ks > 0.0 && fit.ks < 0.1, "r2 %g ks %g",
              fit.r2, fit.ks);
        CHECK(fit.n_usable == REF_N, "n_usable %llu", (unsigned long long)fit.n_usable);
    }
    OK(npmk_sketch_fit(s, NPMK_TRIM_MID80_LO, NPMK_TRIM_MID80_HI, &fit));
    CHECK(fit.n_used == 800000, "mid-80 n_used = %llu", (unsigned long long)fit.n_used);
    OK(npmk_sketch_counts(s, &counts));
    CHECK(counts.total == REF_N && counts.usable == REF_N && counts.zero == 0,
          "f32 counts %llu %llu", (unsigned long long)counts.total,
          (unsigned long long)counts.usable);
    /* The median of |w| is 0.02 * 0.6744898 to within one bin (relative width <= 2^-8). */
    OK(npmk_sketch_quantile(s, 0.5, &q));
    CHECK(fabs(q / (0.02 * 0.6744897501960817) - 1.0) < 1.0 / 256, "f32 median %.9g", q);
    npmk_sketch_free(s);

    s = reference_sketch(w, REF_N, NPMK_DTYPE_F16);
    OK(npmk_sketch_fit(s, NPMK_TRIM_MID80_LO, NPMK_TRIM_MID80_HI, &fit));
    CHECK(fabs(fit.k - 1.205434) < 1e-4, "f16 mid-80 k = %.7f", fit.k);
    npmk_sketch_free(s);

    s = reference_sketch(w, REF_N, NPMK_DTYPE_BF16);
    OK(npmk_sketch_fit(s, NPMK_TRIM_MID80_LO, NPMK_TRIM_MID80_HI, &fit));
    CHECK(fabs(fit.k - 1.205427) < 2e-6, "bf16 mid-80 k = %.7f, want 1.205427", fit.k);
    /* bf16 sketches are exact: the median is the bf16 magnitude at rank n/2 itself (|w| grows
     * with i). */
    OK(npmk_sketch_quantile(s, 0.5, &q));
    CHECK(q == fabs(bf16_value(bf16_of_f32((float)w[REF_N / 2 - 1]))), "bf16 median %.9g", q);
    npmk_sketch_free(s);
}

/* Merging shard sketches, and summing their state arrays, both give the one-sketch result. */
static void check_merge_and_state_sum(const double *w) {
    enum { SHARDS = 4 };
    npmk_sketch *whole = reference_sketch(w, REF_N, NPMK_DTYPE_F32);
    npmk_sketch *shard[SHARDS], *merged = NULL, *summed = NULL, *from = NULL, *copy = NULL;
    npmk_fit f_whole, f_other;
    uint64_t *sum_words = NULL, *words = NULL;
    size_t n_words = 0, i, j, begin;
    unsigned char *buf;
    void *start;
    int k;

    OK(npmk_sketch_fit(whole, NPMK_TRIM_MID80_LO, NPMK_TRIM_MID80_HI, &f_whole));
    OK(npmk_sketch_new(&merged));
    OK(npmk_sketch_new(&summed));
    OK(npmk_sketch_state(summed, &sum_words, &n_words));
    CHECK(n_words == NPMK_STATE_WORDS, "n_words = %zu", n_words);
    for (k = 0, begin = 0; k < SHARDS; k++) {
        size_t end = (size_t)REF_N * (size_t)(k + 1) / SHARDS;
        shard[k] = reference_sketch(w + begin, end - begin, NPMK_DTYPE_F32);
        begin = end;
        OK(npmk_sketch_merge(merged, shard[k]));
        /* In place, as an all-reduce would. */
        OK(npmk_sketch_state(shard[k], &words, &n_words));
        for (i = 0; i < NPMK_STATE_WORDS; i++) {
            sum_words[i] += words[i];
        }
    }
    CHECK(same_state(whole, merged), "merged state differs from the single sketch");
    CHECK(same_state(whole, summed), "summed state differs from the single sketch");
    OK(npmk_sketch_fit(merged, NPMK_TRIM_MID80_LO, NPMK_TRIM_MID80_HI, &f_other));
    CHECK(same_fit(&f_whole, &f_other), "merged fit k %.17g vs %.17g", f_other.k, f_whole.k);
    OK(npmk_sketch_fit(summed, NPMK_TRIM_MID80_LO, NPMK_TRIM_MID80_HI, &f_other));
    CHECK(same_fit(&f_whole, &f_other), "summed fit k %.17g vs %.17g", f_other.k, f_whole.k);

    /* from_state copies from any alignment. */
    buf = misaligned_copy(sum_words, NPMK_STATE_WORDS, sizeof(uint64_t), &start);
    OK(npmk_sketch_from_state((const uint64_t *)start, NPMK_STATE_WORDS, &from));
    CHECK(from && same_state(whole, from), "from_state differs");
    free(buf);
    OK(npmk_sketch_clone(whole, &copy));
    CHECK(copy && same_state(whole, copy), "clone differs");

    /* Encode and decode; a short buffer and a flipped byte are refused. */
    {
        size_t len = 0, written = 0;
        uint8_t *bytes;
        npmk_sketch *decoded = NULL;
        OK(npmk_sketch_encoded_len(whole, &len));
        CHECK(len > 24 && len < (size_t)NPMK_STATE_WORDS * 8, "encoded len %zu", len);
        bytes = (uint8_t *)malloc(len);
        written = 777;
        FAILS(NPMK_ERR_BUFFER_TOO_SMALL, "npmk_sketch_encode",
              npmk_sketch_encode(whole, bytes, len - 1, &written));
        CHECK(written == 777, "len_out written on failure");
        OK(npmk_sketch_encode(whole, bytes, len, &written));
        CHECK(written == len, "written %zu of %zu", written, len);
        OK(npmk_sketch_decode(bytes, len, &decoded));
        CHECK(decoded && same_state(whole, decoded), "decoded state differs");
        npmk_sketch_free(decoded);
        decoded = NULL;
        bytes[len / 2] ^= 0x40;
        FAILS(NPMK_ERR_BAD_FORMAT, "npmk_sketch_decode", npmk_sketch_decode(bytes, len, &decoded));
        FAILS(NPMK_ERR_BAD_FORMAT, "npmk_sketch_decode", npmk_sketch_decode(bytes, 5, &decoded));
        CHECK(decoded == NULL, "decode wrote its out-parameter on failure");
        free(bytes);
    }

    /* Breaking the sum invariant through the state pointer is caught. */
    OK(npmk_sketch_state(copy, &words, &n_words));
    words[12345] += 1;
    FAILS(NPMK_ERR_BAD_FORMAT, "npmk_sketch_fit",
          npmk_sketch_fit(copy, NPMK_TRIM_MID80_LO, NPMK_TRIM_MID80_HI, &f_other));
    {
        npmk_sketch *bad = NULL;
        FAILS(NPMK_ERR_BAD_FORMAT, "npmk_sketch_from_state",
              npmk_sketch_from_state(words, NPMK_STATE_WORDS, &bad));
        CHECK(bad == NULL, "from_state wrote its out-parameter on failure");
    }
    /* Clearing restores a valid (empty) sketch. */
    OK(npmk_sketch_clear(copy));
    FAILS(NPMK_ERR_INSUFFICIENT_DATA, "npmk_sketch_fit",
          npmk_sketch_fit(copy, NPMK_TRIM_MID80_LO, NPMK_TRIM_MID80_HI, &f_other));

    for (j = 0; j < SHARDS; j++) {
        npmk_sketch_free(shard[j]);
    }
    npmk_sketch_free(whole);
    npmk_sketch_free(merged);
    npmk_sketch_free(summed);
    npmk_sketch_free(from);
    npmk_sketch_free(copy);
}

/* Special values are counted apart and never reach a fit. */
static void check_counts(void) {
    npmk_sketch *s = NULL;
    npmk_counts c;
    float v[7];
    uint32_t bits[7] = {0x00000000u, 0x80000000u, 0x7FC00000u, 0x7F800000u,
                        0xFF800000u, 0x00000001u, 0x3F800000u};
    memcpy(v, bits, sizeof v);
    OK(npmk_sketch_new(&s));
    OK(npmk_sketch_push(s, NPMK_DTYPE_F32, v, 7));
    OK(npmk_sketch_push(s, NPMK_DTYPE_F32, NULL, 0));
    OK(npmk_sketch_counts(s, &c));
    CHECK(c.total == 7 && c.zero == 2 && c.nan == 1 && c.pos_inf == 1 && c.neg_inf == 1 &&
              c.usable == 2 && c.subnormal == 1,
          "counts total %llu zero %llu nan %llu usable %llu", (unsigned long long)c.total,
          (unsigned long long)c.zero, (unsigned long long)c.nan, (unsigned long long)c.usable);
    npmk_sketch_free(s);
}

/* Every NULL and invalid argument returns its documented code, a message, and leaves the
 * out-parameters alone. */
static void check_bad_arguments(void) {
    npmk_sketch *s = NULL, *other = NULL, *sentinel = (npmk_sketch *)&failures;
    npmk_fit fit;
    npmk_counts counts;
    double q = 42.0;
    float one = 1.0f;
    uint64_t *words = NULL;
    size_t n_words = 99, len = 99;
    uint8_t byte = 0;

    OK(npmk_sketch_new(&s));
    OK(npmk_sketch_new(&other));
    memset(&fit, 0x5A, sizeof fit);

    FAILS(NPMK_ERR_NULL_ARGUMENT, "npmk_sketch_new", npmk_sketch_new(NULL));
    FAILS(NPMK_ERR_NULL_ARGUMENT, "npmk_sketch_clear", npmk_sketch_clear(NULL));
    FAILS(NPMK_ERR_NULL_ARGUMENT, "npmk_sketch_push",
          npmk_sketch_push(NULL, NPMK_DTYPE_F32, &one, 1));
    FAILS(NPMK_ERR_NULL_ARGUMENT, "npmk_sketch_push", npmk_sketch_push(s, NPMK_DTYPE_F32, NULL, 1));
    FAILS(NPMK_ERR_UNSUPPORTED_DTYPE, "npmk_sketch_push", npmk_sketch_push(s, 0, &one, 1));
    FAILS(NPMK_ERR_UNSUPPORTED_DTYPE, "npmk_sketch_push", npmk_sketch_push(s, 4, &one, 1));
    FAILS(NPMK_ERR_INVALID_ARGUMENT, "npmk_sketch_push",
          npmk_sketch_push(s, NPMK_DTYPE_F32, &one, SIZE_MAX / 2));
    FAILS(NPMK_ERR_NULL_ARGUMENT, "npmk_sketch_merge", npmk_sketch_merge(NULL, s));
    FAILS(NPMK_ERR_NULL_ARGUMENT, "npmk_sketch_merge", npmk_sketch_merge(s, NULL));
    FAILS(NPMK_ERR_INVALID_ARGUMENT, "npmk_sketch_merge", npmk_sketch_merge(s, s));
    FAILS(NPMK_ERR_NULL_ARGUMENT, "npmk_sketch_fit", npmk_sketch_fit(NULL, 0.1, 0.9, &fit));
    FAILS(NPMK_ERR_NULL_ARGUMENT, "npmk_sketch_fit", npmk_sketch_fit(s, 0.1, 0.9, NULL));
    FAILS(NPMK_ERR_INVALID_ARGUMENT, "npmk_sketch_fit", npmk_sketch_fit(s, 0.9, 0.1, &fit));
    FAILS(NPMK_ERR_INVALID_ARGUMENT, "npmk_sketch_fit", npmk_sketch_fit(s, -0.1, 0.9, &fit));
    FAILS(NPMK_ERR_INVALID_ARGUMENT, "npmk_sketch_fit", npmk_sketch_fit(s, 0.1, 1.5, &fit));
    FAILS(NPMK_ERR_INVALID_ARGUMENT, "npmk_sketch_fit", npmk_sketch_fit(s, NAN, 0.9, &fit));
    FAILS(NPMK_ERR_INSUFFICIENT_DATA, "npmk_sketch_fit", npmk_sketch_fit(s, 0.1, 0.9, &fit));
    OK(npmk_sketch_push(s, NPMK_DTYPE_F32, &one, 1));
    FAILS(NPMK_ERR_INSUFFICIENT_DATA, "npmk_sketch_fit", npmk_sketch_fit(s, 0.1, 0.9, &fit));
    {
        /* 200 copies of one value: enough elements, one distinct value. */
        float same[200];
        int i;
        for (i = 0; i < 200; i++) {
            same[i] = 0.5f;
        }
        OK(npmk_sketch_push(other, NPMK_DTYPE_F32, same, 200));
        FAILS(NPMK_ERR_INSUFFICIENT_DATA, "npmk_sketch_fit",
              npmk_sketch_fit(other, 0.1, 0.9, &fit));
        OK(npmk_sketch_clear(other));
    }
    CHECK(fit.n_used == 0x5A5A5A5A5A5A5A5Aull, "fit written on failure");
    FAILS(NPMK_ERR_NULL_ARGUMENT, "npmk_sketch_quantile", npmk_sketch_quantile(NULL, 0.5, &q));
    FAILS(NPMK_ERR_NULL_ARGUMENT, "npmk_sketch_quantile", npmk_sketch_quantile(s, 0.5, NULL));
    FAILS(NPMK_ERR_INVALID_ARGUMENT, "npmk_sketch_quantile", npmk_sketch_quantile(s, 1.5, &q));
    FAILS(NPMK_ERR_INVALID_ARGUMENT, "npmk_sketch_quantile", npmk_sketch_quantile(s, NAN, &q));
    FAILS(NPMK_ERR_INSUFFICIENT_DATA, "npmk_sketch_quantile",
          npmk_sketch_quantile(other, 0.5, &q));
    CHECK(q == 42.0, "quantile written on failure");
    FAILS(NPMK_ERR_NULL_ARGUMENT, "npmk_sketch_counts", npmk_sketch_counts(NULL, &counts));
    FAILS(NPMK_ERR_NULL_ARGUMENT, "npmk_sketch_counts", npmk_sketch_counts(s, NULL));
    FAILS(NPMK_ERR_NULL_ARGUMENT, "npmk_sketch_state", npmk_sketch_state(NULL, &words, &n_words));
    FAILS(NPMK_ERR_NULL_ARGUMENT, "npmk_sketch_state", npmk_sketch_state(s, NULL, &n_words));
    FAILS(NPMK_ERR_NULL_ARGUMENT, "npmk_sketch_state", npmk_sketch_state(s, &words, NULL));
    CHECK(words == NULL && n_words == 99, "state out-parameters written on failure");
    FAILS(NPMK_ERR_NULL_ARGUMENT, "npmk_sketch_from_state",
          npmk_sketch_from_state(NULL, NPMK_STATE_WORDS, &sentinel));
    OK(npmk_sketch_state(other, &words, &n_words));
    FAILS(NPMK_ERR_NULL_ARGUMENT, "npmk_sketch_from_state",
          npmk_sketch_from_state(words, NPMK_STATE_WORDS, NULL));
    FAILS(NPMK_ERR_INVALID_ARGUMENT, "npmk_sketch_from_state",
          npmk_sketch_from_state(words, NPMK_STATE_WORDS - 1, &sentinel));
    FAILS(NPMK_ERR_NULL_ARGUMENT, "npmk_sketch_clone", npmk_sketch_clone(NULL, &sentinel));
    FAILS(NPMK_ERR_NULL_ARGUMENT, "npmk_sketch_clone", npmk_sketch_clone(s, NULL));
    FAILS(NPMK_ERR_NULL_ARGUMENT, "npmk_sketch_encoded_len", npmk_sketch_encoded_len(NULL, &len));
    FAILS(NPMK_ERR_NULL_ARGUMENT, "npmk_sketch_encoded_len", npmk_sketch_encoded_len(s, NULL));
    FAILS(NPMK_ERR_NULL_ARGUMENT, "npmk_sketch_encode", npmk_sketch_encode(NULL, &byte, 1, &len));
    FAILS(NPMK_ERR_NULL_ARGUMENT, "npmk_sketch_encode", npmk_sketch_encode(s, NULL, 1, &len));
    FAILS(NPMK_ERR_NULL_ARGUMENT, "npmk_sketch_encode", npmk_sketch_encode(s, &byte, 1, NULL));
    FAILS(NPMK_ERR_BUFFER_TOO_SMALL, "npmk_sketch_encode", npmk_sketch_encode(s, &byte, 1, &len));
    CHECK(len == 99, "encode length written on failure");
    FAILS(NPMK_ERR_NULL_ARGUMENT, "npmk_sketch_decode", npmk_sketch_decode(NULL, 10, &sentinel));
    FAILS(NPMK_ERR_NULL_ARGUMENT, "npmk_sketch_decode", npmk_sketch_decode(&byte, 1, NULL));
    FAILS(NPMK_ERR_BAD_FORMAT, "npmk_sketch_decode", npmk_sketch_decode(&byte, 1, &sentinel));
    CHECK(sentinel == (npmk_sketch *)&failures, "a handle was written on failure");

    /* Monitor arguments and call order. */
    {
        npmk_monitor *m = NULL, *msentinel = (npmk_monitor *)&failures;
        npmk_monitor_options o;
        npmk_step_report r;
        float two[2] = {1.0f, 2.0f};
        memset(&r, 0x5A, sizeof r);
        FAILS(NPMK_ERR_NULL_ARGUMENT, "npmk_monitor_options_init", npmk_monitor_options_init(NULL));
        OK(npmk_monitor_options_init(&o));
        CHECK(o.epsilon == 0.01 && o.delta == 0.0025 && o.settle_window == 4 && o.per_tensor == 0,
              "default options");
        FAILS(NPMK_ERR_NULL_ARGUMENT, "npmk_monitor_new", npmk_monitor_new(NULL, &m));
        FAILS(NPMK_ERR_NULL_ARGUMENT, "npmk_monitor_new", npmk_monitor_new("/dev/null", NULL));
        FAILS(NPMK_ERR_IO, "npmk_monitor_new",
              npmk_monitor_new("/nonexistent-dir-npmk/x.jsonl", &msentinel));
        FAILS(NPMK_ERR_NULL_ARGUMENT, "npmk_monitor_new_with_options",
              npmk_monitor_new_with_options("/dev/null", NULL, &msentinel));
        o.sample_stride = 4;
        o.sample_fraction = 0.5;
        FAILS(NPMK_ERR_INVALID_ARGUMENT, "npmk_monitor_new_with_options",
              npmk_monitor_new_with_options("/dev/null", &o, &msentinel));
        o.sample_stride = 0;
        o.sample_fraction = 1.5;
        FAILS(NPMK_ERR_INVALID_ARGUMENT, "npmk_monitor_new_with_options",
              npmk_monitor_new_with_options("/dev/null", &o, &msentinel));
        o.sample_fraction = 0.0;
        o.epsilon = -1.0;
        FAILS(NPMK_ERR_INVALID_ARGUMENT, "npmk_monitor_new_with_options",
              npmk_monitor_new_with_options("/dev/null", &o, &msentinel));
        o.epsilon = 0.0;
        o.reserved = 1;
        FAILS(NPMK_ERR_INVALID_ARGUMENT, "npmk_monitor_new_with_options",
              npmk_monitor_new_with_options("/dev/null", &o, &msentinel));
        CHECK(msentinel == (npmk_monitor *)&failures, "a monitor handle was written on failure");
        o.reserved = 0;
        o.sample_fraction = 0.25;
        OK(npmk_monitor_new_with_options("/dev/null", &o, &m));

        FAILS(NPMK_ERR_NULL_ARGUMENT, "npmk_monitor_begin_step", npmk_monitor_begin_step(NULL, 1));
        FAILS(NPMK_ERR_CALL_ORDER, "npmk_monitor_push",
              npmk_monitor_push(m, "x.weight", NPMK_DTYPE_F32, &one, 1));
        FAILS(NPMK_ERR_CALL_ORDER, "npmk_monitor_end_step", npmk_monitor_end_step(m, &r));
        OK(npmk_monitor_begin_step(m, 10));
        FAILS(NPMK_ERR_CALL_ORDER, "npmk_monitor_begin_step", npmk_monitor_begin_step(m, 11));
        FAILS(NPMK_ERR_NULL_ARGUMENT, "npmk_monitor_push",
              npmk_monitor_push(NULL, "x.weight", NPMK_DTYPE_F32, &one, 1));
        FAILS(NPMK_ERR_NULL_ARGUMENT, "npmk_monitor_push",
              npmk_monitor_push(m, NULL, NPMK_DTYPE_F32, &one, 1));
        FAILS(NPMK_ERR_NULL_ARGUMENT, "npmk_monitor_push",
              npmk_monitor_push(m, "x.weight", NPMK_DTYPE_F32, NULL, 1));
        FAILS(NPMK_ERR_UNSUPPORTED_DTYPE, "npmk_monitor_push",
              npmk_monitor_push(m, "x.weight", 77, &one, 1));
        FAILS(NPMK_ERR_INVALID_ARGUMENT, "npmk_monitor_push",
              npmk_monitor_push(m, "bad\xff name", NPMK_DTYPE_F32, &one, 1));
        FAILS(NPMK_ERR_UNSUPPORTED_DTYPE, "npmk_monitor_push_ndim",
              npmk_monitor_push_ndim(m, "x.weight", 2, -1, &one, 1));
        OK(npmk_monitor_push(m, "x.weight", NPMK_DTYPE_F32, &one, 1));
        /* Sampled positions: one push per tensor per step. */
        FAILS(NPMK_ERR_INVALID_ARGUMENT, "npmk_monitor_push",
              npmk_monitor_push(m, "x.weight", NPMK_DTYPE_F32, &one, 1));
        FAILS(NPMK_ERR_NULL_ARGUMENT, "npmk_monitor_end_step", npmk_monitor_end_step(NULL, &r));
        /* One element gives no fit: the step still closes, with k NaN. */
        OK(npmk_monitor_end_step(m, &r));
        CHECK(r.step == 10 && isnan(r.k) && r.phase == NPMK_PHASE_NONE && r.n_tensors == 1,
              "no-fit step: step %llu k %g phase %d", (unsigned long long)r.step, r.k, r.phase);
        FAILS(NPMK_ERR_INVALID_ARGUMENT, "npmk_monitor_begin_step", npmk_monitor_begin_step(m, 10));
        OK(npmk_monitor_begin_step(m, 11));
        FAILS(NPMK_ERR_INVALID_ARGUMENT, "npmk_monitor_push",
              npmk_monitor_push(m, "x.weight", NPMK_DTYPE_F32, two, 2));
        npmk_monitor_free(m);
        npmk_monitor_free(NULL);
    }

    npmk_sketch_free(s);
    npmk_sketch_free(other);
    npmk_sketch_free(NULL);
}

/* ---- Monitor ----------------------------------------------------------------------------- */

/* Deterministic N(0, 1) deviates: splitmix64 and Box-Muller. */
static uint64_t mix_state;
static double next_uniform(void) {
    uint64_t z = (mix_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return ((double)(z >> 11) + 0.5) / 9007199254740992.0;
}
static double next_gaussian(void) {
    double u = next_uniform(), v = next_uniform();
    return sqrt(-2.0 * log(u)) * cos(2.0 * 3.14159265358979323846 * v);
}

enum { MONITOR_STEPS = 12, MONITOR_TENSORS = 19 };

/* One tensor of the toy model: its name, ndim, dtype, and element count. */
typedef struct toy_tensor {
    char name[64];
    uint32_t ndim;
    int32_t dtype;
    size_t n;
} toy_tensor;

static size_t toy_model(toy_tensor *t) {
    static const char *attn[4] = {"q_proj", "k_proj", "v_proj", "o_proj"};
    static const char *mlp[3] = {"gate_proj", "up_proj", "down_proj"};
    static const int32_t mlp_dtype[3] = {NPMK_DTYPE_BF16, NPMK_DTYPE_F16, NPMK_DTYPE_F32};
    size_t count = 0;
    int layer, j;
    strcpy(t[count].name, "model.embed_tokens.weight");
    t[count].ndim = 2, t[count].dtype = NPMK_DTYPE_F32, t[count].n = 2048, count++;
    for (layer = 0; layer < 2; layer++) {
        for (j = 0; j < 4; j++) {
            snprintf(t[count].name, 64, "model.layers.%d.self_attn.%s.weight", layer, attn[j]);
            t[count].ndim = 2, t[count].dtype = NPMK_DTYPE_F32, t[count].n = 1024, count++;
        }
        for (j = 0; j < 3; j++) {
            snprintf(t[count].name, 64, "model.layers.%d.mlp.%s.weight", layer, mlp[j]);
            t[count].ndim = 2, t[count].dtype = mlp_dtype[j], t[count].n = 2048, count++;
        }
        snprintf(t[count].name, 64, "model.layers.%d.input_layernorm.weight", layer);
        t[count].ndim = 1, t[count].dtype = NPMK_DTYPE_F32, t[count].n = 32, count++;
    }
    strcpy(t[count].name, "model.norm.weight");
    t[count].ndim = 2, t[count].dtype = NPMK_DTYPE_F32, t[count].n = 32, count++;
    strcpy(t[count].name, "probe.custom.weight");
    t[count].ndim = 2, t[count].dtype = NPMK_DTYPE_F32, t[count].n = 1024, count++;
    return count;
}

/* The tensor's elements at training step `step` (as bytes of its dtype): Gaussian at step 0,
 * growing heavier tails as training goes on. Layer 1's q_proj carries 3 NaN, 5 zeros, 1 Inf. */
static void toy_values(const toy_tensor *t, size_t index, uint64_t step, unsigned char *out) {
    double a = 0.4 * (1.0 - exp(-(double)step / 64.0));
    int poisoned = strstr(t->name, "layers.1.self_attn.q_proj") != NULL;
    size_t i;
    mix_state = 0x1234567ull + 1000003ull * index;
    for (i = 0; i < t->n; i++) {
        double g = next_gaussian();
        double w = 0.02 * g * (1.0 + a * g * g);
        if (poisoned && i < 3) {
            w = NAN;
        } else if (poisoned && i < 8) {
            w = 0.0;
        } else if (poisoned && i == 8) {
            w = INFINITY;
        }
        if (t->dtype == NPMK_DTYPE_F32) {
            float f = (float)w;
            memcpy(out + 4 * i, &f, 4);
        } else {
            uint16_t c = t->dtype == NPMK_DTYPE_BF16 ? bf16_of_f32((float)w)
                         : isnan(w)                  ? (uint16_t)0x7E00u
                         : isinf(w)                  ? (uint16_t)0x7C00u
                                                     : f16_of_double(w);
            memcpy(out + 2 * i, &c, 2);
        }
    }
}

/* A toy training run logged by three monitors at once: defaults, per-tensor fits with stride
 * sampling, and fixed sampled positions. The JSONL files are checked again by
 * check_jsonl.py. */
static void check_monitor(const char *dir) {
    toy_tensor t[MONITOR_TENSORS];
    size_t n_tensors = toy_model(t), j;
    char path[3][512];
    npmk_monitor *m[3] = {NULL, NULL, NULL};
    npmk_monitor_options o;
    unsigned char *data = (unsigned char *)malloc(4 * 2048 + 8);
    uint64_t step;
    int i, steps = 0;

    CHECK(n_tensors == MONITOR_TENSORS, "toy model has %zu tensors", n_tensors);
    snprintf(path[0], sizeof path[0], "%s/monitor_full.jsonl", dir);
    snprintf(path[1], sizeof path[1], "%s/monitor_stride.jsonl", dir);
    snprintf(path[2], sizeof path[2], "%s/monitor_positions.jsonl", dir);
    OK(npmk_monitor_new(path[0], &m[0]));
    memset(&o, 0, sizeof o); /* zeroed options are the defaults */
    o.per_tensor = 1;
    o.sample_stride = 3;
    OK(npmk_monitor_new_with_options(path[1], &o, &m[1]));
    OK(npmk_monitor_options_init(&o));
    o.sample_fraction = 0.5;
    o.seed = 7;
    OK(npmk_monitor_new_with_options(path[2], &o, &m[2]));

    for (step = 0; step <= 1024; step = step ? step * 2 : 1, steps++) {
        npmk_step_report r[3];
        for (i = 0; i < 3; i++) {
            OK(npmk_monitor_begin_step(m[i], step));
        }
        for (j = 0; j < n_tensors; j++) {
            size_t size = t[j].dtype == NPMK_DTYPE_F32 ? 4 : 2;
            /* Misaligned on purpose. */
            toy_values(&t[j], j, step, data + 1);
            for (i = 0; i < 3; i++) {
                if (i == 0 && strstr(t[j].name, "down_proj")) {
                    /* A tensor may arrive in chunks. */
                    OK(npmk_monitor_push(m[i], t[j].name, t[j].dtype, data + 1, 1000));
                    OK(npmk_monitor_push(m[i], t[j].name, t[j].dtype, data + 1 + 1000 * size,
                                         t[j].n - 1000));
                } else {
                    OK(npmk_monitor_push_ndim(m[i], t[j].name, t[j].ndim, t[j].dtype, data + 1,
                                              t[j].n));
                }
            }
        }
        for (i = 0; i < 3; i++) {
            memset(&r[i], 0, sizeof r[i]);
            OK(npmk_monitor_end_step(m[i], &r[i]));
            CHECK(r[i].step == step, "report step %llu", (unsigned long long)r[i].step);
            CHECK(r[i].k > 0.8 && r[i].k < 1.4 && r[i].r2 > 0.9, "monitor %d step %llu: k %g", i,
                  (unsigned long long)step, r[i].k);
            CHECK(r[i].n_tensors == 15, "n_tensors %u", r[i].n_tensors);
            CHECK(r[i].phase >= 0 && r[i].phase <= 3, "phase %d", r[i].phase);
            CHECK(!isnan(r[i].k_selection) && !isnan(r[i].k_value) &&
                      !isnan(r[i].k_transmission) && !isnan(r[i].k_other),
                  "class k missing at step %llu", (unsigned long long)step);
            CHECK((steps < 2) == (isnan(r[i].dk) != 0), "dk %g at step %llu", r[i].dk,
                  (unsigned long long)step);
            CHECK((steps < 3) == (isnan(r[i].d2k) != 0), "d2k %g at step %llu", r[i].d2k,
                  (unsigned long long)step);
            CHECK(r[i].micros < 10000000, "micros %llu", (unsigned long long)r[i].micros);
        }
        /* The full scan sees every special value; the samples see fewer elements, and report a
         * standard error that covers their distance to the full k. */
        CHECK(r[0].n_nan == 3 && r[0].n_zero == 5 && r[0].n_inf == 1 && r[0].k_se == 0.0,
              "full counts nan %llu zero %llu inf %llu", (unsigned long long)r[0].n_nan,
              (unsigned long long)r[0].n_zero, (unsigned long long)r[0].n_inf);
        CHECK(r[0].n_usable == 21504 - 9, "full usable %llu", (unsigned long long)r[0].n_usable);
        for (i = 1; i < 3; i++) {
            CHECK(r[i].n_usable < 12000 && r[i].k_se > 0.005 && r[i].k_se < 0.02,
                  "sampled usable %llu se %g", (unsigned long long)r[i].n_usable, r[i].k_se);
            CHECK(fabs(r[i].k - r[0].k) < 5 * r[i].k_se, "sampled k %g vs full %g (se %g)",
                  r[i].k, r[0].k, r[i].k_se);
        }
    }
    CHECK(steps == MONITOR_STEPS, "%d steps", steps);
    for (i = 0; i < 3; i++) {
        npmk_monitor_free(m[i]);
    }
    free(data);
}

/* Lines in a file, or -1. */
static int count_lines(const char *path) {
    FILE *f = fopen(path, "r");
    int c, lines = 0;
    if (!f) {
        return -1;
    }
    while ((c = fgetc(f)) != EOF) {
        lines += c == '\n';
    }
    fclose(f);
    return lines;
}

/* One step of 1000 Gaussian f32 weights into monitor m. */
static int32_t one_step(npmk_monitor *m, uint64_t step, npmk_step_report *r) {
    float w[1000];
    int i;
    int32_t rc;
    mix_state = step;
    for (i = 0; i < 1000; i++) {
        w[i] = (float)(0.02 * next_gaussian());
    }
    rc = npmk_monitor_begin_step(m, step);
    if (rc == NPMK_OK) {
        rc = npmk_monitor_push(m, "fc1.weight", NPMK_DTYPE_F32, w, 1000);
    }
    return rc == NPMK_OK ? npmk_monitor_end_step(m, r) : rc;
}

/* A new monitor truncates its file unless told to append; a failed write is NPMK_ERR_IO and
 * still closes the step. */
static void check_monitor_files(const char *dir) {
    char path[512];
    npmk_monitor *m = NULL;
    npmk_monitor_options o;
    npmk_step_report r;
    snprintf(path, sizeof path, "%s/monitor_modes.jsonl", dir);

    OK(npmk_monitor_new(path, &m));
    OK(one_step(m, 1, &r));
    OK(one_step(m, 2, &r));
    npmk_monitor_free(m);
    CHECK(count_lines(path) == 2, "%d lines after two steps", count_lines(path));
    /* A name the role tables do not know is still fitted and pooled (class "other"). */
    CHECK(r.k > 1.0 && r.k < 1.4 && r.n_tensors == 1 && !isnan(r.k_other) && isnan(r.k_value),
          "fc1.weight: k %g k_other %g", r.k, r.k_other);

    OK(npmk_monitor_options_init(&o));
    o.append = 1;
    OK(npmk_monitor_new_with_options(path, &o, &m));
    OK(one_step(m, 3, &r));
    npmk_monitor_free(m);
    CHECK(count_lines(path) == 3, "%d lines after appending a step", count_lines(path));

    OK(npmk_monitor_new(path, &m));
    OK(one_step(m, 4, &r));
    npmk_monitor_free(m);
    CHECK(count_lines(path) == 1, "%d lines after starting over", count_lines(path));

    /* /dev/full opens but refuses every write. */
    m = NULL;
    OK(npmk_monitor_new("/dev/full", &m));
    if (m) {
        FAILS(NPMK_ERR_IO, "npmk_monitor_end_step", one_step(m, 5, &r));
        /* The failed step is closed: the next one opens (and fails to write in turn). */
        OK(npmk_monitor_begin_step(m, 6));
        FAILS(NPMK_ERR_IO, "npmk_monitor_end_step", npmk_monitor_end_step(m, NULL));
        npmk_monitor_free(m);
    }
}

/* Runs every check above; returns the number of failures. */
static int run_all_checks(const char *dir) {
    double *w = half_normal_reference(REF_N);
    check_version();
    check_reference_values(w);
    check_merge_and_state_sum(w);
    check_counts();
    check_bad_arguments();
    check_monitor(dir);
    check_monitor_files(dir);
    free(w);
    return failures;
}

#endif /* NPMK_TEST_CHECKS_H */
