"""Gray-box oracles: CasADi functions for y = NN(u), its Jacobian and the Hessian of lam^T NN(u).

Every oracle offers the same three CasADi functions, which :func:`nncas.solver` assembles
into the constraint Jacobian and the Lagrangian Hessian with one call each per iteration:

- ``function``: u (n_in) -> y (n_out)
- ``jacobian``: u -> dy/du (n_out x n_in, dense)
- ``hessian``:  u, lam (n_out) -> d^2 (lam^T NN(u)) / du^2 (n_in x n_in, dense)
"""
