/*
 * npmk.h: the C ABI of npmk, the Weibull shape k of neural-network weight magnitudes (NPM-k).
 *
 * C99 and C++. Link with -lnpmk (libnpmk.so or libnpmk.a); see ffi/README.md.
 *
 * Conventions:
 *   - Handles are opaque: npmk_sketch (a mergeable 512 KiB histogram of |w|) and npmk_monitor
 *     (per-step k of a training run, written to a JSONL file). Each _new has a _free; freeing
 *     NULL does nothing.
 *   - Functions return an int32_t status: NPMK_OK (0) or an NPMK_ERR_* code. After a failure,
 *     npmk_last_error_message() says what went wrong, on the failing thread.
 *   - Out-parameters come last and are written only when NPMK_OK is returned.
 *   - Data pointers need no particular alignment; elements are read as little-endian.
 *   - Threads: a handle may be used by one thread at a time. Give each thread its own sketch
 *     and combine them with npmk_sketch_merge, or lock externally.
 *   - A Rust panic never crosses into C: it becomes NPMK_ERR_PANIC (a bug; please report it).
 */
#ifndef NPMK_H
#define NPMK_H

#include <stddef.h>
#include <stdint.h>

#define NPMK_VERSION_MAJOR 0
#define NPMK_VERSION_MINOR 1
#define NPMK_VERSION_PATCH 0
/* The version as a string literal, equal to what npmk_version() returns. */
#define NPMK_VERSION_STRING "0.1.0"

/* ---- Status codes -------------------------------------------------------------------------- */

#define NPMK_OK 0
/* A pointer argument that must not be NULL was NULL. */
#define NPMK_ERR_NULL_ARGUMENT 1
/* An argument is out of its documented range (trim, quantile, length, option, step order). */
#define NPMK_ERR_INVALID_ARGUMENT 2
/* The dtype code is not one of NPMK_DTYPE_*. */
#define NPMK_ERR_UNSUPPORTED_DTYPE 3
/* A file could not be opened or written. */
#define NPMK_ERR_IO 4
/* Bytes or a state array that no sketch produces (magic, checksum, counts that do not add up). */
#define NPMK_ERR_BAD_FORMAT 5
/* Too little data: a fit needs 100 usable elements and 2 distinct values; a quantile one. */
#define NPMK_ERR_INSUFFICIENT_DATA 6
/* A Rust panic was caught at the boundary (a bug). Free the handle involved. */
#define NPMK_ERR_PANIC 7
/* The caller's buffer is smaller than the result (see npmk_sketch_encoded_len). */
#define NPMK_ERR_BUFFER_TOO_SMALL 8
/* Monitor calls out of order (push or end_step without begin_step, begin_step twice). */
#define NPMK_ERR_CALL_ORDER 9

/* ---- Element types ------------------------------------------------------------------------- */

#define NPMK_DTYPE_F32 1  /* IEEE binary32 */
#define NPMK_DTYPE_F16 2  /* IEEE binary16 */
#define NPMK_DTYPE_BF16 3 /* bfloat16 (sketched exactly) */

/* ---- Trims (bodies of the distribution a fit uses; plotting positions lo..hi) -------------- */

#define NPMK_TRIM_MID80_LO 0.10 /* the papers' protocol and the default */
#define NPMK_TRIM_MID80_HI 0.90
#define NPMK_TRIM_MID90_LO 0.05
#define NPMK_TRIM_MID90_HI 0.95
#define NPMK_TRIM_FULL_LO 0.0
#define NPMK_TRIM_FULL_HI 1.0

/* Words in a sketch's state array (npmk_sketch_state): 65,536 uint64_t, 512 KiB. */
#define NPMK_STATE_WORDS 65536

/* npmk_step_report.phase when the step has no k. Phases P0..P3 are 0..3. */
#define NPMK_PHASE_NONE (-1)

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Types --------------------------------------------------------------------------------- */

/* A mergeable sketch of |w|. Opaque. */
typedef struct npmk_sketch npmk_sketch;

