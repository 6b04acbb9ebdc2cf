/*
 * Dense symmetric-indefinite KKT solver behind MA27's calling sequence.
 *
 * IPOPT loads MA27 at run time from the library named by its option `hsllib` and calls
 * ma27id (defaults), ma27ad (analysis), ma27bd (factorization, with the inertia in INFO(15))
 * and ma27cd (one solve per right-hand side). This library answers those four calls.
 *
 * Scaling. S = diag(s), s_i = 1 / sqrt(max_j |K_ij|) of the entries once duplicates are summed,
 * brings every row's largest entry near 1; S is a congruence, so S K S has K's inertia. When a
 * sum of finite entries overflows, all entries are first multiplied by a power of two (exactly;
 * an entry that would then fall below DBL_MIN is refused with IFLAG -6 instead).
 *
 * Eliminating a diagonal block first. Rows whose only coupling to each other is the diagonal
 * (chosen at the analysis from the sparsity: greedily in row order, a row joins the set E when
 * it has a diagonal entry and no neighbour in E) are eliminated before anything else. With the
 * permuted, scaled matrix [D  C^T; C  B] (D diagonal on E):
 *
 *   [D C^T; C B] = [I 0; C D^-1 I] [D 0; 0 B - C D^-1 C^T] [I D^-1 C^T; 0 I],
 *
 * and the Schur complement is formed as B - P^T sign(D) P with P = |D|^-1/2 C^T (one SYRK per
 * run of E's rows whose pivots share a sign). A row stays in E at a factorization only when
 * its pivot passes MA27's threshold test, d != 0 and |d| >= u max_j |c_j|, with u = CNTL(1)
 * (IPOPT's ma27_pivtol, 1e-8 by default, raised towards ma27_pivtolmax when IPOPT asks for
 * more quality; taken in [0, 0.5] as MA27 does): an entry of the Schur complement grows by at
 * most |c_j| / u per eliminated row. One that fails joins the rest, where a multifrontal
 * solver would delay the same pivot to the front of its neighbours, and the entries are
 * gathered again. The Schur complement is factorized by LAPACK dsytrf (Bunch-Kaufman, blocked,
 * alpha = (1 + sqrt 17) / 8, stricter than any u). When a network's first layer is lifted into
 * variables and rows, E holds the input variables (their Hessian is diagonal), and the dense
 * part shrinks from the input size to twice the layer's width.
 *
 * Inertia: the negative entries of D plus the signs of the Schur complement's 1x1 and 2x2
 * pivot blocks (Sylvester's law of inertia). A pivot (an eigenvalue of a 2x2 block) is zero
 * when it lies within the rounding error of its own computation, |p| <= n eps r, r the sum of
 * the magnitudes it was formed from (its diagonal entry, the E rows' and the earlier pivots'
 * terms subtracted from it), or |p| <= CNTL(3). Zero pivots are reported as MA27 reports rank
 * deficiency (INFO(1) = 3, INFO(2) = rank), so IPOPT's inertia correction works as with MA27;
 * the factor then keeps D's pseudo-inverse, so that ma27cd (as MA27 with
 * ma27_ignore_singularity) returns a finite solution whose zero pivots' components are zero.
 *
 * The BLAS runs on one OpenBLAS thread, set for the calling thread only and restored after
 * (openblas_set_num_threads_local): IPOPT's linear algebra alternates with the torch oracle on
 * the same cores, and OpenBLAS's idle threads would spin against torch's.
 *
 * Everything lives in the caller's arrays; the library keeps only the bound LAPACK routines (e = rows in E,
 * b = n - e the rest):
 *   A[0 .. nz)                      the triplet values IPOPT writes before each ma27bd;
 *   A[la - e c - b^2 - 2n .. la - 2n)  P (e x c, column-major), then the Schur complement's
 *                                   factor (b x b, column-major, lower triangle, D's
 *                                   pseudo-inverse in place of D);
 *   A[la - 2n .. la - n)            the scaling s;  A[la - n .. la - n + e) sign(d) |d|^-1/2;
 *   IKEEP[0 .. n)                   1 for a row the analysis puts in E, 2 for one coupled to E;
 *   IW[0 .. n)                      dsytrf's pivots;  IW[n .. 2n) where each row went
 *                                   (k >= 0: row k of the rest; -1 - k: E's k-th);
 *                                   IW[2n]: e;  IW[2n + 1]: c.
 * ma27ad asks for LA >= nz + 2n + e c + b^2 (INFO(5), from the analysis) and LIW >= 2n + 2
 * (INFO(6)); a smaller LA or LIW at ma27bd (for instance when rows leave E at the pivot test)
 * returns IFLAG -4 or -3 with the size needed, as MA27 does, and IPOPT grows the array. A NaN
 * or Inf entry returns IFLAG -6 with its position (IPOPT stops: its derivatives are not finite).
 * A size needed above INT_MAX / 2 returns IFLAG -8 with the dense part's order in INFO(2)
 * (IPOPT stops; asking it for more would overflow its integer array size when it multiplies
 * the request by ma27_meminc_factor).
 */
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* The LAPACK and BLAS routines, bound at run time by nncas_bind_lapack (nncas.kkt passes SciPy's,
 * from the capsules of scipy.linalg.cython_lapack and cython_blas, before IPOPT loads the library):
 * the library links no BLAS, so no path or symbol prefix of one is compiled in. */
