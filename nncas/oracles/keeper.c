/* nncas_keeper: a CasADi external function that owns one Python object.
 *
 * CasADi calls nncas_keeper_incref() when it creates a Function of this library and
 * nncas_keeper_decref() when it destroys one (the library stays loaded until that returns).
 * The first incref takes a reference to the owner set by nncas_keeper_hold, the last decref
 * gives it back: a gray box's expression graph, holding a call of the keeper, keeps its Python
 * callback alive, and frees it with the last Function that uses it (nncas/oracles/keeper.py).
 * Each gray box loads its own copy of this file, so each copy holds one owner.
 *
 * Evaluated, the keeper writes 0, which nncas adds to the gray box's output (a sum survives
 * CasADi's SX expansion, an assertion would not); its Jacobian (jac_nncas_keeper) is empty. It
 * links no Python: the CPython functions arrive as pointers, so it loads into any process that
 * runs nncas.
 */
typedef long long casadi_int;

static void *owner;
static void (*incref_owner)(void *), (*decref_owner)(void *);
static int (*gil_ensure)(void), (*python_running)(void);
static void (*gil_release)(int);
static long count;  /* live CasADi Functions of this copy; changed with the GIL held */

/* 0 x 1 with no nonzeros (the input), and a dense scalar (the output): CasADi's compressed
 * column format (rows, columns, column offsets, row indices). */
static const casadi_int no_entries[4] = {0, 1, 0, 0};
static const casadi_int scalar[5] = {1, 1, 0, 1, 0};
static const casadi_int no_columns[3] = {1, 0, 0};  /* 1 x 0: the Jacobian */

void nncas_keeper_hold(void *object, void *incref, void *decref, void *ensure, void *release, void *running) {
    owner = object;
    incref_owner = (void (*)(void *))incref;
    decref_owner = (void (*)(void *))decref;
    gil_ensure = (int (*)(void))ensure;
    gil_release = (void (*)(int))release;
    python_running = (int (*)(void))running;
}

void nncas_keeper_incref(void) {
    if (!owner || !python_running()) return;
    int state = gil_ensure();
    if (count++ == 0) incref_owner(owner);
    gil_release(state);
}

void nncas_keeper_decref(void) {
    if (!owner || !python_running()) return;  /* after Python's shutdown: nothing to free */
    int state = gil_ensure();
    if (--count == 0) decref_owner(owner);
    gil_release(state);
}

casadi_int nncas_keeper_n_in(void) { return 1; }
casadi_int nncas_keeper_n_out(void) { return 1; }
const casadi_int *nncas_keeper_sparsity_in(casadi_int i) { (void)i; return no_entries; }
const casadi_int *nncas_keeper_sparsity_out(casadi_int i) { (void)i; return scalar; }

int nncas_keeper(const double **arg, double **res, casadi_int *iw, double *w, int mem) {
    (void)arg; (void)iw; (void)w; (void)mem;
    if (res[0]) res[0][0] = 0;
    return 0;
}

/* its Jacobian (input, nominal output) -> d out / d in: 1 x 0, nothing to compute */
casadi_int jac_nncas_keeper_n_in(void) { return 2; }
casadi_int jac_nncas_keeper_n_out(void) { return 1; }
const casadi_int *jac_nncas_keeper_sparsity_in(casadi_int i) { return i == 0 ? no_entries : scalar; }
const casadi_int *jac_nncas_keeper_sparsity_out(casadi_int i) { (void)i; return no_columns; }

int jac_nncas_keeper(const double **arg, double **res, casadi_int *iw, double *w, int mem) {
    (void)arg; (void)res; (void)iw; (void)w; (void)mem;
    return 0;
}
