//! Building the conic programs for clarabel and running them.
//!
//! Clarabel solves `min ½ xᵀPx + qᵀx  s.t.  Ax + s = b, s ∈ K` with `P`
//! given as its upper triangle in CSC form. Rows are laid out cone by cone:
//! equalities (zero cone) first, then inequalities (non-negative cone), then
//! at most one second-order cone for a volatility limit.

use clarabel::algebra::CscMatrix;
use clarabel::solver::{
    DefaultSettings, DefaultSettingsBuilder, DefaultSolver, IPSolver, SolverStatus, SupportedConeT,
};

use super::dense::{self, Dense};
use crate::{Error, Result};

/// Solver accuracy and limits.
#[derive(Debug, Clone, PartialEq)]
pub struct SolverSettings {
    /// Absolute and relative duality-gap and feasibility tolerance.
    pub tolerance: f64,
    /// Iteration cap.
    pub max_iter: u32,
    /// Assets from which clarabel's supernodal (faer) LDL factorization is
    /// used instead of QDLDL: the KKT system of a dense covariance is dense,
    /// where blocked kernels win; for small problems QDLDL's lower overhead
    /// wins.
    pub faer_from_assets: usize,
    /// Assets from which efficient-risk is solved on a working set of
    /// assets grown until the excluded ones' optimality conditions hold
    /// (long-only, no groups). Typically only a few dozen of hundreds of
    /// assets get weight, and the interior-point cost grows with the cube
    /// of the assets in the problem. `usize::MAX` disables it.
    pub working_set_from_assets: usize,
    /// Programs without a volatility cone and with at most this many
    /// variables are solved exactly by a dense active-set method
    /// (`optimizer/dense.rs`), the others (and any it declines) by
    /// clarabel. `0` disables it.
    pub dense_up_to_variables: usize,
}

impl Default for SolverSettings {
    fn default() -> Self {
        Self {
            tolerance: 1e-10,
            max_iter: 200,
            faer_from_assets: 60,
            working_set_from_assets: 80,
            dense_up_to_variables: 100,
        }
    }
}

/// A sparse constraint system assembled row by row, stored by column so the
/// CSC arrays come out directly (rows are appended in increasing order, so
/// each column's row indices stay sorted).
#[derive(Debug)]
pub(crate) struct Program {
    n: usize,
    cols: Vec<Vec<(usize, f64)>>,
    b: Vec<f64>,
    zero_rows: usize,
    nonneg_rows: usize,
    soc_rows: usize,
    /// Upper triangle of P, by column.
    p_cols: Vec<Vec<(usize, f64)>>,
    q: Vec<f64>,
}

/// What a solve produced.
#[derive(Debug)]
pub(crate) struct Solution {
    pub x: Vec<f64>,
    /// Dual variables, one per constraint row.
    pub z: Vec<f64>,
    /// First row of the second-order cone, if there is one.
    pub soc_start: Option<usize>,
    pub status: SolverStatus,
    pub iterations: u32,
}

impl Program {
    pub fn new(n: usize) -> Self {
        Self {
            n,
            cols: vec![Vec::new(); n],
            b: Vec::new(),
            zero_rows: 0,
            nonneg_rows: 0,
            soc_rows: 0,
            p_cols: vec![Vec::new(); n],
            q: vec![0.0; n],
        }
    }

    fn push_row(&mut self, entries: &[(usize, f64)], rhs: f64) {
        let row = self.b.len();
        for &(c, v) in entries {
            if v != 0.0 {
                self.cols[c].push((row, v));
            }
        }
        self.b.push(rhs);
    }

    /// `a·x = rhs`. All equalities must come before any inequality.
    pub fn eq(&mut self, entries: &[(usize, f64)], rhs: f64) {
        debug_assert!(self.nonneg_rows == 0 && self.soc_rows == 0);
        self.push_row(entries, rhs);
        self.zero_rows += 1;
    }

    /// `a·x ≤ rhs`. All inequalities come before the cone.
    pub fn le(&mut self, entries: &[(usize, f64)], rhs: f64) {
        debug_assert!(self.soc_rows == 0);
        self.push_row(entries, rhs);
        self.nonneg_rows += 1;
    }

    /// `‖Fᵀ x_{0..m}‖ ≤ bound`, with `ft_cols[j]` the non-zeros
    /// `(i, F_ji)` of column `j` of `Fᵀ` (i.e. row `j` of `F`), `i` ascending.
    pub fn norm_le(&mut self, ft_cols: &[Vec<(usize, f64)>], rows: usize, bound: f64) {
        let first = self.b.len();
        self.b.push(bound);
        self.b.extend(std::iter::repeat_n(0.0, rows));
        for (j, col) in ft_cols.iter().enumerate() {
            // s = b − A x must equal (bound, Fᵀx), so A holds −Fᵀ.
            self.cols[j].extend(col.iter().map(|&(i, v)| (first + 1 + i, -v)));
        }
        self.soc_rows = rows + 1;
    }

