//! SolarSoft calibration tables as text: the response table of the degradation correction
//! (`aia_V*_response_table.txt`) and the error table of the uncertainty estimate
//! (`aia_V*_error_table.txt`), or a CSV export of the same JSOC series.
//!
//! Format (what astropy's `ascii.read` guesses for these files, as aiapy reads them): the
//! first line that is not blank and does not start with `#` names the columns; every later
//! such line is one row. Fields are separated by runs of blanks, or by commas when the
//! header line has a comma (CSV; fields may be in double quotes, `""` is a quote). Column
//! names are matched without regard to case. Typed reads name the file, the line (1-based)
//! and the column in their errors ([`Error::Table`]).

use std::path::Path;

use crate::error::{Error, Result, Source};
use crate::time::UtcTime;

/// A parsed table: column names and rows of text fields.
#[derive(Debug, Clone)]
pub struct CalTable {
    source: Source,
    what: &'static str,
    columns: Vec<String>,
    rows: Vec<Row>,
}

/// One data row: its 1-based line number in the file and its fields.
#[derive(Debug, Clone)]
pub struct Row {
    /// 1-based line of the file.
    pub line: usize,
    fields: Vec<String>,
}

fn split_csv(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur).trim().to_string()),
            _ => cur.push(c),
        }
    }
    out.push(cur.trim().to_string());
    out
}

impl CalTable {
    /// Read and parse the table at `path`; `what` names it in errors ("correction table").
    ///
    /// Errors: [`Error::Io`] when it cannot be read; [`Error::Table`] as [`CalTable::parse`].
    pub fn read(path: &Path, what: &'static str) -> Result<CalTable> {
        let text = std::fs::read(path).map_err(|e| Error::Io {
            file: Source::file(path),
            reason: format!("cannot read the {what}: {e}"),
        })?;
        let text = String::from_utf8(text).map_err(|_| Error::Table {
            file: Source::file(path),
            what,
            line: None,
            column: None,
            reason: "not UTF-8 text".into(),
        })?;
        CalTable::parse(&text, Source::file(path), what)
    }

