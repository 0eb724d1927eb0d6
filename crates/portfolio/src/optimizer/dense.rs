//! An exact dense solver for the small quadratic programs of a wealth
//! portfolio (up to a few dozen assets): Goldfarb and Idnani's dual
//! active-set method (1983), the algorithm of R's and Python's `quadprog`.
//!
//! It solves `min ½ xᵀGx + cᵀx` s.t. `A_eq x = b_eq`, `A_in x ≤ b_in` with
//! `G` positive definite. Starting from the unconstrained minimum it adds
//! the most violated constraint at a time and drops any whose multiplier
//! would turn negative, keeping `J = L⁻ᵀQ` and `R` (from the QR
//! factorisation of `L⁻¹N`, `N` the active normals) up to date with Givens
//! rotations: each step costs `O(n²)`, and the answer is a vertex of the
//! active set solved to rounding, not to an interior-point tolerance.
//!
//! Variables with no quadratic term (the max-Sharpe scale `k`) are
//! eliminated first through an equality row that holds them. Anything
//! outside what it handles (`G` not positive definite after that, dependent
//! equalities, infeasibility, a cycling guard) returns `None`, and the
//! caller solves the program with clarabel, whose statuses then report it.

use clarabel::solver::SolverStatus;

use super::problem::{Program, Solution};

/// A constraint's violation counts when it exceeds this multiple of the
/// row's scale (`1 + |b| + Σ|a_j x_j|`).
const FEASIBILITY: f64 = 1e-12;
/// Pivots of `G`'s Cholesky factor below this multiple of the largest
/// diagonal entry count as singular.
const PIVOT: f64 = 1e-13;

/// A program without a cone, dense.
#[derive(Debug, Clone)]
pub(crate) struct Dense {
    pub n: usize,
    /// `P`, row-major `n × n`.
    pub g: Vec<f64>,
    pub c: Vec<f64>,
    /// Row-major `m × n`: the equalities, then the inequalities.
    pub a: Vec<f64>,
    pub b: Vec<f64>,
    /// Equality rows.
    pub eq: usize,
}

/// Solves `p` densely, or `None` when it is not a program this solver
/// takes (see the module documentation).
pub(crate) fn solve(p: &Program) -> Option<Solution> {
    let full = p.dense()?;
    let (n, m) = (full.n, full.b.len());
    // Variables without a quadratic term, each eliminated through an
    // equality row holding it: x_j = (b_r − Σ_{i≠j} a_ri x_i) / a_rj.
    let mut d = full.clone();
    let mut eliminated: Vec<(usize, usize, Vec<f64>, f64)> = Vec::new(); // (var, row, row then, rhs then)
    for j in 0..n {
        if (0..n).any(|i| d.g[i * n + j] != 0.0) {
            continue;
        }
        let used = |r: usize| eliminated.iter().any(|e| e.1 == r);
        let r = (0..d.eq)
            .filter(|&r| !used(r))
            .max_by(|&r1, &r2| d.a[r1 * n + j].abs().total_cmp(&d.a[r2 * n + j].abs()))?;
        let pivot = d.a[r * n + j];
        if pivot == 0.0 {
            return None;
        }
        let row: Vec<f64> = d.a[r * n..(r + 1) * n].to_vec();
        let rhs = d.b[r];
        for i in (0..m).filter(|&i| i != r) {
            let f = d.a[i * n + j] / pivot;
            if f != 0.0 {
                for (k, v) in row.iter().enumerate() {
                    d.a[i * n + k] -= f * v;
                }
                d.a[i * n + j] = 0.0;
                d.b[i] -= f * rhs;
            }
        }
        let f = d.c[j] / pivot;
        for (k, v) in row.iter().enumerate() {
            d.c[k] -= f * v;
        }
        d.c[j] = 0.0;
        eliminated.push((j, r, row, rhs));
    }
    // The reduced problem over the other variables, without the rows used.
    let keep: Vec<usize> = (0..n)
        .filter(|j| !eliminated.iter().any(|e| e.0 == *j))
        .collect();
    let rows: Vec<usize> = (0..m)
        .filter(|r| !eliminated.iter().any(|e| e.1 == *r))
        .collect();
    let nv = keep.len();
    let mut g = vec![0.0; nv * nv];
    for (a, &i) in keep.iter().enumerate() {
        for (b, &j) in keep.iter().enumerate() {
            g[a * nv + b] = d.g[i * n + j];
        }
    }
    let c: Vec<f64> = keep.iter().map(|&j| d.c[j]).collect();
    let mut normals = Vec::with_capacity(rows.len() * nv);
    let mut bounds = Vec::with_capacity(rows.len());
    let eq = rows.iter().filter(|&&r| r < d.eq).count();
    for &r in &rows {
        normals.extend(keep.iter().map(|&j| d.a[r * n + j]));
        bounds.push(d.b[r]);
    }
    let out = goldfarb_idnani(nv, g, &c, &normals, &bounds, eq)?;
    // Back to the full variables, in reverse order of elimination.
    let mut x = vec![0.0; n];
    for (a, &j) in keep.iter().enumerate() {
        x[j] = out.x[a];
    }
    for (j, _, row, rhs) in eliminated.iter().rev() {
        let rest: f64 = (0..n).filter(|k| k != j).map(|k| row[k] * x[k]).sum();
        x[*j] = (rhs - rest) / row[*j];
    }
    // Duals in clarabel's convention (`Gx + c + Aᵀz = 0`, `z ≥ 0` on the
    // inequalities) for the original rows: the kept rows' from the
    // reduced solve, the eliminated rows' from the stationarity of their
    // variables, which have no quadratic term: Σ_r a_rj z_r = −c_j.
    let mut z = vec![0.0; m];
    for (k, &r) in rows.iter().enumerate() {
        z[r] = out.z[k];
    }
    if !eliminated.is_empty() {
        let e = eliminated.len();
        let mut sys = vec![0.0; e * (e + 1)];
        for (row_i, (j, _, _, _)) in eliminated.iter().enumerate() {
            let known: f64 = rows.iter().map(|&r| full.a[r * n + j] * z[r]).sum();
            for (col, (_, r, _, _)) in eliminated.iter().enumerate() {
                sys[row_i * (e + 1) + col] = full.a[r * n + j];
            }
            sys[row_i * (e + 1) + e] = -full.c[*j] - known;
        }
        let duals = solve_small(&mut sys, e)?;
        for ((_, r, _, _), v) in eliminated.iter().zip(duals) {
            z[*r] = v;
        }
    }
    if x.iter().chain(&z).any(|v| !v.is_finite()) {
        return None;
    }
    Some(Solution {
        x,
        z,
        soc_start: None,
        status: SolverStatus::Solved,
        iterations: out.iterations,
    })
}