typedef void sytrf_fn(const char *uplo, const int *n, double *a, const int *lda, int *ipiv, double *work,
                      const int *lwork, int *info);
typedef void syrk_fn(const char *uplo, const char *trans, const int *n, const int *k, const double *alpha,
                     const double *a, const int *lda, const double *beta, double *c, const int *ldc);
typedef void gemv_fn(const char *trans, const int *m, const int *n, const double *alpha, const double *a,
                     const int *lda, const double *x, const int *incx, const double *beta, double *y,
                     const int *incy);
typedef int threads_fn(int threads);

static sytrf_fn *dsytrf;
static syrk_fn *dsyrk;
static gemv_fn *dgemv;
/* OpenBLAS 0.3.27 and later's openblas_set_num_threads_local, or NULL (the BLAS's own thread
 * count then applies) */
static threads_fn *threads_local;

/* Binds the routines; returns 0, or -1 (nothing bound) when one of the three is NULL. */
int nncas_bind_lapack(sytrf_fn *sytrf, syrk_fn *syrk, gemv_fn *gemv, threads_fn *threads)
{
    if (!sytrf || !syrk || !gemv) return -1;
    dsytrf = sytrf;
    dsyrk = syrk;
    dgemv = gemv;
    threads_local = threads;
    return 0;
}

static int one_thread(void) { return threads_local ? threads_local(1) : 0; }
static void restore_threads(int threads)
{
    if (threads_local) threads_local(threads);
}

#define SYTRF_BLOCK 32
/* IFLAG of a factorization before nncas_bind_lapack: an error, IPOPT stops */
#define NOT_BOUND (-9)
#define MA27_ICNTL 30
#define MA27_CNTL 5
#define MA27_INFO 20
#define THRESHOLD_MAX 0.5          /* MA27 takes CNTL(1) above 0.5 as 0.5 */
#define TOO_LARGE (INT_MAX / 2)    /* sizes IPOPT can still grow by its default factor */
#define SIZE_OVERFLOW (-8)         /* IFLAG for a size above TOO_LARGE */

static size_t values_needed(int n, int nz, int e, int coupled)
{
    return (size_t)nz + 2 * (size_t)n + (size_t)e * (size_t)coupled + (size_t)(n - e) * (size_t)(n - e);
}
static int integers_needed(int n) { return 2 * n + 2; }

/* The arrays' regions (see the header) */
typedef struct {
    int n, e, b, c;  /* rows in E, the rest, the rest's rows coupled to E (its first c) */
    double *p, *schur, *s, *r;
    int *pivots, *where;
} Layout;

static Layout layout_of(double *a, int la, int *iw, int n, int e, int c)
{
    Layout f = {n, e, n - e, c, NULL, NULL, NULL, NULL, iw, iw + n};
    f.r = a + (size_t)la - (size_t)n;
    f.s = f.r - n;
    f.schur = f.s - (size_t)f.b * (size_t)f.b;
    f.p = f.schur - (size_t)e * (size_t)c;
    return f;
}

