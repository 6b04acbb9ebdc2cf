/*
 * Dense symmetric-indefinite KKT solver behind MA27's calling sequence.
 *
 * IPOPT loads MA27 at run time from the library named by its option `hsllib` and calls
 * ma27id (defaults), ma27ad (analysis), ma27bd (factorization, with the inertia in INFO(15))
 * and ma27cd (one solve per right-hand side). This library answers those four calls with a
 * dense LDL^T factorization with Bunch-Kaufman pivoting (LAPACK dsytrf/dsytrs):
 *
 *   S K S = P L D L^T P^T,   S = diag(s),  s_i = 1 / sqrt(max_j |K_ij|),
 *
 * a symmetric scaling that brings every row's largest entry near 1 (one pass; the maxima are
 * taken while the triplets are summed into the dense triangle), so that a pivot counts as zero
 * when |d| <= max(CNTL(3), n eps) in every row alike. D holds 1x1 and 2x2 blocks; their
 * eigenvalue signs give the inertia (Sylvester's law of inertia: S is a congruence).
 *
 * The factorization runs on one OpenBLAS thread, set for the calling thread only and restored
 * after (openblas_set_num_threads_local): IPOPT's linear algebra alternates with the torch
 * oracle on the same cores, and OpenBLAS's idle threads would spin against torch's.
 *
 * Everything lives in the caller's arrays, so the library keeps no state:
 *   A[0 .. nz)                  the triplet values IPOPT writes before each ma27bd;
 *   A[la - n*n - n .. la - n*n) the scaling s;
 *   A[la - n*n .. la)           the factor, column-major, lower triangle;
 *   IW[0 .. n)                  dsytrf's pivots.
 * ma27ad asks for LA >= nz + n*n + n (INFO(5)) and LIW >= n (INFO(6)); a smaller LA or LIW
 * at ma27bd returns IFLAG -4 or -3 with the size needed, as MA27 does. A NaN or Inf entry
 * returns IFLAG -6 with its position (IPOPT stops: its derivatives are not finite).
 */
#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#ifndef LAPACK_PREFIX
#define LAPACK_PREFIX
#endif
#define LAPACK_CONCAT(prefix, name) prefix##name
#define LAPACK_NAME(prefix, name) LAPACK_CONCAT(prefix, name)

extern void LAPACK_NAME(LAPACK_PREFIX, dsytrf_)(const char *uplo, const int *n, double *a, const int *lda,
                                                int *ipiv, double *work, const int *lwork, int *info,
                                                size_t uplo_len);
extern void LAPACK_NAME(LAPACK_PREFIX, dsytrs_)(const char *uplo, const int *n, const int *nrhs,
                                                const double *a, const int *lda, const int *ipiv,
                                                double *b, const int *ldb, int *info, size_t uplo_len);

/* OpenBLAS 0.3.27 and later; weak, so that an older BLAS loads the library too (its own
 * thread count then applies) */
extern int openblas_set_num_threads_local(int threads) __attribute__((weak));

static int one_thread(void) { return openblas_set_num_threads_local ? openblas_set_num_threads_local(1) : 0; }
static void restore_threads(int threads)
{
    if (openblas_set_num_threads_local) openblas_set_num_threads_local(threads);
}

#define SYTRF_BLOCK 32
#define MA27_ICNTL 30
#define MA27_CNTL 5
#define MA27_INFO 20

static double *factor_of(double *a, int la, int n) { return a + ((size_t)la - (size_t)n * (size_t)n); }
static double *scaling_of(double *a, int la, int n) { return factor_of(a, la, n) - n; }

static size_t values_needed(int n, int nz) { return (size_t)nz + (size_t)n * (size_t)n + (size_t)n; }

void ma27id_(int *icntl, double *cntl)
{
    memset(icntl, 0, MA27_ICNTL * sizeof(int));
    memset(cntl, 0, MA27_CNTL * sizeof(double));
    icntl[0] = 6;      /* error stream (unused: this library prints nothing) */
    icntl[1] = 6;      /* warning stream */
    cntl[0] = 0.1;     /* MA27's pivot threshold; Bunch-Kaufman pivoting needs none */
    cntl[2] = 0.0;     /* pivots of modulus <= CNTL(3) count as zero (besides n eps) */
}

void ma27ad_(int *n, int *nz, const int *irn, const int *icn, int *iw, int *liw, int *ikeep, int *iw1,
             int *nsteps, int *iflag, int *icntl, double *cntl, int *info, double *ops)
{
    (void)iw; (void)liw; (void)ikeep; (void)iw1; (void)iflag; (void)icntl; (void)cntl;
    memset(info, 0, MA27_INFO * sizeof(int));
    if (*n < 1) { info[0] = -1; info[1] = *n; return; }
    if (*nz < 0) { info[0] = -2; info[1] = *nz; return; }
    int outside = 0;
    for (int k = 0; k < *nz; ++k)
        if (irn[k] < 1 || irn[k] > *n || icn[k] < 1 || icn[k] > *n) ++outside;
    size_t need = values_needed(*n, *nz);
    if (need > (size_t)2147483647) { info[0] = -4; info[1] = 2147483647; return; }
    if (outside) { info[0] = 1; info[1] = outside; }  /* MA27's warning: such entries are ignored */
    *nsteps = 1;
    info[4] = (int)need;       /* NRLNEC: reals needed */
    info[5] = *n;              /* NIRNEC: integers needed */
    *ops = (double)*n * (double)*n * (double)*n / 3.0;
}

