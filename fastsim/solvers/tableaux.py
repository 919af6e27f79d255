"""Butcher tableaux of the explicit Runge–Kutta methods: data only, no stepping code.

A step of an `s`-stage explicit method from `(t, y)` with step `h` is

    k_i = f(t + c_i h, y + h Σ_{j<i} a_ij k_j),      y_new = y + h Σ_i b_i k_i,

with the embedded error estimate `err = h Σ_i (b_i − b̂_i) k_i` where the method has one. A dense output
(continuous extension) of a step is `y(t + θh) = y + h Σ_i b_i(θ) k_i` with the polynomials
`b_i(θ) = Σ_{d=1..D} dense[i][d−1] θ^d` (so `b_i(0) = 0` and `b_i(1) = b_i`). Where a method's dense
output needs stages that the step itself does not (DOP853), those extra stages are listed in
`c_extra`/`a_extra`; the engine evaluates them only when output times lie strictly inside the interval.

Numbers are copied from the original papers and the reference codes: Dormand & Prince (1980) with Shampine's
(1986) dense output as in Hairer's DOPRI5 / scipy RK45; Bogacki & Shampine (1989) as in scipy RK23; Tsitouras
(2011) with his free interpolant; Hairer's DOP853 (scipy `_ivp/dop853_coefficients.py`).
"""

from dataclasses import dataclass, field

import numpy as np
from numpy.polynomial import polynomial as npoly

__all__ = ["Tableau", "TABLEAUX", "get_tableau"]

Row = tuple[float, ...]


@dataclass(frozen=True)
class Tableau:
    """An explicit Runge–Kutta method as data.

    Attributes:
        name: canonical name (a key of `TABLEAUX`).
        order: classical order `p` of `y_new` (local error `O(h^{p+1})`).
        c: `(s,)` stage times.
        a: `s` rows; row `i` holds `a_i0 … a_i,i−1` (row 0 is empty).
        b: `(s,)` weights of the propagated solution.
        b_err: `(s,)` weights `b − b̂` of the embedded error estimate, or None for a fixed-step-only method.
        fsal: the last stage is `f(t + h, y_new)` (First Same As Last: `a[s−1] == b`, `c[s−1] == 1`), so it is
            the next step's first stage.
        dense: `(s + e, D)` dense-output coefficients (`e = len(c_extra)`), or None: the engine then uses
            cubic Hermite interpolation on `y, y_new, f(t, y), f(t + h, y_new)`.
        error_order: order `q` of the error estimate (`err = O(h^{q+1})`); the controller's exponents are
            multiples of `1/(q+1)`.
        dense_order: order of the dense output (its local error is `O(h^{dense_order+1})`).
        b_err_aux: DOP853 only: weights of its auxiliary 3rd-order estimate `err3` (see `error_norm`).
        c_extra, a_extra: stages used only by the dense output (DOP853's three extra stages); `a_extra[m]` has
            `s + m` entries.
    """

    name: str
    order: int
    c: Row
    a: tuple[Row, ...]
    b: Row
    b_err: Row | None
    fsal: bool
    dense: tuple[Row, ...] | None
    error_order: int | None
    dense_order: int | None = None
    b_err_aux: Row | None = None
    c_extra: Row = field(default=())
    a_extra: tuple[Row, ...] = field(default=())

    @property
    def num_stages(self) -> int:
        """Number of stages `s` evaluated per step (FSAL counted once per step)."""
        return len(self.c)

    @property
    def adaptive(self) -> bool:
        """Whether the method has an embedded error estimate (needed for adaptive step sizes)."""
        return self.b_err is not None


def _f(x: object) -> Row:
    return tuple(float(v) for v in x)