void ma27id_(int *icntl, double *cntl)
{
    memset(icntl, 0, MA27_ICNTL * sizeof(int));
    memset(cntl, 0, MA27_CNTL * sizeof(double));
    icntl[0] = 6;      /* error stream (unused: this library prints nothing) */
    icntl[1] = 6;      /* warning stream */
    cntl[0] = 0.1;     /* u, the threshold of E's pivot test (MA27's default) */
    cntl[2] = 0.0;     /* pivots of modulus <= CNTL(3) count as zero (besides the rounding test) */
}

/* Whether a 1-based entry (i, j) lies in the n x n matrix (MA27 ignores those that do not) */
static int inside(int i, int j, int n) { return i >= 1 && i <= n && j >= 1 && j <= n; }

/* The rows' roles in IKEEP from the analysis */
enum { REST = 0, ELIMINATED = 1, COUPLED = 2 };

/* Cost model of a split: E's SYRK (e x c columns, c the rows coupled to E) and the rest's LDL^T */
static double split_cost(double e, double coupled, double rest) { return e * coupled * coupled + rest * rest * rest / 3.0; }

/* E from the sparsity, greedily in row order: a row with a diagonal entry and no neighbour in
 * E joins when that lowers split_cost (a row that would couple many new rows to E, such as one
 * of a dense Hessian block, stays out). role[] gets ELIMINATED, COUPLED (a neighbour of E) or
 * REST. Returns E's size (and the coupled rows' count in *coupled), or -1 when memory runs out. */
static int eliminated_rows(int n, int nz, const int *irn, const int *icn, int *role, int *coupled)
{
    int *start = calloc((size_t)n + 1, sizeof(int)), *neighbours = malloc(2 * (size_t)nz * sizeof(int) + 1);
    char *diagonal = calloc((size_t)n, 1);
    int e = -1;
    if (!start || !neighbours || !diagonal) goto done;
    for (int k = 0; k < nz; ++k) {
        if (!inside(irn[k], icn[k], n)) continue;
        int i = irn[k] - 1, j = icn[k] - 1;
        if (i == j) diagonal[i] = 1;
        else { ++start[i + 1]; ++start[j + 1]; }
    }
    for (int i = 0; i < n; ++i) start[i + 1] += start[i];
    for (int k = 0; k < nz; ++k) {
        int i = irn[k] - 1, j = icn[k] - 1;
        if (!inside(irn[k], icn[k], n) || i == j) continue;
        neighbours[start[i]++] = j;
        neighbours[start[j]++] = i;
    }
    for (int i = n; i > 0; --i) start[i] = start[i - 1];  /* back to the row starts */
    start[0] = 0;
    for (int i = 0; i < n; ++i) role[i] = REST;
    e = 0;
    *coupled = 0;
    for (int i = 0; i < n; ++i) {
        if (!diagonal[i] || role[i] != REST) continue;
        int added = 0;  /* neighbours not yet coupled (duplicates of an entry count twice: a bound) */
        for (int k = start[i]; k < start[i + 1]; ++k) added += role[neighbours[k]] == REST;
        const int rest = n - e;
        if (split_cost(e + 1, *coupled + added, rest - 1) > split_cost(e, *coupled, rest)) continue;
        role[i] = ELIMINATED;
        ++e;
        for (int k = start[i]; k < start[i + 1]; ++k)
            if (role[neighbours[k]] == REST) { role[neighbours[k]] = COUPLED; ++*coupled; }
    }
done:
    free(start); free(neighbours); free(diagonal);
    return e;
}

