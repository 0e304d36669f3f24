"""Exact linear algebra on SymPy's DomainMatrix.

SymPy's ``Matrix`` re-simplifies every entry after every operation, which makes repeated products
with a symbolic learning rate explode; ``DomainMatrix`` keeps entries in a ground domain (QQ, QQ[eta],
QQ(a, b)) where arithmetic is polynomial arithmetic, orders of magnitude faster.
"""

from __future__ import annotations

from collections.abc import Sequence

import sympy as sp
from sympy.polys.constructor import construct_domain
from sympy.polys.matrices import DomainMatrix

_T = sp.Symbol("t")


def to_domain(rows: Sequence[Sequence[sp.Expr]], *extra: sp.Expr, field: bool = False) -> DomainMatrix:
    """A DomainMatrix over the smallest domain holding ``rows`` and the ``extra`` elements."""
    nrows = len(rows)
    ncols = len(rows[0]) if nrows else 0
    flat = [sp.sympify(e, strict=True) for row in rows for e in row]
    # extension=True: sqrt(2) becomes an element of QQ<sqrt(2)> instead of the slow generic EX domain
    domain, elements = construct_domain(flat + [sp.sympify(e, strict=True) for e in extra], field=field, extension=True)
    # use the converted elements: an unexpanded entry such as k*x + x*(s - k) converts only after
    # construct_domain has expanded it
    it = iter(elements[: len(flat)])
    return DomainMatrix([[next(it) for _ in range(ncols)] for _ in range(nrows)], (nrows, ncols), domain)


def unify(*matrices: DomainMatrix) -> tuple[DomainMatrix, ...]:
    """Convert matrices to one common domain."""
    domain = matrices[0].domain
    for m in matrices[1:]:
        domain = domain.unify(m.domain)
    return tuple(m.convert_to(domain) for m in matrices)


def column(values: Sequence[sp.Expr]) -> list[list[sp.Expr]]:
    """Rows of a column vector."""
    return [[v] for v in values]


def entries(m: DomainMatrix) -> list[sp.Expr]:
    """The entries of a matrix (row-major) as SymPy expressions."""
    domain = m.domain
    return [domain.to_sympy(e) for row in m.to_list() for e in row]


def to_matrix(m: DomainMatrix) -> sp.ImmutableMatrix:
    """An immutable SymPy matrix with the same entries."""
    rows, cols = m.shape
    return sp.ImmutableMatrix(rows, cols, entries(m))


def identity(n: int, domain) -> DomainMatrix:
    """The n-by-n identity over ``domain``."""
    return DomainMatrix.eye(n, domain)


def rank(m: DomainMatrix) -> int:
    """Exact rank."""
    return m.to_field().rank()


def pinv_apply(j: DomainMatrix, v: DomainMatrix) -> DomainMatrix:
    """Exactly J^+ v, the minimum-norm least-squares solution of J z = v.

    Full row rank: J^T (J J^T)^-1 v; full column rank: (J^T J)^-1 J^T v; otherwise the rank
    factorisation J = F G (F: pivot columns of J, G: non-zero rows of rref(J)) with
    J^+ = G^T (G G^T)^-1 (F^T F)^-1 F^T. The first two forms matter for symbolic entries: they divide
    only by det(J J^T) or det(J^T J), never by a pivot that vanishes at some values of the symbols.
    """
    j, v = unify(j.to_field(), v.to_field())
    n, p = j.shape
    r = j.rank()
    jt = j.transpose()
    if r == 0:
        return DomainMatrix.zeros((p, 1), j.domain)
    if r == n:
        return jt * (j * jt).lu_solve(v)
    if r == p:
        return (jt * j).lu_solve(jt * v)
    reduced, pivots = j.rref()
    g = reduced.extract(list(range(r)), list(range(p)))
    f = j.extract(list(range(n)), list(pivots))
    ft = f.transpose()
    gt = g.transpose()
    inner = (ft * f).inv() * (ft * v)
    return gt * ((g * gt).inv() * inner)


def solve(a: DomainMatrix, v: DomainMatrix) -> DomainMatrix:
    """Exactly a^-1 v for an invertible square ``a``."""
    a, v = unify(a.to_field(), v.to_field())
    return a.lu_solve(v)


def largest_eigenvalue(sym: DomainMatrix, along: DomainMatrix | None = None) -> sp.Expr | None:
    """The largest eigenvalue of a symmetric positive semi-definite matrix, exactly.

    With ``along`` (a column vector) it is the largest eigenvalue whose eigenspace ``along`` has a
    component in: the largest root of the minimal polynomial of ``along`` (see
    :func:`vector_minimal_polynomial`), so no eigenvector is ever computed, and eigenvalues that are
    irrational are told apart exactly. Zero when no non-zero eigenvalue is reached.

    Roots come back as rationals, radicals or ``CRootOf``; zero is returned when the matrix is zero,
    and None when the entries are transcendental (exp(1), sin(2)) and the polynomial has degree three
    or more, where no exact form exists.
    """
    if along is None and sym.shape == (1, 1):
        return sym.domain.to_sympy(sym.to_list()[0][0])
    if along is None:
        poly = sp.Poly([sym.domain.to_sympy(c) for c in sym.charpoly()], _T)
    else:
        poly = vector_minimal_polynomial(sym, along)
    # Zero eigenvalues (a rank-deficient Gram matrix) only slow root isolation down.
    while poly.degree() > 0 and poly.eval(0) == 0:
        poly = sp.Poly(sp.quo(poly, sp.Poly(_T, _T)), _T)
    if poly.degree() <= 0:
        return sp.Integer(0)
    try:
        roots = poly.real_roots(radicals=poly.degree() <= 2)
    except (NotImplementedError, sp.PolynomialError):
        # Coefficients such as exp(1) or sin(2) (features that are not polynomials): SymPy isolates
        # roots only over the rationals. A quadratic still has its closed form; beyond that there is
        # no exact answer to give.
        if poly.degree() > 2:
            return None
        a, b, c = ([sp.Integer(0)] * 3 + poly.all_coeffs())[-3:]
        if a == 0:
            return sp.radsimp(-c / b)
        return (-b + sp.sqrt(b**2 - 4 * a * c)) / (2 * a)
    return roots[-1]


def vector_minimal_polynomial(sym: DomainMatrix, vector: DomainMatrix) -> sp.Poly:
    """The monic polynomial m of least degree with m(sym) vector = 0, exactly (a Krylov basis).

    For a symmetric ``sym`` its roots are exactly the eigenvalues whose eigenspaces ``vector`` has a
    component in (the constant 1 for a zero vector). Built from vector, sym vector, sym^2 vector, ...
    until the next power is a combination of the earlier ones; the combination is m.
    """
    sym, vector = unify(sym.to_field(), vector.to_field())
    domain = sym.domain
    krylov = [vector]
    while True:
        columns = DomainMatrix.hstack(*krylov)
        if columns.rank() < len(krylov):
            break
        krylov.append(sym * krylov[-1])
    k = len(krylov) - 1  # the first k vectors are independent, the (k+1)-th depends on them
    if k == 0:
        return sp.Poly(1, _T)
    basis = DomainMatrix.hstack(*krylov[:k])
    # least squares on an exactly consistent system: (B^T B) c = B^T v_k
    bt = basis.transpose()
    coeffs = entries((bt * basis).lu_solve(bt * krylov[k]))
    return sp.Poly([domain.to_sympy(domain.one)] + [-c for c in reversed(coeffs)], _T)
