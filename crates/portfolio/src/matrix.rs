//! A small dense row-major matrix, the exchange type of this crate.

use crate::{Error, Result};

/// Dense row-major `rows × cols` matrix of `f64`.
///
/// Prices and returns are `observations × assets` (one row per date, one
/// column per asset); covariance and correlation matrices are `assets ×
/// assets`. Kept deliberately simple so callers need no linear-algebra crate.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Matrix {
    rows: usize,
    cols: usize,
    data: Vec<f64>,
}

impl Matrix {
    /// A `rows × cols` matrix of zeros.
    pub fn zeros(rows: usize, cols: usize) -> Self {
        Self {
            rows,
            cols,
            data: vec![0.0; rows * cols],
        }
    }

    /// Wraps row-major data; errors if `data.len() != rows * cols`.
    pub fn from_row_major(rows: usize, cols: usize, data: Vec<f64>) -> Result<Self> {
        if data.len() != rows * cols {
            return Err(Error::DimensionMismatch {
                what: "matrix data",
                expected: rows * cols,
                got: data.len(),
            });
        }
        Ok(Self { rows, cols, data })
    }

    /// Builds from rows; every row must have the same length.
    pub fn from_rows(rows: &[Vec<f64>]) -> Result<Self> {
        let cols = rows.first().map_or(0, Vec::len);
        let mut data = Vec::with_capacity(rows.len() * cols);
        for row in rows {
            if row.len() != cols {
                return Err(Error::DimensionMismatch {
                    what: "matrix row",
                    expected: cols,
                    got: row.len(),
                });
            }
            data.extend_from_slice(row);
        }
        Ok(Self {
            rows: rows.len(),
            cols,
            data,
        })
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Element `(r, c)`; panics when out of range, like slice indexing.
    #[inline]
    pub fn get(&self, r: usize, c: usize) -> f64 {
        self.data[r * self.cols + c]
    }

    /// Sets element `(r, c)`.
    #[inline]
    pub fn set(&mut self, r: usize, c: usize, v: f64) {
        self.data[r * self.cols + c] = v;
    }

    /// Row `r` as a slice.
    pub fn row(&self, r: usize) -> &[f64] {
        &self.data[r * self.cols..(r + 1) * self.cols]
    }

    /// Column `c`, copied.
    pub fn column(&self, c: usize) -> Vec<f64> {
        (0..self.rows).map(|r| self.get(r, c)).collect()
    }

    /// The row-major data.
    pub fn as_slice(&self) -> &[f64] {
        &self.data
    }

    /// Rows `start..end` as a new matrix (a lookback window).
    pub fn slice_rows(&self, start: usize, end: usize) -> Matrix {
        let end = end.min(self.rows);
        let start = start.min(end);
        Matrix {
            rows: end - start,
            cols: self.cols,
            data: self.data[start * self.cols..end * self.cols].to_vec(),
        }
    }

    /// Columns `idx` (in that order) as a new matrix.
    pub fn select_columns(&self, idx: &[usize]) -> Matrix {
        let mut data = Vec::with_capacity(self.rows * idx.len());
        for r in 0..self.rows {
            let row = self.row(r);
            data.extend(idx.iter().map(|&c| row[c]));
        }
        Matrix {
            rows: self.rows,
            cols: idx.len(),
            data,
        }
    }

    /// `self · v` for a vector of length `cols`.
    pub fn mul_vec(&self, v: &[f64]) -> Result<Vec<f64>> {
        if v.len() != self.cols {
            return Err(Error::DimensionMismatch {
                what: "vector",
                expected: self.cols,
                got: v.len(),
            });
        }
        Ok((0..self.rows)
            .map(|r| self.row(r).iter().zip(v).map(|(a, b)| a * b).sum())
            .collect())
    }

    /// `vᵀ · self · v` for a square matrix.
    pub fn quad_form(&self, v: &[f64]) -> Result<f64> {
        let sv = self.mul_vec(v)?;
        Ok(sv.iter().zip(v).map(|(a, b)| a * b).sum())
    }

    /// The diagonal of a square matrix.
    pub fn diagonal(&self) -> Vec<f64> {
        (0..self.rows.min(self.cols))
            .map(|i| self.get(i, i))
            .collect()
    }

    /// Errors with [`Error::NonFinite`] on the first NaN or infinity.
    pub fn check_finite(&self, what: &'static str) -> Result<()> {
        match self.data.iter().position(|v| !v.is_finite()) {
            None => Ok(()),
            Some(i) => Err(Error::NonFinite {
                what,
                row: i / self.cols.max(1),
                column: i % self.cols.max(1),
                value: self.data[i],
            }),
        }
    }
}