void ma27ad_(int *n, int *nz, const int *irn, const int *icn, int *iw, int *liw, int *ikeep, int *iw1,
             int *nsteps, int *iflag, int *icntl, double *cntl, int *info, double *ops)
{
    (void)iw; (void)liw; (void)iw1; (void)iflag; (void)icntl; (void)cntl;
    memset(info, 0, MA27_INFO * sizeof(int));
    if (*n < 1) { info[0] = -1; info[1] = *n; return; }
    if (*nz < 0) { info[0] = -2; info[1] = *nz; return; }
    if (*n > TOO_LARGE / 2 - 1) { info[0] = SIZE_OVERFLOW; info[1] = *n; return; }  /* LIW = 2n + 2 */
    int outside = 0;
    for (int k = 0; k < *nz; ++k)
        outside += !inside(irn[k], icn[k], *n);
    int coupled = 0, e = eliminated_rows(*n, *nz, irn, icn, ikeep, &coupled);
    if (e < 0) { info[0] = -7; return; }
    int b = *n - e;
    size_t need = values_needed(*n, *nz, e, coupled);
    if (need > (size_t)TOO_LARGE) { info[0] = SIZE_OVERFLOW; info[1] = b; return; }
    if (outside) { info[0] = 1; info[1] = outside; }  /* MA27's warning: such entries are ignored */
    *nsteps = 1;
    info[4] = (int)need;               /* NRLNEC: reals needed */
    info[5] = integers_needed(*n);     /* NIRNEC: integers needed */
    *ops = split_cost(e, coupled, b);
}

/* Where each row goes, by role: -1 - k E's k-th; k >= 0 the rest's k-th, the rows coupled to E
 * first. Returns E's size, and the coupled rows' count in *c. */
static int place_rows(int n, const int *role, int *where, int *c)
{
    int e = 0, coupled = 0, uncoupled = 0;
    for (int i = 0; i < n; ++i) coupled += role[i] == COUPLED;
    *c = coupled;
    coupled = 0;
    for (int i = 0; i < n; ++i)
        where[i] = role[i] == ELIMINATED ? -1 - e++ : role[i] == COUPLED ? coupled++ : *c + uncoupled++;
    return e;
}

/* The entries times `factor` (1, or a power of two when sums overflowed) summed into P (C^T over
 * the coupled rows), the rest's lower triangle and E's pivots (in r). An entry between E and an
 * uncoupled row (a structure other than the analysis saw) sends its E row back to the rest
 * (role), to be gathered again. Returns 0, or the 1-based position of the first entry that is
 * not finite (or, scaled, below DBL_MIN); *moved counts the rows sent back. */
static int gather(int n, int nz, const int *irn, const int *icn, const double *a, double factor, Layout *f,
                  int *role, int *moved)
{
    const int e = f->e, b = f->b, c = f->c;
    memset(f->p, 0, ((size_t)e * c + (size_t)b * b) * sizeof(double));
    for (int k = 0; k < e; ++k) f->r[k] = 0.0;
    *moved = 0;
    for (int k = 0; k < nz; ++k) {
        int i = irn[k], j = icn[k];
        if (!inside(i, j, n)) continue;
        --i; --j;
        const double v = a[k] * factor;
        if (!(fabs(a[k]) <= DBL_MAX) || (factor != 1.0 && a[k] != 0.0 && fabs(v) < DBL_MIN)) return k + 1;
        int wi = f->where[i], wj = f->where[j];
        if (wi >= 0 && wj >= 0) {
            const int row = wi > wj ? wi : wj, col = wi > wj ? wj : wi;
            f->schur[(size_t)col * b + row] += v;
            continue;
        }
        if (wi < 0 && wj < 0) {  /* two rows of E: only the diagonal (E's rows have no other entries among them) */
            if (i == j) f->r[-1 - wi] += v;
            else if (role[i] == ELIMINATED) { role[i] = REST; ++*moved; }
            continue;
        }
        if (wj < 0) { int t = wi; wi = wj; wj = t; t = i; i = j; j = t; }  /* now i in E, j in the rest */
        if (wj < c) f->p[(size_t)wj * e + (-1 - wi)] += v;
        else if (role[i] == ELIMINATED) { role[i] = REST; ++*moved; }
    }
    return 0;
}

static void raise_to(double *maximum, double v)
{
    if (fabs(v) > *maximum) *maximum = fabs(v);
}

/* The summed entries' row maxima: E's rows in e_max, the rest's in rest_max. Returns 0, or 1
 * when a sum is not finite (finite entries whose sum overflowed). */
