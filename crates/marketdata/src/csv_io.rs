//! CSV reading: wide, long and Yahoo Finance layouts (see [`crate::read_prices_file`]).

use std::path::Path;

use crate::frame::{Column, Frame};
use crate::{Error, Result};

/// Reads a CSV file into untyped columns.
pub(crate) fn read_csv_frame(path: &Path) -> Result<Frame> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(false)
        .from_path(path)
        .map_err(|e| match e.kind() {
            csv::ErrorKind::Io(_) => match e.into_kind() {
                csv::ErrorKind::Io(io) => Error::io(path, io),
                other => Error::csv(path, format!("{other:?}")),
            },
            _ => Error::csv(path, e),
        })?;
    let names: Vec<String> = reader
        .headers()
        .map_err(|e| Error::csv(path, e))?
        .iter()
        .map(str::to_string)
        .collect();
    let mut cols: Vec<Vec<Option<String>>> = vec![Vec::new(); names.len()];
    for record in reader.records() {
        let record = record.map_err(|e| Error::csv(path, e))?;
        for (col, cell) in cols.iter_mut().zip(record.iter()) {
            col.push(Some(cell.to_string()));
        }
    }
    Ok(Frame {
        path: path.to_path_buf(),
        names,
        columns: cols.into_iter().map(Column::Text).collect(),
    })
}
