"""The naive way to make homework variants, for comparison with `symreparam generate` (not a test).

For every variant it draws the same quantities as the reparam-one-step family, re-derives everything
the answer key shows with SymPy (diff, subs, expand, eigenvalues, latex) and renders one Jinja template
with the results, writing one .tex file. This is what a careful instructor's script would do without
deriving once and substituting.
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

import jinja2
import sympy as sp

TEMPLATE = r"""\section*{Variant {{ i }}}
$f_1(x) = {{ f1 }}$ from {{ init1 }}; $f_2(x) = {{ f2 }}$ from {{ init2 }}; data $({{ x0 }}, {{ y0 }})$,
learning rate ${{ lr }}$, loss {{ loss }}.
{% for m in models %}
\[ r = {{ m.r }},\quad {% for g in m.grads %}{{ g }},\ {% endfor %} \]
\[ {% for u in m.updates %}{{ u }},\ {% endfor %} \quad f(x) = {{ m.new }} \]
{% endfor %}
Slope moves ${{ d1 }}$ and ${{ d2 }}$ (ratio ${{ ratio }}$), bias ${{ db }}$; $P = {{ P }}$;
$\nabla_\theta L = {{ gtheta }}$; stable rates ${{ s1 }}$, ${{ s2 }}$.
"""


def draw(rng: random.Random) -> dict:
    return {"c": rng.choice([2, 3, 4, 5, 10]), "a": rng.randint(-3, 3), "b": rng.randint(-3, 3),
            "x0": rng.randint(1, 9), "y0": rng.randint(-9, 12),
            "lr": sp.Rational(rng.choice(["1/10", "1/20", "1/50", "1/100"])), "loss": rng.choice(["mse", "half-mse"])}


def variant(i: int, rng: random.Random, template: jinja2.Template) -> str:
    x, w1, w2, w3, w4 = sp.symbols("x w1 w2 w3 w4")
    d = draw(rng)
    c, lr = d["c"], d["lr"]
    scale = 1 if d["loss"] == "mse" else sp.Rational(1, 2)
    models = [(w1 * x + w2, (w1, w2), {w1: d["a"], w2: d["b"]}),
              (c * w3 * x + w4, (w3, w4), {w3: sp.Rational(d["a"], c), w4: d["b"]})]
    out, slopes, biases = [], [], []
    for f, params, init in models:
        loss = scale * (f.subs(x, d["x0"]) - d["y0"]) ** 2
        grads = [sp.diff(loss, p).subs(init) for p in params]
        new = {p: init[p] - lr * g for p, g in zip(params, grads)}
        f_new = sp.expand(f.subs(new))
        f_old = sp.expand(f.subs(init))
        slopes.append(f_new.coeff(x, 1) - f_old.coeff(x, 1))
        biases.append(f_new.coeff(x, 0) - f_old.coeff(x, 0))
        hessian = sp.hessian(loss, params)
        lam = max(hessian.eigenvals())
        out.append({
            "r": sp.latex(f.subs(init).subs(x, d["x0"]) - d["y0"]),
            "grads": [sp.latex(g) for g in grads],
            "updates": [sp.latex(new[p]) for p in params],
            "new": sp.latex(f_new),
            "stable": sp.latex(2 / lam),
        })
    a_matrix = sp.Matrix([[c, 0], [0, 1]])
    theta_loss = scale * (sp.Symbol("t1") * d["x0"] + sp.Symbol("t2") - d["y0"]) ** 2
    gtheta = [sp.diff(theta_loss, t).subs({sp.Symbol("t1"): d["a"], sp.Symbol("t2"): d["b"]})
              for t in sp.symbols("t1 t2")]
    return template.render(
        i=i, f1=sp.latex(models[0][0]), f2=sp.latex(models[1][0]), init1=sp.latex(models[0][2]),
        init2=sp.latex(models[1][2]), x0=d["x0"], y0=d["y0"], lr=sp.latex(lr), loss=d["loss"], models=out,
        d1=sp.latex(slopes[0]), d2=sp.latex(slopes[1]), ratio=sp.latex(sp.simplify(slopes[1] / slopes[0])) if slopes[0] else "-",
        db=sp.latex(biases[0]), P=sp.latex(a_matrix * a_matrix.T), gtheta=sp.latex(sp.Matrix(gtheta)),
        s1=out[0]["stable"], s2=out[1]["stable"])


def main(count: int, out: Path) -> float:
    """Generate ``count`` variants into ``out``; return seconds per variant."""
    out.mkdir(parents=True, exist_ok=True)
    template = jinja2.Template(TEMPLATE)
    rng = random.Random(0)
    start = time.perf_counter()
    for i in range(count):
        (out / f"variant-{i}.tex").write_text(variant(i, rng, template))
    return (time.perf_counter() - start) / count


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    print(f"{1000 * main(n, Path(sys.argv[2] if len(sys.argv) > 2 else 'naive-out')):.2f} ms per variant")