# --- fixed-step classics
euler = Tableau("euler", 1, (0.0,), ((),), (1.0,), None, False, None, None)
midpoint = Tableau("midpoint", 2, (0.0, 0.5), ((), (0.5,)), (0.0, 1.0), None, False, None, None)
# Heun's trapezoidal method; its embedded Euler step (b̂ = (1, 0)) makes it usable as "adaptive_heun".
heun = Tableau("heun", 2, (0.0, 1.0), ((), (1.0,)), (0.5, 0.5), (-0.5, 0.5), False, None, 1)
rk4 = Tableau(
    "rk4",
    4,
    (0.0, 0.5, 0.5, 1.0),
    ((), (0.5,), (0.0, 0.5), (0.0, 0.0, 1.0)),
    (1 / 6, 1 / 3, 1 / 3, 1 / 6),
    None,
    False,
    None,
    None,
)

# --- Bogacki–Shampine 3(2), FSAL, cubic Hermite-type dense output (scipy RK23's P)
_bs_b = (2 / 9, 1 / 3, 4 / 9, 0.0)
bosh3 = Tableau(
    "bosh3",
    3,
    (0.0, 0.5, 0.75, 1.0),
    ((), (0.5,), (0.0, 0.75), _bs_b[:3]),
    _bs_b,
    _f(np.subtract(_bs_b, (7 / 24, 1 / 4, 1 / 3, 1 / 8))),
    True,
    ((1.0, -4 / 3, 5 / 9), (0.0, 1.0, -2 / 3), (0.0, 4 / 3, -8 / 9), (0.0, -1.0, 1.0)),
    2,
    dense_order=3,
)