static int row_maxima(const Layout *f, double *e_max, double *rest_max)
{
    const int e = f->e, b = f->b, c = f->c;
    for (int k = 0; k < e; ++k) e_max[k] = fabs(f->r[k]);
    for (int k = 0; k < b; ++k) rest_max[k] = 0.0;
    for (int col = 0; col < c; ++col) {
        const double *column = f->p + (size_t)col * e;
        for (int k = 0; k < e; ++k) { raise_to(e_max + k, column[k]); raise_to(rest_max + col, column[k]); }
    }
    for (int col = 0; col < b; ++col) {
        const double *lower = f->schur + (size_t)col * b;
        for (int row = col; row < b; ++row) { raise_to(rest_max + row, lower[row]); raise_to(rest_max + col, lower[row]); }
    }
    for (int k = 0; k < e; ++k) if (!(e_max[k] <= DBL_MAX)) return 1;
    for (int k = 0; k < b; ++k) if (!(rest_max[k] <= DBL_MAX)) return 1;
    return 0;
}

/* Scales everything to S K S (S from the summed entries' row maxima; s also carries
 * sqrt(factor) back, so that the solve sees the unscaled matrix) and tests E's pivots: a row
 * of E whose d == 0 or |d| < u max_j |c_j| goes back to the rest (role). Returns how many
 * went, -1 when memory runs out, or -2 when a sum overflowed; when none went, r holds
 * sign(d) |d|^-1/2 and P's rows carry |d|^-1/2. */
static int scale_and_test(int n, Layout *f, double u, double factor, int *role)
{
    const int e = f->e, b = f->b, c = f->c;
    double *e_scale = malloc(((size_t)e + 1) * sizeof(double)), *column_max = calloc((size_t)e + 1, sizeof(double));
    double *rest_scale = malloc(((size_t)b + 1) * sizeof(double));
    if (!e_scale || !column_max || !rest_scale) { free(e_scale); free(column_max); free(rest_scale); return -1; }
    if (row_maxima(f, e_scale, rest_scale)) { free(e_scale); free(column_max); free(rest_scale); return -2; }
    for (int k = 0; k < e; ++k) e_scale[k] = e_scale[k] > 0.0 ? 1.0 / sqrt(e_scale[k]) : 1.0;
    for (int k = 0; k < b; ++k) rest_scale[k] = rest_scale[k] > 0.0 ? 1.0 / sqrt(rest_scale[k]) : 1.0;
    const double back = sqrt(factor);  /* exact: factor is an even power of two */
    for (int i = 0; i < n; ++i)
        f->s[i] = back * (f->where[i] < 0 ? e_scale[-1 - f->where[i]] : rest_scale[f->where[i]]);
    for (int col = 0; col < b; ++col) {
        double *lower = f->schur + (size_t)col * b;
        const double sc = rest_scale[col];
        for (int row = col; row < b; ++row) lower[row] *= rest_scale[row] * sc;
    }
    for (int col = 0; col < c; ++col) {
        double *column = f->p + (size_t)col * e;
        const double sc = rest_scale[col];
        for (int k = 0; k < e; ++k) {
            column[k] *= e_scale[k] * sc;
            if (fabs(column[k]) > column_max[k]) column_max[k] = fabs(column[k]);
        }
    }
    int moved = 0;
    for (int i = 0; i < n; ++i) {
        if (f->where[i] >= 0) continue;
        const int k = -1 - f->where[i];
        const double d = f->r[k] * e_scale[k] * e_scale[k];
        if (d == 0.0 || fabs(d) < u * column_max[k]) { role[i] = REST; ++moved; continue; }
        f->r[k] = copysign(1.0 / sqrt(fabs(d)), d);
    }
    if (!moved)
        for (int col = 0; col < c; ++col) {
            double *column = f->p + (size_t)col * e;
            for (int k = 0; k < e; ++k) column[k] *= fabs(f->r[k]);
        }
    free(e_scale); free(column_max); free(rest_scale);
    return moved;
}

/* The runs of E's rows whose pivots share a sign: [start, *end) and the sign */
static int run_from(const Layout *f, int start, int *end)
{
    const int negative = f->r[start] < 0;
    for (*end = start + 1; *end < f->e && (f->r[*end] < 0) == negative; ++*end) {}
    return negative;
}