/* The per-step monitor of a training run. Opaque. */
typedef struct npmk_monitor npmk_monitor;

/* A Weibull probability-plot fit. */
typedef struct npmk_fit {
    double k;          /* shape: slope of the Weibull plot */
    double lambda;     /* scale, in the units of the weights */
    double r2;         /* coefficient of determination */
    double ks;         /* Kolmogorov-Smirnov distance over the kept ranks */
    uint64_t n_used;   /* ranks in the regression */
    uint64_t n_usable; /* finite non-zero elements in the sketch */
} npmk_fit;

/* Element counts by sort. */
typedef struct npmk_counts {
    uint64_t total;     /* every element pushed */
    uint64_t usable;    /* finite and non-zero: the ones a fit uses */
    uint64_t zero;      /* +0.0 and -0.0 */
    uint64_t nan;       /* NaN, any payload */
    uint64_t pos_inf;   /* +Inf */
    uint64_t neg_inf;   /* -Inf */
    uint64_t subnormal; /* non-zero and subnormal in their dtype (also in usable) */
} npmk_counts;

/* Monitor options. Start from npmk_monitor_options_init(), or zero the struct: zeroed fields
 * take the defaults. */
typedef struct npmk_monitor_options {
    uint32_t per_tensor;     /* non-zero: also fit each tensor (one 512 KiB sketch per tensor) */
    uint32_t append;         /* non-zero: append to an existing file; zero: truncate it */
    uint64_t sample_stride;  /* >= 2: only elements whose index in the tensor is a multiple */
    double sample_fraction;  /* in (0,1): this fraction of each tensor at fixed random positions,
                                one per stratum, reused every step (one push per tensor/step);
                                0 or 1: no sampling; outside [0,1]: NPMK_ERR_INVALID_ARGUMENT */
    uint64_t seed;           /* seed of the sampled positions */
    double epsilon;          /* phase slope threshold per decade of steps (0: 0.01) */
    double delta;            /* half-width of the settled band of k (0: 0.0025) */
    uint32_t settle_window;  /* recent steps inside the band that read P3 (0: 4) */
    uint32_t reserved;       /* must be 0 */
} npmk_monitor_options;

/* What npmk_monitor_end_step reports. NaN marks a missing value. */
typedef struct npmk_step_report {
    uint64_t step;         /* the step given to begin_step */
    double k;              /* pooled mid-80 k over the included tensors (NaN: no fit) */
    double dk;             /* NPM-dk: backward slope of k per decade of steps (NaN at first) */
    double d2k;            /* NPM-d2k of the last three steps with a k (NaN before three) */
    int32_t phase;         /* causal phase 0..3 (P0..P3), NPMK_PHASE_NONE without k */
    uint32_t n_tensors;    /* included (pooled) tensors pushed this step */
    double lambda;         /* pooled mid-80 scale */
    double r2;             /* pooled mid-80 R^2 */
    double k_mid90;        /* pooled k, mid-90 body */
    double k_full;         /* pooled k, every rank */
    double k_selection;    /* mid-80 k of q, k and fused qkv matrices */
    double k_value;        /* mid-80 k of v matrices */
    double k_transmission; /* mid-80 k of o and feed-forward matrices */
    double k_other;        /* mid-80 k of 2-D tensors the role tables do not know */
    double k_se;           /* standard error of k due to sampling (0 without sampling) */
    uint64_t n_used;       /* ranks in the pooled mid-80 regression */
    uint64_t n_usable;     /* finite non-zero elements pooled (sampled ones when sampling) */
    uint64_t n_zero;       /* zeros among the pooled (sampled) elements */
    uint64_t n_nan;        /* NaNs among them */
    uint64_t n_inf;        /* infinities among them */
    uint64_t micros;       /* microseconds spent inside this step's monitor calls */
} npmk_step_report;

/* ---- Library ------------------------------------------------------------------------------- */

/* "MAJOR.MINOR.PATCH" of the library, a static string; compare with NPMK_VERSION_STRING. */
const char *npmk_version(void);