/* s_i = 1/sqrt(max_j |K_ij|) from the row maxima, then the triangle scaled to S K S. */
static void equilibrate(double *l, double *s, int n)
{
    for (int i = 0; i < n; ++i) s[i] = s[i] > 0.0 ? 1.0 / sqrt(s[i]) : 1.0;
    for (int j = 0; j < n; ++j) {
        double *column = l + (size_t)j * n;
        const double sj = s[j];
        for (int i = j; i < n; ++i) column[i] *= s[i] * sj;
    }
}

/* The eigenvalue signs of a symmetric 2x2 block [p q; q r]. */
static void count_block(double p, double q, double r, double tol, int *negative, int *zero)
{
    double mean = 0.5 * (p + r), radius = hypot(0.5 * (p - r), q);
    double big = mean >= 0 ? mean + radius : mean - radius;
    double small = big != 0.0 ? (p * r - q * q) / big : 0.0;
    double eig[2] = {big, small};
    for (int i = 0; i < 2; ++i) {
        if (fabs(eig[i]) <= tol) ++*zero;
        else if (eig[i] < 0) ++*negative;
    }
}

void ma27bd_(int *n_, int *nz_, const int *irn, const int *icn, double *a, int *la, int *iw, int *liw,
             int *ikeep, int *nsteps, int *maxfrt, int *iw1, int *icntl, double *cntl, int *info)
{
    (void)ikeep; (void)nsteps; (void)iw1; (void)icntl;
    const int n = *n_, nz = *nz_;
    memset(info, 0, MA27_INFO * sizeof(int));
    if (*liw < n) { info[0] = -3; info[1] = n; return; }
    size_t need = values_needed(n, nz);
    if ((size_t)*la < need) { info[0] = -4; info[1] = (int)need; return; }

    double *l = factor_of(a, *la, n), *s = scaling_of(a, *la, n);
    for (int j = 0; j < n; ++j) memset(l + (size_t)j * n + j, 0, (size_t)(n - j) * sizeof(double));
    for (int i = 0; i < n; ++i) s[i] = 0.0;
    for (int k = 0; k < nz; ++k) {
        int i = irn[k], j = icn[k];
        if (i < 1 || i > n || j < 1 || j > n) continue;
        if (!isfinite(a[k])) { info[0] = -6; info[1] = k + 1; return; }  /* NaN or Inf: which entry */
        int row = i > j ? i : j, col = i > j ? j : i;
        l[(size_t)(col - 1) * n + (row - 1)] += a[k];
        double v = fabs(a[k]);  /* row maxima of the entries as given (duplicates not summed) */
        s[row - 1] = fmax(s[row - 1], v);
        s[col - 1] = fmax(s[col - 1], v);
    }
    equilibrate(l, s, n);

    /* dsytrf's block size is lwork / n: 32 factored the 785-row KKT matrix of problem 7 about
     * 10 % faster than LAPACK's default 64 on one thread (16-32 alike, 96-192 slower) */
    int lapack_info = 0, lwork = n * SYTRF_BLOCK;
    const int threads = one_thread();
    double *work = malloc((size_t)lwork * sizeof(double));
    if (!work) { restore_threads(threads); info[0] = -7; return; }
    LAPACK_NAME(LAPACK_PREFIX, dsytrf_)("L", &n, l, &n, iw, work, &lwork, &lapack_info, 1);
    free(work);
    restore_threads(threads);
    if (lapack_info < 0) { info[0] = -7; info[1] = lapack_info; return; }

    const double tol = fmax(cntl[2], n * DBL_EPSILON);
    int negative = 0, zero = 0;
    for (int k = 0; k < n;) {
        double p = l[(size_t)k * n + k];
        if (iw[k] > 0) {
            if (fabs(p) <= tol) ++zero;
            else if (p < 0) ++negative;
            k += 1;
        } else {
            count_block(p, l[(size_t)k * n + k + 1], l[(size_t)(k + 1) * n + k + 1], tol, &negative, &zero);
            k += 2;
        }
    }
    *maxfrt = n;
    info[8] = (int)((long)n * (n + 1) / 2);  /* reals holding the factor */
    info[9] = n;                /* integers holding it */
    info[14] = negative;        /* NEIG */
    if (zero) { info[0] = 3; info[1] = n - zero; }  /* MA27's rank-deficiency warning, with the rank */
}

void ma27cd_(int *n, double *a, int *la, int *iw, int *liw, double *w, int *maxfrt, double *rhs, int *iw1,
             int *nsteps, int *icntl, int *info)
{
    (void)liw; (void)w; (void)maxfrt; (void)iw1; (void)nsteps; (void)icntl;
    const int one = 1;
    int lapack_info = 0;
    double *l = factor_of(a, *la, *n), *s = scaling_of(a, *la, *n);
    for (int i = 0; i < *n; ++i) rhs[i] *= s[i];
    const int threads = one_thread();
    LAPACK_NAME(LAPACK_PREFIX, dsytrs_)("L", n, &one, l, n, iw, rhs, n, &lapack_info, 1);
    restore_threads(threads);
    for (int i = 0; i < *n; ++i) rhs[i] *= s[i];
    info[0] = lapack_info < 0 ? -7 : 0;
}