# --- Dormand–Prince 5(4), FSAL, Shampine's quartic dense output
_dp_b = (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0.0)
_dp_bhat = (5179 / 57600, 0.0, 7571 / 16695, 393 / 640, -92097 / 339200, 187 / 2100, 1 / 40)
dopri5 = Tableau(
    "dopri5",
    5,
    (0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0),
    (
        (),
        (1 / 5,),
        (3 / 40, 9 / 40),
        (44 / 45, -56 / 15, 32 / 9),
        (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
        (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
        _dp_b[:6],
    ),
    _dp_b,
    _f(np.subtract(_dp_b, _dp_bhat)),
    True,
    (
        (1.0, -8048581381 / 2820520608, 8663915743 / 2820520608, -12715105075 / 11282082432),
        (0.0, 0.0, 0.0, 0.0),
        (0.0, 131558114200 / 32700410799, -68118460800 / 10900136933, 87487479700 / 32700410799),
        (0.0, -1754552775 / 470086768, 14199869525 / 1410260304, -10690763975 / 1880347072),
        (0.0, 127303824393 / 49829197408, -318862633887 / 49829197408, 701980252875 / 199316789632),
        (0.0, -282668133 / 205662961, 2019193451 / 616988883, -1453857185 / 822651844),
        (0.0, 40617522 / 29380423, -110615467 / 29380423, 69997945 / 29380423),
    ),
    4,
    dense_order=4,
)

# --- Tsitouras 5(4), FSAL, Tsitouras' quartic interpolant
_ts_a = (
    (),
    (0.161,),
    (-0.008480655492356988544426874250230774675121177393430391537369234245294192976164141156943,
     0.3354806554923569885444268742502307746751211773934303915373692342452941929761641411569),
    (2.897153057105493432130432594192938764924887287701866490314866693455023795137503079289,
     -6.359448489975074843148159912383825625952700647415626703305928850207288721235210244366,
     4.362295432869581411017727318190886861027813359713760212991062156752264926097707165077),
    (5.325864828439256604428877920840511317836476253097040101202360397727981648835607691791,
     -11.74888356406282787774717033978577296188744178259862899288666928009020615663593781589,
     7.495539342889836208304604784564358155658679161518186721010132816213648793440552049753,
     -0.09249506636175524925650207933207191611349983406029535244034750452930469056411389539635),
    (5.861455442946420028659251486982647890394337666164814434818157239052507339770711679748,
     -12.92096931784710929170611868178335939541780751955743459166312250439928519268343184452,
     8.159367898576158643180400794539253485181918321135053305748355423955009222648673734986,
     -0.07158497328140099722453054252582973869127213147363544882721139659546372402303777878835,
     -0.02826905039406838290900305721271224146717633626879770007617876201276764571291579142206),
    (0.09646076681806522951816731316512876333711995238157997181903319145764851595234062815396,
     0.01,
     0.4798896504144995747752495322905965199130404621990332488332634944254542060153074523509,
     1.379008574103741893192274821856872770756462643091360525934940067397245698027561293331,
     -3.290069515436080679901047585711363850115683290894936158531296799594813811049925401677,
     2.324710524099773982415355918398765796109060233222962411944060046314465391054716027841),
)  # fmt: skip
_ts_b = (*_ts_a[6], 0.0)
_ts_bhat = (
    0.09468075576583945807478876255758922856117527357724631226139574065785592789071067303271,
    0.009183565540343253096776363936645313759813746240984095238905939532922955247253608687270,
    0.4877705284247615707855642599631228241516691959761363774365216240304071651579571959813,
    1.234297566930478985655109673884237654035539930748192848315425833500484878378061439761,
    -2.707712349983525454881109975059321670689605166938197378763992255714444407154902012702,
    1.866628418170587035753719399566211498666255505244122593996591602841258328965767580089,
    1 / 66,
)  # fmt: skip


def _tsit5_dense() -> tuple[Row, ...]:
    """Tsitouras' interpolant `b_i(θ)` (given in factored form in the paper) expanded into powers θ^1..θ^4."""
    P = npoly.polyfromroots
    q1 = [0.7139816917074209, -1.4364028541716351, 1.0]  # θ² − 1.436…θ + 0.714…
    polys = [
        -1.0530884977290216 * npoly.polymul(P([0.0, 1.3299890189751412]), q1),
        0.1017 * npoly.polymul([0, 0, 1], [1.2949852507374631, -2.1966568338249754, 1]),
        2.490627285651252793 * npoly.polymul([0, 0, 1], [1.57803468208092486, -2.38535645472061657, 1]),
        -16.54810288924490272 * P([0.0, 0.0, 1.21712927295533244, 0.61620406037800089]),
        47.37952196281928122 * P([0.0, 0.0, 1.203071208372362603, 0.658047292653547382]),
        -34.87065786149660974 * P([0.0, 0.0, 1.2, 0.666666666666666667]),
        2.5 * P([0.0, 0.0, 1.0, 0.6]),
    ]
    return tuple(_f(np.pad(p, (0, 5 - len(p)))[1:]) for p in polys)


tsit5 = Tableau(
    "tsit5",
    5,
    (
        0.0,
        0.161,
        0.327,
        0.9,
        0.9800255409045096857298102862870245954942137979563024768854764293221195950761,
        1.0,
        1.0,
    ),
    _ts_a,
    _ts_b,
    _f(np.subtract(_ts_b, _ts_bhat)),
    True,
    _tsit5_dense(),
    4,
    dense_order=4,
)

from fastsim.solvers import _dop853_coefficients as _d853  # noqa: E402  (the long table lives in its own file)

dop853 = Tableau(
    "dop853",
    8,
    _d853.C[:13],
    _d853.A[:13],
    (*_d853.B, 0.0),
    _d853.E5,
    True,
    _d853.dense(),
    7,
    dense_order=7,
    b_err_aux=_d853.E3,
    c_extra=_d853.C[13:],
    a_extra=_d853.A[13:],
)

TABLEAUX: dict[str, Tableau] = {t.name: t for t in (euler, midpoint, heun, rk4, bosh3, dopri5, tsit5, dop853)}


def get_tableau(name: str) -> Tableau:
    """The tableau called `name` (a key of `TABLEAUX`).

    Raises:
        ValueError: unknown name; the message lists the valid ones.
    """
    if not isinstance(name, str) or name not in TABLEAUX:
        raise ValueError(f"unknown tableau {name!r}; valid names: {', '.join(sorted(TABLEAUX))}")
    return TABLEAUX[name]