/* The message of the calling thread's most recent failed call ("" if none). Owned by the
 * library, valid until the next failing call on the same thread. Success leaves it as is. */
const char *npmk_last_error_message(void);

/* "NPMK_OK", "NPMK_ERR_IO", ... for a status code; "NPMK_ERR_UNKNOWN" otherwise. Static. */
const char *npmk_status_name(int32_t code);

/* ---- Sketch -------------------------------------------------------------------------------- */

/* Creates an empty sketch (512 KiB on the heap) and writes its handle to *out. */
int32_t npmk_sketch_new(npmk_sketch **out);

/* Frees a sketch (NULL: no-op). Pointers from npmk_sketch_state die with it. */
void npmk_sketch_free(npmk_sketch *s);

/* Empties a sketch, keeping its memory. */
int32_t npmk_sketch_clear(npmk_sketch *s);

/* Adds n_elements values of type dtype at data (any alignment; NULL only if n_elements is 0).
 * Zeros, NaN and Inf are counted apart and never enter a fit. Nothing is added on error.
 * Errors: NULL_ARGUMENT, UNSUPPORTED_DTYPE, INVALID_ARGUMENT (size beyond the address space). */
int32_t npmk_sketch_push(npmk_sketch *s, int32_t dtype, const void *data, size_t n_elements);

/* Adds src's counts to dst (dst becomes the sketch of both inputs); src is unchanged.
 * Errors: NULL_ARGUMENT, INVALID_ARGUMENT (dst == src). */
int32_t npmk_sketch_merge(npmk_sketch *dst, const npmk_sketch *src);

/* Fits the Weibull plot over plotting positions [lo, hi] (NPMK_TRIM_*) into *out.
 * Errors: NULL_ARGUMENT, INVALID_ARGUMENT (unless 0 <= lo < hi <= 1), INSUFFICIENT_DATA
 * (fewer than 100 usable elements or 2 distinct values in the body), BAD_FORMAT (a state
 * array written with something other than sums of sketch states). */
int32_t npmk_sketch_fit(const npmk_sketch *s, double lo, double hi, npmk_fit *out);

/* The q-quantile (0 <= q <= 1) of the usable |w|: the value at rank max(1, ceil(q n)).
 * Errors: NULL_ARGUMENT, INVALID_ARGUMENT, INSUFFICIENT_DATA (no usable element), BAD_FORMAT. */
int32_t npmk_sketch_quantile(const npmk_sketch *s, double q, double *out);

/* Element counts: total, usable, zero, NaN, +Inf, -Inf, subnormal. */
int32_t npmk_sketch_counts(const npmk_sketch *s, npmk_counts *out);

/* The sketch's whole state: *words_out points to its NPMK_STATE_WORDS uint64_t counts (owned
 * by the sketch, valid until npmk_sketch_free), *n_words_out is NPMK_STATE_WORDS. Summing
 * these arrays element-wise merges sketches exactly, so they can be all-reduced in place:
 *     MPI_Allreduce(MPI_IN_PLACE, words, (int)n, MPI_UINT64_T, MPI_SUM, comm);
 * Write nothing else into the array: the sum invariant (bins plus special counts equal the
 * per-dtype totals) is checked by fit, quantile and encode, which return BAD_FORMAT. */
int32_t npmk_sketch_state(npmk_sketch *s, uint64_t **words_out, size_t *n_words_out);

/* Creates a sketch from a copy of a state array of n_words words (any alignment), e.g. one
 * received from an all-reduce. Errors: NULL_ARGUMENT, INVALID_ARGUMENT (n_words is not
 * NPMK_STATE_WORDS), BAD_FORMAT (counts no sketch produces). */
int32_t npmk_sketch_from_state(const uint64_t *words, size_t n_words, npmk_sketch **out);

/* Creates a copy of s. */
int32_t npmk_sketch_clone(const npmk_sketch *s, npmk_sketch **out);

/* The number of bytes npmk_sketch_encode needs: 24 plus 10 per non-zero state word. */
int32_t npmk_sketch_encoded_len(const npmk_sketch *s, size_t *out);