    /// Adds `scale · M` (symmetric, dense, row-major `m × m`) to the
    /// quadratic term on variables `0..m`.
    pub fn add_quadratic(&mut self, m: usize, dense: &[f64], scale: f64) {
        for j in 0..m {
            let col = &mut self.p_cols[j];
            if col.is_empty() {
                col.extend((0..=j).map(|i| (i, scale * dense[i * m + j])));
            } else {
                for (i, v) in col.iter_mut() {
                    *v += scale * dense[*i * m + j];
                }
            }
        }
    }

    /// Adds `scale` to the diagonal of P on variables `0..m`.
    pub fn add_diagonal(&mut self, m: usize, scale: f64) {
        for j in 0..m {
            let col = &mut self.p_cols[j];
            match col.last_mut() {
                Some((i, v)) if *i == j => *v += scale,
                _ => col.push((j, scale)),
            }
        }
    }

    pub fn set_linear(&mut self, j: usize, v: f64) {
        self.q[j] = v;
    }

    /// The program as dense arrays, when it has no cone.
    pub fn dense(&self) -> Option<Dense> {
        if self.soc_rows > 0 {
            return None;
        }
        let (n, m) = (self.n, self.b.len());
        let mut g = vec![0.0; n * n];
        for (j, col) in self.p_cols.iter().enumerate() {
            for &(i, v) in col {
                g[i * n + j] = v;
                g[j * n + i] = v;
            }
        }
        let mut a = vec![0.0; m * n];
        for (j, col) in self.cols.iter().enumerate() {
            for &(i, v) in col {
                a[i * n + j] = v;
            }
        }
        Some(Dense {
            n,
            g,
            c: self.q.clone(),
            a,
            b: self.b.clone(),
            eq: self.zero_rows,
        })
    }

    pub fn solve(self, settings: &SolverSettings, assets: usize) -> Result<Solution> {
        if self.n <= settings.dense_up_to_variables {
            if let Some(sol) = dense::solve(&self) {
                return Ok(sol);
            }
        }
        let m = self.b.len();
        let a = csc(m, self.n, &self.cols);
        let p = csc(self.n, self.n, &self.p_cols);
        let mut cones = Vec::with_capacity(3);
        if self.zero_rows > 0 {
            cones.push(SupportedConeT::ZeroConeT(self.zero_rows));
        }
        if self.nonneg_rows > 0 {
            cones.push(SupportedConeT::NonnegativeConeT(self.nonneg_rows));
        }
        if self.soc_rows > 0 {
            cones.push(SupportedConeT::SecondOrderConeT(self.soc_rows));
        }
        let method = if assets >= settings.faer_from_assets {
            "faer"
        } else {
            "qdldl"
        };
        let s: DefaultSettings<f64> = DefaultSettingsBuilder::default()
            .verbose(false)
            .max_iter(settings.max_iter)
            .tol_gap_abs(settings.tolerance)
            .tol_gap_rel(settings.tolerance)
            .tol_feas(settings.tolerance)
            .tol_ktratio(settings.tolerance.sqrt().min(1e-6))
            .direct_solve_method(method.to_string())
            .presolve_enable(false)
            .build()
            .map_err(|e| Error::SolverSetup(e.to_string()))?;
        let mut solver = DefaultSolver::new(&p, &self.q, &a, &self.b, &cones, s)
            .map_err(|e| Error::SolverSetup(e.to_string()))?;
        solver.solve();
        Ok(Solution {
            x: solver.solution.x.clone(),
            z: solver.solution.z.clone(),
            soc_start: (self.soc_rows > 0).then_some(self.zero_rows + self.nonneg_rows),
            status: solver.solution.status,
            iterations: solver.solution.iterations,
        })
    }
}

fn csc(m: usize, n: usize, cols: &[Vec<(usize, f64)>]) -> CscMatrix<f64> {
    let nnz = cols.iter().map(Vec::len).sum();
    let mut colptr = Vec::with_capacity(n + 1);
    let mut rowval = Vec::with_capacity(nnz);
    let mut nzval = Vec::with_capacity(nnz);
    colptr.push(0);
    for col in cols {
        for &(r, v) in col {
            rowval.push(r);
            nzval.push(v);
        }
        colptr.push(rowval.len());
    }
    CscMatrix::new(m, n, colptr, rowval, nzval)
}

/// Whether a status carries a usable solution.
pub(crate) fn is_solved(status: SolverStatus) -> bool {
    matches!(status, SolverStatus::Solved | SolverStatus::AlmostSolved)
}

/// Whether a status certifies (possibly approximately) primal infeasibility.
pub(crate) fn is_infeasible(status: SolverStatus) -> bool {
    matches!(
        status,
        SolverStatus::PrimalInfeasible | SolverStatus::AlmostPrimalInfeasible
    )
}