/* x[0..c) -= P^T sign(r) y: one GEMV per run of E rows whose pivots share a sign. */
static void subtract_signed(const Layout *f, const double *y, double *x)
{
    const int e = f->e, c = f->c, one = 1;
    const double plus = 1.0;
    for (int start = 0, end; start < e; start = end) {
        const double alpha = run_from(f, start, &end) ? 1.0 : -1.0;
        const int rows = end - start;
        dgemv("T", &rows, &c, &alpha, f->p + start, &e, y + start, &one, &plus, x, &one);
    }
}

/* The coupled block of S: B - P^T sign(r) P, one SYRK per run of E rows sharing a sign. */
static void schur_complement(const Layout *f)
{
    const int e = f->e, b = f->b, c = f->c;
    const double plus = 1.0;
    for (int start = 0, end; start < e; start = end) {
        const double alpha = run_from(f, start, &end) ? 1.0 : -1.0;
        const int rows = end - start;
        dsyrk("L", "T", &c, &rows, &alpha, f->p + start, &e, &plus, f->schur, &b);
    }
}

/* What each diagonal entry of the rest is formed from, before dsytrf: its value after E's
 * elimination plus the magnitudes E's terms subtracted from it (the column sums of P^2). */
static void diagonal_magnitudes(const Layout *f, double *magnitude)
{
    const int e = f->e, b = f->b, c = f->c;
    for (int k = 0; k < b; ++k) {
        double sum = fabs(f->schur[(size_t)k * b + k]);
        if (k < c)
            for (int j = 0; j < e; ++j) sum += f->p[(size_t)k * e + j] * f->p[(size_t)k * e + j];
        magnitude[k] = sum;
    }
}

static void swap(double *v, int i, int j) { double t = v[i]; v[i] = v[j]; v[j] = t; }

/* Walks dsytrf's pivots: counts the negative and zero eigenvalues of D (a pivot is zero when
 * |p| <= max(floor, n eps m), m what it was formed from: `magnitude`, carried through the
 * interchanges, plus the earlier pivots' terms |l|^2 |D|), and puts D's pseudo-inverse in
 * place of D (zero eigenvalues give zero). */
static void pivots_to_inverse(const Layout *f, double *magnitude, double floor, int *negative, int *zero)
{
    const int b = f->b;
    const double relative = f->n * DBL_EPSILON;
    double *a = f->schur;
    for (int k = 0; k < b;) {
        double *col = a + (size_t)k * b;
        if (f->pivots[k] > 0) {
            swap(magnitude, k, f->pivots[k] - 1);
            const double p = col[k], d = fabs(p);
            for (int i = k + 1; i < b; ++i) magnitude[i] += col[i] * col[i] * d;
            if (d <= fmax(floor, relative * magnitude[k])) { ++*zero; col[k] = 0.0; }
            else { *negative += p < 0; col[k] = 1.0 / p; }
            k += 1;
            continue;
        }
        double *next = col + b;
        swap(magnitude, k + 1, -f->pivots[k] - 1);
        const double p = col[k], q = col[k + 1], r = next[k + 1];
        for (int i = k + 2; i < b; ++i)
            magnitude[i] += col[i] * col[i] * fabs(p) + 2 * fabs(col[i] * next[i] * q) + next[i] * next[i] * fabs(r);
        const double tol = fmax(floor, relative * fmax(magnitude[k], magnitude[k + 1]));
        const double mean = 0.5 * (p + r), radius = hypot(0.5 * (p - r), q);
        const double big = mean >= 0 ? mean + radius : mean - radius, det = p * r - q * q;
        const double small = big != 0.0 ? det / big : 0.0;
        const int big_zero = fabs(big) <= tol, small_zero = fabs(small) <= tol;
        *zero += big_zero + small_zero;
        *negative += (!big_zero && big < 0) + (!small_zero && small < 0);
        if (!big_zero && !small_zero) {  /* the inverse */
            col[k] = r / det; col[k + 1] = -q / det; next[k + 1] = p / det;
        } else if (!big_zero) {  /* (1 / big) v v^T, v big's unit eigenvector */
            double vx = q, vy = big - p;
            if (fabs(big - r) + fabs(q) > fabs(vx) + fabs(vy)) { vx = big - r; vy = q; }
            const double norm = hypot(vx, vy);
            vx /= norm; vy /= norm;
            col[k] = vx * vx / big; col[k + 1] = vx * vy / big; next[k + 1] = vy * vy / big;
        } else {
            col[k] = col[k + 1] = next[k + 1] = 0.0;
        }
        k += 2;
    }
}