    /// Parse table text (module docs). `source` names it in errors.
    ///
    /// Errors ([`Error::Table`]): no header line; a row whose number of fields differs from
    /// the header's; no data row.
    pub fn parse(text: &str, source: Source, what: &'static str) -> Result<CalTable> {
        let mut columns: Option<(Vec<String>, bool)> = None;
        let mut rows = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match &columns {
                None => {
                    let csv = line.contains(',');
                    let names = if csv {
                        split_csv(line)
                    } else {
                        line.split_whitespace().map(str::to_string).collect()
                    };
                    let names = names.into_iter().map(|n| n.to_ascii_uppercase()).collect();
                    columns = Some((names, csv));
                }
                Some((names, csv)) => {
                    let fields = if *csv {
                        split_csv(line)
                    } else {
                        line.split_whitespace().map(str::to_string).collect()
                    };
                    if fields.len() != names.len() {
                        return Err(Error::Table {
                            file: source,
                            what,
                            line: Some(i + 1),
                            column: None,
                            reason: format!(
                                "{} fields where the header names {} columns",
                                fields.len(),
                                names.len()
                            ),
                        });
                    }
                    rows.push(Row {
                        line: i + 1,
                        fields,
                    });
                }
            }
        }
        let Some((columns, _)) = columns else {
            return Err(Error::Table {
                file: source,
                what,
                line: None,
                column: None,
                reason: "empty: no header line".into(),
            });
        };
        if rows.is_empty() {
            return Err(Error::Table {
                file: source,
                what,
                line: None,
                column: None,
                reason: "no data rows".into(),
            });
        }
        Ok(CalTable {
            source,
            what,
            columns,
            rows,
        })
    }

    /// Where the table came from.
    pub fn source(&self) -> &Source {
        &self.source
    }

    /// The rows, in file order.
    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    /// The index of column `name` (any case).
    ///
    /// Errors: [`Error::Table`] naming the column when the header lacks it.
    pub fn column(&self, name: &str) -> Result<usize> {
        let up = name.to_ascii_uppercase();
        self.columns
            .iter()
            .position(|c| *c == up)
            .ok_or_else(|| Error::Table {
                file: self.source.clone(),
                what: self.what,
                line: None,
                column: Some(up.clone()),
                reason: "no such column in the header".into(),
            })
    }

    fn err(&self, row: &Row, col: usize, reason: String) -> Error {
        Error::Table {
            file: self.source.clone(),
            what: self.what,
            line: Some(row.line),
            column: self.columns.get(col).cloned(),
            reason,
        }
    }

    /// The text of `row` in column `col`.
    pub fn text<'a>(&self, row: &'a Row, col: usize) -> &'a str {
        row.fields.get(col).map(String::as_str).unwrap_or("")
    }

    /// A finite real number.
    ///
    /// Errors: [`Error::Table`] (file, line, column) for text that is not a finite number.
    pub fn number(&self, row: &Row, col: usize) -> Result<f64> {
        let t = self.text(row, col);
        match t.parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(v),
            _ => Err(self.err(row, col, format!("'{t}' is not a finite number"))),
        }
    }

    /// A time (ISO 8601, `Z` optional, or JSOC `_TAI`/`_UTC`), as UTC.
    ///
    /// Errors: [`Error::Table`] (file, line, column) for text that is not a time.
    pub fn time(&self, row: &Row, col: usize) -> Result<UtcTime> {
        let t = self.text(row, col);
        UtcTime::parse(t).map_err(|e| self.err(row, col, format!("'{t}' is not a time: {e}")))
    }

    /// An error about `row` (and `col`, if any) of this table.
    pub fn row_error(&self, row: &Row, col: Option<usize>, reason: String) -> Error {
        Error::Table {
            file: self.source.clone(),
            what: self.what,
            line: Some(row.line),
            column: col.and_then(|c| self.columns.get(c).cloned()),
            reason,
        }
    }

    /// An error about the table as a whole.
    pub fn table_error(&self, reason: String) -> Error {
        Error::Table {
            file: self.source.clone(),
            what: self.what,
            line: None,
            column: None,
            reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitespace_and_csv_tables_read_alike() {
        let ws = "# c\n  DATE  T_START  EFF_AREA\n 2017-12-10T05:04:48.000  2010-03-24T00:00:00.000  0.31656\n";
        let csv =
            "DATE,T_START,eff_area\n\"2017-12-10T05:04:48Z\",\"2010-03-24T00:00:00Z\",0.31656\n";
        for (text, name) in [(ws, "ws"), (csv, "csv")] {
            let t = CalTable::parse(text, Source::memory(), "test table").unwrap();
            let r = &t.rows()[0];
            assert_eq!(
                t.number(r, t.column("EFF_AREA").unwrap()).unwrap(),
                0.31656,
                "{name}"
            );
            assert_eq!(
                t.time(r, t.column("t_start").unwrap()).unwrap(),
                UtcTime::from_civil(2010, 3, 24, 0, 0, 0.0)
            );
        }
    }

    #[test]
    fn errors_name_line_and_column() {
        let t = CalTable::parse("A B\n1 2\n1 x\n", Source::file("t.txt"), "test table").unwrap();
        let e = t.number(&t.rows()[1], 1).unwrap_err().to_string();
        assert_eq!(
            e,
            "t.txt:3: test table, column B: 'x' is not a finite number"
        );
        let e = t.column("C").unwrap_err().to_string();
        assert!(e.contains("column C"), "{e}");
        let e = CalTable::parse("A B\n1 2 3\n", Source::file("t.txt"), "test table")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("t.txt:2: test table"), "{e}");
        assert!(CalTable::parse("# only\n", Source::memory(), "t").is_err());
        assert!(CalTable::parse("A B\n", Source::memory(), "t").is_err());
    }
}