/// Gaussian elimination with partial pivoting on an `e × (e + 1)`
/// augmented system.
fn solve_small(sys: &mut [f64], e: usize) -> Option<Vec<f64>> {
    let w = e + 1;
    for col in 0..e {
        let p =
            (col..e).max_by(|&a, &b| sys[a * w + col].abs().total_cmp(&sys[b * w + col].abs()))?;
        if sys[p * w + col] == 0.0 {
            return None;
        }
        for k in 0..w {
            sys.swap(col * w + k, p * w + k);
        }
        for r in (0..e).filter(|&r| r != col) {
            let f = sys[r * w + col] / sys[col * w + col];
            for k in col..w {
                sys[r * w + k] -= f * sys[col * w + k];
            }
        }
    }
    Some((0..e).map(|r| sys[r * w + e] / sys[r * w + r]).collect())
}

/// A solution of the dense problem.
struct Solved {
    x: Vec<f64>,
    /// Per row, clarabel's sign convention.
    z: Vec<f64>,
    iterations: u32,
}

/// Goldfarb-Idnani on `min ½ xᵀGx + cᵀx` s.t. rows `0..eq` of `a x = b`
/// and the rest `a x ≤ b` (`a` row-major, one row per constraint).
fn goldfarb_idnani(
    n: usize,
    mut g: Vec<f64>,
    c: &[f64],
    a: &[f64],
    b: &[f64],
    eq: usize,
) -> Option<Solved> {
    let m = b.len();
    // G = LLᵀ, in place (lower triangle, row-major).
    let max_diag = (0..n).map(|i| g[i * n + i]).fold(0.0f64, f64::max);
    for j in 0..n {
        let mut d = g[j * n + j];
        for k in 0..j {
            d -= g[j * n + k] * g[j * n + k];
        }
        if d.is_nan() || d <= PIVOT * max_diag {
            return None;
        }
        let d = d.sqrt();
        g[j * n + j] = d;
        for i in j + 1..n {
            let mut v = g[i * n + j];
            for k in 0..j {
                v -= g[i * n + k] * g[j * n + k];
            }
            g[i * n + j] = v / d;
        }
    }
    // J = L⁻ᵀ, column-major: column j of J is row j of L⁻¹.
    let mut jm = vec![0.0; n * n];
    for col in 0..n {
        // Solve L y = e_col; y is column `col` of L⁻¹, i.e. row `col` of L⁻ᵀ.
        let mut y = vec![0.0; n];
        y[col] = 1.0 / g[col * n + col];
        for i in col + 1..n {
            let mut v = 0.0;
            for k in col..i {
                v -= g[i * n + k] * y[k];
            }
            y[i] = v / g[i * n + i];
        }
        // (L⁻ᵀ)[k][col] = (L⁻¹)[col][k] = y_col[k]... stored column-major:
        // J[:, k][col] = (L⁻¹)[k][col].
        for (k, v) in y.iter().enumerate() {
            jm[k * n + col] = *v;
        }
    }
    // Unconstrained minimum: x = −G⁻¹c = −J Jᵀ c.
    let mut x = vec![0.0; n];
    for k in 0..n {
        let col = &jm[k * n..(k + 1) * n];
        let d: f64 = col.iter().zip(c).map(|(a, b)| a * b).sum();
        for (xi, v) in x.iter_mut().zip(col) {
            *xi -= d * v;
        }
    }
    // Constraints as normals nᵢᵀx ≥ bᵢ: an inequality aᵀx ≤ b is −aᵀx ≥ −b;
    // an equality keeps its sign unless it is violated the other way.
    let mut sign: Vec<f64> = vec![-1.0; m];
    let mut r = vec![0.0; n * n]; // column-major q × q upper triangle
    let mut active: Vec<usize> = Vec::with_capacity(n);
    let mut u: Vec<f64> = Vec::with_capacity(n);
    let mut is_active = vec![false; m];
    let mut iterations = 0u32;
    let limit = 10 * (n + m) as u32 + 50;
    let slack = |x: &[f64], i: usize, sign: f64| -> (f64, f64) {
        let row = &a[i * n..(i + 1) * n];
        let ax: f64 = row.iter().zip(x).map(|(p, q)| p * q).sum();
        let scale = 1.0 + b[i].abs() + row.iter().zip(x).map(|(p, q)| (p * q).abs()).sum::<f64>();
        (sign * (ax - b[i]), scale)
    };
    let mut d = vec![0.0; n];
    let mut z = vec![0.0; n];
    loop {
        // Step 1: the constraint to add — every equality first, then the
        // most violated inequality.
        let p = match (0..eq).find(|&i| !is_active[i]) {
            Some(i) => {
                let (s, _) = slack(&x, i, 1.0);
                sign[i] = if s > 0.0 { -1.0 } else { 1.0 };
                i
            }
            None => {
                let mut worst: Option<(f64, usize)> = None;
                for i in (eq..m).filter(|&i| !is_active[i]) {
                    let (s, scale) = slack(&x, i, -1.0);
                    if s < -FEASIBILITY * scale && worst.is_none_or(|(w, _)| s / scale < w) {
                        worst = Some((s / scale, i));
                    }
                }
                match worst {
                    None => break,
                    Some((_, i)) => i,
                }
            }
        };
        let np: Vec<f64> = a[p * n..(p + 1) * n].iter().map(|v| sign[p] * v).collect();
        let mut up = 0.0; // the multiplier of p while it is being added
        loop {
            iterations += 1;
            if iterations > limit {
                return None;
            }
            let q = active.len();
            // Step 2: directions. d = Jᵀn_p; primal z = J₂d₂; dual r = R⁻¹d₁.
            for (k, dk) in d.iter_mut().enumerate() {
                *dk = jm[k * n..(k + 1) * n]
                    .iter()
                    .zip(&np)
                    .map(|(a, b)| a * b)
                    .sum();
            }
            z.iter_mut().for_each(|v| *v = 0.0);
            for (k, &dk) in d.iter().enumerate().skip(q) {
                for (zi, v) in z.iter_mut().zip(&jm[k * n..(k + 1) * n]) {
                    *zi += dk * v;
                }
            }
            let mut rv = vec![0.0; q];
            for i in (0..q).rev() {
                let mut v = d[i];
                for k in i + 1..q {
                    v -= r[k * n + i] * rv[k];
                }
                rv[i] = v / r[i * n + i];
            }
            // Step length: the partial step (an active inequality's
            // multiplier reaches zero) and the full step (p satisfied).
            let mut t1 = f64::INFINITY;
            let mut drop = None;
            for k in 0..q {
                if active[k] >= eq && rv[k] > 0.0 {
                    let t = u[k] / rv[k];
                    if t < t1 {
                        t1 = t;
                        drop = Some(k);
                    }
                }
            }
            let zn: f64 = z.iter().zip(&np).map(|(a, b)| a * b).sum();
            let dn: f64 = d.iter().map(|v| v * v).sum();
            let (s, _) = slack(&x, p, sign[p]);
            let t2 = if zn <= 1e-14 * dn {
                f64::INFINITY
            } else {
                -s / zn
            };
            let t = t1.min(t2);
            if t.is_infinite() {
                return None; // infeasible, or p depends on the active rows
            }
            if t2.is_finite() {
                for (xi, zi) in x.iter_mut().zip(&z) {
                    *xi += t * zi;
                }
            }
            for (uk, rk) in u.iter_mut().zip(&rv) {
                *uk -= t * rk;
            }
            up += t;
            if t == t2 {
                // Full step: p joins the active set. Rotate d so that only
                // its first q + 1 entries are non-zero; that is R's new column.
                for j in (q + 1..n).rev() {
                    let (ca, cb) = (d[j - 1], d[j]);
                    if cb == 0.0 {
                        continue;
                    }
                    let h = ca.hypot(cb);
                    let (cs, sn) = (ca / h, cb / h);
                    d[j - 1] = h;
                    d[j] = 0.0;
                    rotate_columns(&mut jm, n, j - 1, cs, sn);
                }
                for (i, v) in d.iter().enumerate().take(q + 1) {
                    r[q * n + i] = *v;
                }
                active.push(p);
                u.push(up);
                is_active[p] = true;
                break;
            }
            // Partial step: drop the blocking constraint and retry p.
            let k = drop?;
            is_active[active[k]] = false;
            active.remove(k);
            u.remove(k);
            // Remove column k of R; restore the triangle with rotations of
            // rows (i, i+1), applied to J's columns too.
            for col in k..q - 1 {
                for i in 0..n {
                    r[col * n + i] = r[(col + 1) * n + i];
                }
            }
            for i in k..q - 1 {
                let (ca, cb) = (r[i * n + i], r[i * n + i + 1]);
                if cb == 0.0 {
                    continue;
                }
                let h = ca.hypot(cb);
                let (cs, sn) = (ca / h, cb / h);
                for col in i..q - 1 {
                    let (x1, x2) = (r[col * n + i], r[col * n + i + 1]);
                    r[col * n + i] = cs * x1 + sn * x2;
                    r[col * n + i + 1] = -sn * x1 + cs * x2;
                }
                rotate_columns(&mut jm, n, i, cs, sn);
            }
        }
    }
    let mut zs = vec![0.0; m];
    for (k, &i) in active.iter().enumerate() {
        // Gx + c = Σ uᵢ nᵢ with nᵢ = sign·aᵢ, so zᵢ = −sign·uᵢ.
        zs[i] = -sign[i] * u[k];
    }
    Some(Solved {
        x,
        z: zs,
        iterations,
    })
}