/* Serializes s into buf (cap bytes): a compact, checksummed, little-endian format, the same on
 * every platform. *len_out receives the bytes written. Errors: NULL_ARGUMENT,
 * BUFFER_TOO_SMALL (nothing written), BAD_FORMAT. */
int32_t npmk_sketch_encode(const npmk_sketch *s, uint8_t *buf, size_t cap, size_t *len_out);

/* Creates a sketch from len bytes written by npmk_sketch_encode.
 * Errors: NULL_ARGUMENT, BAD_FORMAT (magic, length, checksum, order, or counts). */
int32_t npmk_sketch_decode(const uint8_t *buf, size_t len, npmk_sketch **out);

/* ---- Monitor ------------------------------------------------------------------------------- */
/*
 * Per step: npmk_monitor_begin_step, one npmk_monitor_push per weight tensor, then
 * npmk_monitor_end_step, which appends one JSON object to the file and writes it through, so a
 * crashing trainer loses at most the step in progress. Tensors are named as in the model's
 * state dict (e.g. "model.layers.3.mlp.down_proj.weight") and classified by npmk's role
 * tables: selection (q, k, fused qkv), value (v), transmission (o, feed-forward), other (2-D
 * tensors the tables do not know), excluded (embeddings, LM head, norms, biases, buffers,
 * tensors that are not 2-D). k pools every tensor that is not excluded; excluded tensors are
 * counted and logged but not scanned unless per_tensor is set. Sketches are reused across
 * steps: memory is fixed after the first step.
 */

/* Writes the default options to *out. */
int32_t npmk_monitor_options_init(npmk_monitor_options *out);

/* Creates a monitor with default options writing to jsonl_path (created or truncated).
 * Errors: NULL_ARGUMENT, IO. */
int32_t npmk_monitor_new(const char *jsonl_path, npmk_monitor **out);

/* Creates a monitor with options. Errors: NULL_ARGUMENT, INVALID_ARGUMENT (an option out of
 * range, or both sampling modes), IO. */
int32_t npmk_monitor_new_with_options(const char *jsonl_path, const npmk_monitor_options *options,
                                      npmk_monitor **out);

/* Opens a step. Steps must increase across calls; step 0 may come first (k, phase P0, no dk).
 * Errors: NULL_ARGUMENT, CALL_ORDER (a step is open), INVALID_ARGUMENT (step not increasing). */
int32_t npmk_monitor_begin_step(npmk_monitor *m, uint64_t step);

/* Pushes one weight tensor (taken as a 2-D matrix) by name. A tensor may come in several
 * pushes, consecutive chunks in order, unless positions are sampled. Errors: NULL_ARGUMENT,
 * UNSUPPORTED_DTYPE, CALL_ORDER (no open step), INVALID_ARGUMENT (name not UTF-8; with
 * sample_fraction, a second push of a tensor in one step or a changed size). */
int32_t npmk_monitor_push(npmk_monitor *m, const char *name, int32_t dtype, const void *data,
                          size_t n_elements);

/* As npmk_monitor_push for a tensor of ndim dimensions: tensors that are not 2-D are excluded
 * from the pool whatever their name. */
int32_t npmk_monitor_push_ndim(npmk_monitor *m, const char *name, uint32_t ndim, int32_t dtype,
                               const void *data, size_t n_elements);

/* Closes the step: fits, reads dk, d2k and the phase, appends the JSON line, and writes the
 * report to *out unless out is NULL. A step without a fit still succeeds (k NaN, phase
 * NPMK_PHASE_NONE, "no_fit" in the line). Errors: NULL_ARGUMENT (m), CALL_ORDER, IO (the step
 * is closed all the same). */
int32_t npmk_monitor_end_step(npmk_monitor *m, npmk_step_report *out);

/* Frees a monitor and closes its file (NULL: no-op). An open step is not written. */
void npmk_monitor_free(npmk_monitor *m);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* NPMK_H */
