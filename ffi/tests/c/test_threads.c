/* Threads (pthreads, C99): one sketch per thread over a contiguous shard of the reference
 * input in every dtype, merged, equals the single-threaded sketch word for word and its fits
 * bit for bit. Also: error messages stay with the thread that failed. */
#include "common.h"

#include <pthread.h>

enum { THREADS = 4, DTYPES = 3 };

typedef struct job {
    const unsigned char *data[DTYPES]; /* the whole input per dtype, misaligned */
    size_t begin, end;                 /* this thread's element range */
    npmk_sketch *sketch;
    int32_t status;
    char message[256]; /* this thread's last error after a deliberate failure */
} job;

static const int32_t dtypes[DTYPES] = {NPMK_DTYPE_F32, NPMK_DTYPE_F16, NPMK_DTYPE_BF16};

static size_t size_of(int32_t dtype) {
    return dtype == NPMK_DTYPE_F32 ? 4 : 2;
}

static void *work(void *arg) {
    job *j = (job *)arg;
    int d;
    char bad_name[32];
    j->status = npmk_sketch_new(&j->sketch);
    for (d = 0; d < DTYPES && j->status == NPMK_OK; d++) {
        const unsigned char *mine = j->data[d] + j->begin * size_of(dtypes[d]);
        j->status = npmk_sketch_push(j->sketch, dtypes[d], mine, j->end - j->begin);
    }
    /* A failure of our own, with a dtype code unique to this thread. */
    snprintf(bad_name, sizeof bad_name, "%d", 100 + (int)(j->begin % 1000));
    (void)npmk_sketch_push(j->sketch, 100 + (int32_t)(j->begin % 1000), j->data[0], 1);
    snprintf(j->message, sizeof j->message, "%s", npmk_last_error_message());
    if (!strstr(j->message, bad_name)) {
        j->status = -1;
    }
    return NULL;
}

int main(void) {
    double *w = half_normal_reference(REF_N);
    unsigned char *buffers[DTYPES];
    const unsigned char *data[DTYPES];
    npmk_sketch *single = NULL, *merged = NULL;
    pthread_t threads[THREADS];
    job jobs[THREADS];
    npmk_fit a, b;
    size_t i;
    int t, d;

    /* The whole input in each dtype, at an odd address; one sketch of all of it. */
    OK(npmk_sketch_new(&single));
    for (d = 0; d < DTYPES; d++) {
        size_t size = size_of(dtypes[d]);
        unsigned char *typed = (unsigned char *)malloc(REF_N * size);
        void *start;
        for (i = 0; i < REF_N; i++) {
            if (dtypes[d] == NPMK_DTYPE_F32) {
                float f = (float)w[i];
                memcpy(typed + 4 * i, &f, 4);
            } else {
                uint16_t c = dtypes[d] == NPMK_DTYPE_F16 ? f16_of_double(w[i])
                                                         : bf16_of_f32((float)w[i]);
                memcpy(typed + 2 * i, &c, 2);
            }
        }
        buffers[d] = misaligned_copy(typed, REF_N, size, &start);
        data[d] = (const unsigned char *)start;
        free(typed);
        OK(npmk_sketch_push(single, dtypes[d], data[d], REF_N));
    }

    /* Uneven shards, one thread each. */
    for (t = 0; t < THREADS; t++) {
        memset(&jobs[t], 0, sizeof jobs[t]);
        for (d = 0; d < DTYPES; d++) {
            jobs[t].data[d] = data[d];
        }
        jobs[t].begin = t == 0 ? 0 : (size_t)REF_N / 7 * (size_t)(t + 1);
        jobs[t].end = t == THREADS - 1 ? REF_N : (size_t)REF_N / 7 * (size_t)(t + 2);
        CHECK(pthread_create(&threads[t], NULL, work, &jobs[t]) == 0, "pthread_create %d", t);
    }
    OK(npmk_sketch_new(&merged));
    for (t = 0; t < THREADS; t++) {
        CHECK(pthread_join(threads[t], NULL) == 0, "pthread_join %d", t);
        CHECK(jobs[t].status == NPMK_OK, "thread %d: status %d, message \"%s\"", t,
              (int)jobs[t].status, jobs[t].message);
        OK(npmk_sketch_merge(merged, jobs[t].sketch));
        npmk_sketch_free(jobs[t].sketch);
    }
    /* Nothing failed on the main thread: its message is still empty. */
    CHECK(strcmp(npmk_last_error_message(), "") == 0, "main thread message \"%s\"",
          npmk_last_error_message());

    CHECK(same_state(single, merged), "merged per-thread sketches differ from one sketch");
    OK(npmk_sketch_fit(single, NPMK_TRIM_MID80_LO, NPMK_TRIM_MID80_HI, &a));
    OK(npmk_sketch_fit(merged, NPMK_TRIM_MID80_LO, NPMK_TRIM_MID80_HI, &b));
    CHECK(same_fit(&a, &b), "mid-80 k %.17g vs %.17g", b.k, a.k);
    OK(npmk_sketch_fit(single, NPMK_TRIM_FULL_LO, NPMK_TRIM_FULL_HI, &a));
    OK(npmk_sketch_fit(merged, NPMK_TRIM_FULL_LO, NPMK_TRIM_FULL_HI, &b));
    CHECK(same_fit(&a, &b), "full k %.17g vs %.17g", b.k, a.k);
    /* Every element counted once (f16 rounds the few smallest to zero). */
    CHECK(a.n_usable <= 3 * (uint64_t)REF_N && a.n_usable > 3 * (uint64_t)REF_N - 10,
          "n_usable %llu", (unsigned long long)a.n_usable);

    npmk_sketch_free(single);
    npmk_sketch_free(merged);
    for (d = 0; d < DTYPES; d++) {
        free(buffers[d]);
    }
    free(w);
    if (failures) {
        fprintf(stderr, "test_threads: %d check(s) failed\n", failures);
        return 1;
    }
    printf("test_threads: %d threads merged equal one sketch (full-trim k %.7f)\n", THREADS, b.k);
    return 0;
}