/// `(J_i, J_{i+1}) ← (c J_i + s J_{i+1}, −s J_i + c J_{i+1})` on the
/// column-major `n × n` matrix `j`.
fn rotate_columns(j: &mut [f64], n: usize, i: usize, c: f64, s: f64) {
    let (left, right) = j.split_at_mut((i + 1) * n);
    let a = &mut left[i * n..];
    let b = &mut right[..n];
    for (x, y) in a.iter_mut().zip(b.iter_mut()) {
        let (p, q) = (*x, *y);
        *x = c * p + s * q;
        *y = -s * p + c * q;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `min ½‖x‖² − x₀ − x₁` s.t. `x₀ + x₁ = 1`, `x₀ ≤ 0.2`: x = (0.2, 0.8).
    #[test]
    fn small_program_with_an_active_bound() {
        let out = goldfarb_idnani(
            2,
            vec![1.0, 0.0, 0.0, 1.0],
            &[-1.0, -1.0],
            &[1.0, 1.0, 1.0, 0.0],
            &[1.0, 0.2],
            1,
        )
        .unwrap();
        assert!((out.x[0] - 0.2).abs() < 1e-14 && (out.x[1] - 0.8).abs() < 1e-14);
        // Stationarity: Gx + c + Aᵀz = 0 → x₁ − 1 + z₀ = 0, x₀ − 1 + z₀ + z₁ = 0.
        assert!((out.z[0] - 0.2).abs() < 1e-14, "{:?}", out.z);
        assert!((out.z[1] - 0.6).abs() < 1e-14, "{:?}", out.z);
    }

    #[test]
    fn infeasible_and_singular_programs_are_declined() {
        // x ≤ −1 and −x ≤ −1 (x ≥ 1).
        assert!(goldfarb_idnani(1, vec![1.0], &[0.0], &[1.0, -1.0], &[-1.0, -1.0], 0).is_none());
        assert!(goldfarb_idnani(2, vec![1.0, 1.0, 1.0, 1.0], &[0.0, 0.0], &[], &[], 0).is_none());
    }
}