/* x = P L^-T D^+ L^-1 P^T x with dsytrf's L and the pseudo-inverse of D left by
 * pivots_to_inverse (LAPACK dsytrs's order of interchanges, lower triangle). */
static void dense_solve(const Layout *f, double *x)
{
    const int b = f->b;
    const double *a = f->schur;
    for (int k = 0; k < b;) {  /* L^-1, interchanges first */
        const double *col = a + (size_t)k * b;
        if (f->pivots[k] > 0) {
            swap(x, k, f->pivots[k] - 1);
            const double xk = x[k];
            for (int i = k + 1; i < b; ++i) x[i] -= col[i] * xk;
            k += 1;
        } else {
            const double *next = col + b;
            swap(x, k + 1, -f->pivots[k] - 1);
            const double xk = x[k], xn = x[k + 1];
            for (int i = k + 2; i < b; ++i) x[i] -= col[i] * xk + next[i] * xn;
            k += 2;
        }
    }
    for (int k = 0; k < b;) {  /* D^+ */
        const double *col = a + (size_t)k * b;
        if (f->pivots[k] > 0) { x[k] *= col[k]; k += 1; continue; }
        const double xk = x[k], xn = x[k + 1];
        x[k] = col[k] * xk + col[k + 1] * xn;
        x[k + 1] = col[k + 1] * xk + col[b + k + 1] * xn;
        k += 2;
    }
    for (int k = b - 1; k >= 0;) {  /* L^-T, interchanges last */
        const double *col = a + (size_t)k * b;
        double dot = 0.0;
        for (int i = k + 1; i < b; ++i) dot += col[i] * x[i];
        x[k] -= dot;
        if (f->pivots[k] > 0) { swap(x, k, f->pivots[k] - 1); k -= 1; continue; }
        const double *previous = col - b;
        dot = 0.0;
        for (int i = k + 1; i < b; ++i) dot += previous[i] * x[i];
        x[k - 1] -= dot;
        swap(x, k, -f->pivots[k] - 1);
        k -= 2;
    }
}

/* The power of two that keeps nz summed entries of modulus <= DBL_MAX finite (even, so that its
 * square root is exact) */
static double overflow_factor(int nz)
{
    int shift = 2;
    while (ldexp(1.0, shift) < (double)nz) shift += 2;
    return ldexp(1.0, -(shift + 2));
}

void ma27bd_(int *n_, int *nz_, const int *irn, const int *icn, double *a, int *la, int *iw, int *liw,
             int *ikeep, int *nsteps, int *maxfrt, int *iw1, int *icntl, double *cntl, int *info)
{
    (void)nsteps; (void)iw1; (void)icntl;
    const int n = *n_, nz = *nz_;
    memset(info, 0, MA27_INFO * sizeof(int));
    if (!dsytrf) { info[0] = NOT_BOUND; return; }
    if (*liw < integers_needed(n)) { info[0] = -3; info[1] = integers_needed(n); return; }
    const double u = fmin(fmax(cntl[0], 0.0), THRESHOLD_MAX);
    double factor = 1.0;
    int *role = malloc((size_t)n * sizeof(int));
    if (!role) { info[0] = -7; return; }
    for (int i = 0; i < n; ++i) role[i] = ikeep[i] == ELIMINATED || ikeep[i] == COUPLED ? ikeep[i] : REST;
    Layout f;
    for (;;) {  /* rows that leave E do not change the others' tests: twice in all, as a rule */
        int c, moved;
        const int e = place_rows(n, role, iw + n, &c);
        size_t need = values_needed(n, nz, e, c);
        if (need > (size_t)TOO_LARGE) { free(role); info[0] = SIZE_OVERFLOW; info[1] = n - e; return; }
        if ((size_t)*la < need) { free(role); info[0] = -4; info[1] = (int)need; return; }
        f = layout_of(a, *la, iw, n, e, c);
        int bad = gather(n, nz, irn, icn, a, factor, &f, role, &moved);
        if (bad) { free(role); info[0] = -6; info[1] = bad; return; }
        if (moved) continue;
        moved = scale_and_test(n, &f, u, factor, role);
        if (moved == -2 && factor == 1.0) { factor = overflow_factor(nz); continue; }
        if (moved < 0) { free(role); info[0] = moved == -2 ? -6 : -7; return; }
        if (!moved) break;
    }
    free(role);
    iw[2 * n] = f.e;
    iw[2 * n + 1] = f.c;
    const int b = f.b;

    double *magnitude = malloc(((size_t)b + 1) * sizeof(double));
    if (!magnitude) { info[0] = -7; return; }
    const int threads = one_thread();
    int lapack_info = 0, negative = 0, zero = 0;
    for (int k = 0; k < f.e; ++k) negative += f.r[k] < 0;
    if (f.e > 0 && f.c > 0) schur_complement(&f);
    diagonal_magnitudes(&f, magnitude);
    if (b > 0) {
        /* dsytrf's block size is lwork / b: 32 factored the 785-row KKT matrix of problem 7
         * about 10 % faster than LAPACK's default 64 on one thread (16-32 alike, 96-192 slower) */
        int lwork = b * SYTRF_BLOCK;
        double *work = malloc((size_t)lwork * sizeof(double));
        if (!work) { restore_threads(threads); free(magnitude); info[0] = -7; return; }
        dsytrf("L", &b, f.schur, &b, f.pivots, work, &lwork, &lapack_info);
        free(work);
    }
    restore_threads(threads);
    if (lapack_info < 0) { free(magnitude); info[0] = -7; info[1] = lapack_info; return; }
    pivots_to_inverse(&f, magnitude, fmax(cntl[2], 0.0), &negative, &zero);
    free(magnitude);
    *maxfrt = n;  /* ma27cd's workspace W: n doubles */
    info[8] = (int)((size_t)f.e * f.c + (size_t)b * (b + 1) / 2 + f.e);  /* reals holding the factor */
    info[9] = n + b;            /* integers holding it */
    info[14] = negative;        /* NEIG */
    if (zero) { info[0] = 3; info[1] = n - zero; }  /* MA27's rank-deficiency warning, with the rank */
}

/* One solve in place of rhs; only INFO(1) is written. */
void ma27cd_(int *n_, double *a, int *la, int *iw, int *liw, double *w, int *maxfrt, double *rhs, int *iw1,
             int *nsteps, int *icntl, int *info)
{
    (void)liw; (void)maxfrt; (void)iw1; (void)nsteps; (void)icntl;
    const int n = *n_, one = 1;
    Layout f = layout_of(a, *la, iw, n, iw[2 * n], iw[2 * n + 1]);
    const int e = f.e, b = f.b, c = f.c;
    double *y = w, *x = w + e;  /* E's part times |d|^-1/2, then the rest */
    for (int i = 0; i < n; ++i) {
        const int k = f.where[i];
        const double v = rhs[i] * f.s[i];
        if (k < 0) y[-1 - k] = v * fabs(f.r[-1 - k]);
        else x[k] = v;
    }
    const int threads = one_thread();
    if (e > 0 && c > 0) subtract_signed(&f, y, x);  /* x -= C D^-1 (rhs's E part) */
    if (b > 0) dense_solve(&f, x);
    if (e > 0 && c > 0) {  /* y -= P x, row by row: P's rows carry |d|^-1/2 */
        const double minus = -1.0, plus = 1.0;
        dgemv("N", &e, &c, &minus, f.p, &e, x, &one, &plus, y, &one);
    }
    restore_threads(threads);
    for (int i = 0; i < n; ++i) {
        const int k = f.where[i];
        const double v = k >= 0 ? x[k] : f.r[-1 - k] * y[-1 - k];  /* sign(d) |d|^-1/2 y */
        rhs[i] = v * f.s[i];
    }
    info[0] = 0;
}
