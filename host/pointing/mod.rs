//! Pointing update from an offline AIA master pointing table (aiapy's `update_pointing`).
//!
//! # The table
//!
//! The JSOC series `aia.master_pointing3h` exported to CSV (or the LMSAL mirror of it): a
//! header row, then one row per 3-hour interval with the columns `T_START`, `T_STOP` and,
//! per channel `WWW` (`format!("{:03}", wavelength)`: 094, 131, 171, 193, 211, 304, 335,
//! 1600, 1700, 4500), `A_WWW_X0`, `A_WWW_Y0` (Sun centre on the CCD, **0-based** pixels),
//! `A_WWW_IMSCALE` (plate scale, arcsec/pixel) and `A_WWW_INSTROT` (instrument roll,
//! degrees). Column names are matched case-insensitively; other columns are ignored.
//! Fields may be quoted (`"…"`, `""` for a quote inside); blank lines and lines starting
//! with `#` are skipped. A value that is empty, `NaN`, `missing` or `--` (any case) reads
//! as NaN (JSOC's MISSING); any other text that is not a number is an error.
//!
//! # Time scales
//!
//! Every time is converted to one scale, [`UtcTime`] ([`crate::time`]: UTC and TAI,
//! ISO 8601 and JSOC forms).
//!
//! # The update
//!
//! [`update_pointing`] follows aiapy's current `update_pointing` (semantics.md §5.1): the
//! row is the first with `T_START ≤ T_OBS < T_STOP`; the reference pixel moves by the change
//! of the Sun centre, `CRPIX1 ← CRPIX1 + (X0 − X0_MP)` (likewise `CRPIX2` with `Y0`/`Y0_MP`),
//! which is right for full frames and for cut-outs of level-1 data alike; `CDELT1 = CDELT2 =
//! IMSCALE`; `CROTA2 = INSTROT + SAT_ROT`; the `PCi_j` (and `CDi_j`) keywords are removed so
//! that the rotation comes from `CROTA2`. See [`update_pointing`] for the details and the
//! keywords that record the update.

mod csv;

use std::path::Path;

use csv::{parse_value, split_record};

use crate::error::{Error, Result, Source};
use crate::header::{Header, Value};
use crate::map::{AiaMap, MapView};
use crate::time::parse_time;
pub use crate::time::{tai_minus_utc, UtcTime};

// ---------------------------------------------------------------------------------------
// Table
// ---------------------------------------------------------------------------------------

/// The four per-channel quantities of a table row. NaN = missing in the table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChannelPointing {
    /// Sun centre x on the CCD (`A_WWW_X0`), 0-based pixels.
    pub x0: f64,
    /// Sun centre y on the CCD (`A_WWW_Y0`), 0-based pixels.
    pub y0: f64,
    /// Plate scale (`A_WWW_IMSCALE`), arcsec per pixel.
    pub imscale: f64,
    /// Instrument roll (`A_WWW_INSTROT`), degrees.
    pub instrot: f64,
}

const FIELDS: [&str; 4] = ["X0", "Y0", "IMSCALE", "INSTROT"];

#[derive(Debug, Clone)]
struct ChannelColumns {
    wavelength: u32,
    /// Index into [`PointingRow::values`] of X0, Y0, IMSCALE, INSTROT (None = no column).
    value_index: [Option<usize>; 4],
}

/// One data row of the table.
#[derive(Debug, Clone, PartialEq)]
pub struct PointingRow {
    /// 1-based line number of this row in the file.
    pub line: usize,
    /// Start of the interval (inclusive), UTC.
    pub t_start: UtcTime,
    /// End of the interval (exclusive), UTC.
    pub t_stop: UtcTime,
    values: Vec<f64>,
}

/// A master pointing table read from CSV (see the module docs for the format).
#[derive(Debug, Clone)]
pub struct PointingTable {
    source: Source,
    channels: Vec<ChannelColumns>,
    rows: Vec<PointingRow>,
}

fn table_error(source: &Source, line: Option<usize>, reason: impl Into<String>) -> Error {
    Error::Pointing {
        file: source.clone(),
        line,
        reason: reason.into(),
    }
}

/// `A_<digits>_<FIELD>` → (wavelength, field index).
fn channel_column(name: &str) -> Option<(u32, usize)> {
    let rest = name.strip_prefix("A_")?;
    let (w, field) = rest.split_once('_')?;
    if w.is_empty() || !w.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let wl = w.parse::<u32>().ok()?;
    let fi = FIELDS.iter().position(|f| *f == field)?;
    Some((wl, fi))
}

impl PointingTable {
    /// Read a CSV export of `aia.master_pointing3h` from a file.
    ///
    /// Errors: [`Error::Io`] if the file cannot be read; otherwise as [`Self::parse_csv`].
    pub fn read_csv(path: &Path) -> Result<PointingTable> {
        let source = Source::file(path);
        let bytes = std::fs::read(path).map_err(|e| Error::Io {
            file: source.clone(),
            reason: e.to_string(),
        })?;
        let text = String::from_utf8(bytes)
            .map_err(|e| table_error(&source, None, format!("not UTF-8 text: {e}")))?;
        PointingTable::parse_csv(&text, source)
    }

    /// Parse CSV text; `source` names the file in errors.
    ///
    /// Errors ([`Error::Pointing`] with the 1-based line where known): no header row;
    /// no `T_START` or `T_STOP` column, or a duplicated column; a row with a different
    /// number of fields than the header (ragged); an unparseable time or number (the
    /// message names the 1-based column and its name); `T_STOP` not after `T_START`; no
    /// data rows.
    pub fn parse_csv(text: &str, source: Source) -> Result<PointingTable> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut lines = text
            .lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l.trim_end_matches('\r')))
            .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'));

        let (header_line, header) = lines
            .next()
            .ok_or_else(|| table_error(&source, None, "empty file: no header row"))?;
        let names: Vec<String> = split_record(header)
            .map_err(|e| table_error(&source, Some(header_line), e))?
            .into_iter()
            .map(|n| n.trim().to_ascii_uppercase())
            .collect();

        let find_unique = |key: &str| -> Result<usize> {
            let hits: Vec<usize> = names
                .iter()
                .enumerate()
                .filter(|(_, n)| n.as_str() == key)
                .map(|(i, _)| i)
                .collect();
            match hits.as_slice() {
                [i] => Ok(*i),
                [] => Err(table_error(
                    &source,
                    Some(header_line),
                    format!("no {key} column in the header row"),
                )),
                _ => Err(table_error(
                    &source,
                    Some(header_line),
                    format!("column {key} appears {} times", hits.len()),
                )),
            }
        };
        let i_start = find_unique("T_START")?;
        let i_stop = find_unique("T_STOP")?;

        // Channel columns, in order of first appearance.
        let mut channels: Vec<ChannelColumns> = Vec::new();
        let mut value_columns: Vec<usize> = Vec::new(); // column index of each stored value
        for (col, name) in names.iter().enumerate() {
            let Some((wl, fi)) = channel_column(name) else {
                continue;
            };
            let ch = match channels.iter().position(|c| c.wavelength == wl) {
                Some(k) => k,
                None => {
                    channels.push(ChannelColumns {
                        wavelength: wl,
                        value_index: [None; 4],
                    });
                    channels.len() - 1
                }
            };
            if channels[ch].value_index[fi].is_some() {
                return Err(table_error(
                    &source,
                    Some(header_line),
                    format!("column {name} appears more than once (column {})", col + 1),
                ));
            }
            channels[ch].value_index[fi] = Some(value_columns.len());
            value_columns.push(col);
        }

        let mut rows = Vec::new();
        for (line, rec) in lines {
            let fields = split_record(rec).map_err(|e| table_error(&source, Some(line), e))?;
            if fields.len() != names.len() {
                return Err(table_error(
                    &source,
                    Some(line),
                    format!(
                        "ragged row: {} fields, the header row (line {header_line}) has {}",
                        fields.len(),
                        names.len()
                    ),
                ));
            }
            let time = |col: usize| -> Result<UtcTime> {
                parse_time(&fields[col]).map_err(|e| {
                    table_error(
                        &source,
                        Some(line),
                        format!(
                            "column {} ({}): cannot parse time '{}': {e}",
                            col + 1,
                            names[col],
                            fields[col]
                        ),
                    )
                })
            };
            let t_start = time(i_start)?;
            let t_stop = time(i_stop)?;
            if t_stop <= t_start {
                return Err(table_error(
                    &source,
                    Some(line),
                    format!("T_STOP {t_stop} is not after T_START {t_start}"),
                ));
            }
            let mut values = Vec::with_capacity(value_columns.len());
            for &col in &value_columns {
                let v = parse_value(&fields[col]).ok_or_else(|| {
                    table_error(
                        &source,
                        Some(line),
                        format!(
                            "column {} ({}): '{}' is not a number",
                            col + 1,
                            names[col],
                            fields[col]
                        ),
                    )
                })?;
                values.push(v);
            }
            rows.push(PointingRow {
                line,
                t_start,
                t_stop,
                values,
            });
        }
        if rows.is_empty() {
            return Err(table_error(
                &source,
                Some(header_line),
                "no data rows after the header row",
            ));
        }
        Ok(PointingTable {
            source,
            channels,
            rows,
        })
    }

    /// The file the table was read from.
    pub fn source(&self) -> &Source {
        &self.source
    }

    /// The data rows, in file order.
    pub fn rows(&self) -> &[PointingRow] {
        &self.rows
    }

    /// Number of data rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// True when there are no data rows (never, for a parsed table).
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Channels (Å) that have all four columns, in column order.
    pub fn channels(&self) -> Vec<u32> {
        self.channels
            .iter()
            .filter(|c| c.value_index.iter().all(Option::is_some))
            .map(|c| c.wavelength)
            .collect()
    }

    /// The 0-based index of the first row with `T_START ≤ t < T_STOP`.
    pub fn find_row(&self, t: UtcTime) -> Option<usize> {
        self.rows
            .iter()
            .position(|r| r.t_start <= t && t < r.t_stop)
    }

    /// The values of channel `wavelength` (Å) in data row `row` (0-based); NaN where the
    /// table has no value.
    ///
    /// Errors ([`Error::Pointing`]): the table lacks some or all of the channel's columns
    /// (the message names them); `row` out of range.
    pub fn entry(&self, row: usize, wavelength: u32) -> Result<ChannelPointing> {
        let names = || FIELDS.map(|f| format!("A_{wavelength:03}_{f}"));
        let ch = self
            .channels
            .iter()
            .find(|c| c.wavelength == wavelength)
            .ok_or_else(|| {
                table_error(
                    &self.source,
                    None,
                    format!(
                        "no columns for channel {wavelength} Å (expected {})",
                        names().join(", ")
                    ),
                )
            })?;
        let missing: Vec<String> = ch
            .value_index
            .iter()
            .zip(names())
            .filter(|(i, _)| i.is_none())
            .map(|(_, n)| n)
            .collect();
        if !missing.is_empty() {
            return Err(table_error(
                &self.source,
                None,
                format!(
                    "channel {wavelength} Å lacks column(s) {}",
                    missing.join(", ")
                ),
            ));
        }
        let r = self.rows.get(row).ok_or_else(|| {
            table_error(
                &self.source,
                None,
                format!("row {row} out of range ({} rows)", self.rows.len()),
            )
        })?;
        let v = |k: usize| {
            ch.value_index[k]
                .and_then(|i| r.values.get(i).copied())
                .unwrap_or(f64::NAN)
        };
        Ok(ChannelPointing {
            x0: v(0),
            y0: v(1),
            imscale: v(2),
            instrot: v(3),
        })
    }
}

// ---------------------------------------------------------------------------------------
// Update
// ---------------------------------------------------------------------------------------

/// The result of [`update_pointing`].
#[derive(Debug, Clone)]
pub struct PointingUpdate {
    /// The map with the updated header (pixels unchanged).
    pub map: AiaMap,
    /// The 0-based data row of the table that was used.
    pub row: usize,
    /// Non-fatal problems (missing table values, plate scale far from 0.6″, …), one
    /// sentence each, in the order found.
    pub warnings: Vec<String>,
}

/// Plate scale (arcsec/pixel) that AIA level-1 data have; a map more than 1 % away from it
/// was probably resampled, which makes the relative CRPIX update wrong (aiapy warns too).
pub const LEVEL1_PLATE_SCALE: f64 = 0.6;

/// Header keyword set to `T` by [`update_pointing`] (logical).
pub const KEY_UPDATED: &str = "PNTUPD";
/// Header keyword with the file name (no directories) of the table used (string).
pub const KEY_TABLE: &str = "PNTTAB";
/// Header keyword with the 0-based data row of the table used (integer).
pub const KEY_ROW: &str = "PNTROW";
/// Header keyword with `T_START` of the row used (ISO 8601 UTC string).
pub const KEY_START: &str = "PNTSTART";
/// Header keyword with `T_STOP` of the row used (ISO 8601 UTC string).
pub const KEY_STOP: &str = "PNTSTOP";

fn header_number(map: MapView<'_>, key: &str) -> Result<Option<f64>> {
    match map.header.get(key) {
        None => Ok(None),
        Some(v) => match v.as_f64() {
            Some(x) if x.is_finite() => Ok(Some(x)),
            _ => Err(Error::BadKeyword {
                file: map.source.clone(),
                key: key.into(),
                reason: format!("not a finite number ({v:?})"),
            }),
        },
    }
}

/// A numeric keyword if present and finite (informational keywords: never an error).
fn finite(map: MapView<'_>, key: &str) -> Option<f64> {
    map.header.get_f64(key).filter(|v| v.is_finite())
}

fn required_number(map: MapView<'_>, key: &str) -> Result<f64> {
    header_number(map, key)?.ok_or_else(|| Error::MissingKeyword {
        file: map.source.clone(),
        key: key.into(),
    })
}

/// The `T_OBS` keyword of a map as a UTC instant.
///
/// Errors: [`Error::MissingKeyword`] if absent, [`Error::BadKeyword`] if not a string or
/// not a parseable time.
pub fn t_obs<'a>(map: impl Into<MapView<'a>>) -> Result<UtcTime> {
    let map = map.into();
    let v = crate::map::required(map.header, map.source, "T_OBS")?;
    let s = match v {
        Value::Str(s) => s,
        other => {
            return Err(Error::BadKeyword {
                file: map.source.clone(),
                key: "T_OBS".into(),
                reason: format!("not a time string ({other:?})"),
            })
        }
    };
    parse_time(s).map_err(|e| Error::BadKeyword {
        file: map.source.clone(),
        key: "T_OBS".into(),
        reason: format!("cannot parse '{s}': {e}"),
    })
}

fn table_name(source: &Source) -> String {
    match source.path() {
        Some(p) => p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| p.display().to_string()),
        None => "<memory>".into(),
    }
}

/// Update the pointing keywords of a level-1 map from the master pointing table
/// (aiapy's current `update_pointing`, semantics.md §5.1). Pixels are not touched.
///
/// * Row: the first with `T_START ≤ T_OBS < T_STOP` (UTC; `T_OBS`, not `DATE-OBS`).
/// * `CRPIX1 ← CRPIX1 + (X0 − X0_MP)`, `CRPIX2 ← CRPIX2 + (Y0 − Y0_MP)` (pixels; X0/Y0 and
///   X0_MP/Y0_MP are 0-based CCD positions, so only their difference enters and cut-outs of
///   level-1 data are handled). If `X0_MP` or `Y0_MP` is absent (or not finite), the
///   reference pixel is left alone with a warning, as aiapy.
/// * `X0_MP ← X0`, `Y0_MP ← Y0` (aiapy), `INST_ROT ← INSTROT`, `IMSCL_MP ← IMSCALE` (as
///   JSOC's own level-1 processing writes them; aiapy leaves these two stale).
/// * `CDELT1 = CDELT2 = IMSCALE` (arcsec/pixel).
/// * `CROTA2 = INSTROT + SAT_ROT` (degrees). `SAT_ROT` must be in the header: as in aiapy
///   (which raises `KeyError`), an absent `SAT_ROT` is an [`Error::MissingKeyword`] — JSOC's
///   own code would use 0 instead; we prefer not to guess a roll silently.
/// * `PC1_1 … PC2_2` and `CD1_1 … CD2_2` are removed so that the rotation comes from
///   `CROTA2` (sunpy precedence PC > CD > CROTA2). Only if the header would then have no
///   `CROTA2` at all (INSTROT missing and no old `CROTA2`) are they kept, with a warning.
/// * A NaN (missing) table value leaves the keywords derived from it unchanged and adds a
///   warning; so does a non-positive `IMSCALE`.
/// * Warnings also when the input `CDELT1` or `CDELT2` differs from 0.6″ by more than 1 %
///   (as aiapy: the map was probably resampled) and when `LVL_NUM` > 1 (not in aiapy).
/// * Records the update: `PNTUPD = T`, `PNTTAB` = table file name, `PNTROW` = 0-based data
///   row, `PNTSTART`/`PNTSTOP` = the row's interval (ISO UTC), and a HISTORY card
///   `aiaprep <version> update_pointing: table FILE row K (line L) T_START … T_STOP`,
///   followed by one listing the old → new values. `MPO_REC` (the JSOC record the level-1
///   pointing came from) is left as it was.
///
/// Applying it twice with the same table gives the same keyword values as applying it once
/// (the CRPIX update is relative to `X0_MP`, which the first call sets); only the HISTORY
/// cards are added again.
///
/// Errors: `T_OBS` absent ([`Error::MissingKeyword`]) or unparseable ([`Error::BadKeyword`]);
/// no row covers `T_OBS`, or the table has no columns for the map's channel
/// ([`Error::Pointing`], naming the table file); `WAVELNTH`, `SAT_ROT` or a needed `CRPIX`
/// absent or not finite.
///
/// ```no_run
/// use aiaprep::pointing::{update_pointing, PointingTable};
/// let table = PointingTable::read_csv(std::path::Path::new("master_pointing3h.csv"))?;
/// let l1 = aiaprep::fits::read(std::path::Path::new("aia.lev1.171A.fits"))?;
/// let upd = update_pointing(&l1, &table)?; // CRPIX, CDELT, CROTA2 from the table row
/// for w in &upd.warnings { eprintln!("warning: {w}"); }
/// let l15 = aiaprep::cpu::register(&upd.map, &Default::default())?;
/// # let _ = l15;
/// # Ok::<(), aiaprep::Error>(())
/// ```
pub fn update_pointing(map: &AiaMap, table: &PointingTable) -> Result<PointingUpdate> {
    let (header, row, warnings) = updated_header(map.view(), table)?;
    Ok(PointingUpdate {
        map: AiaMap::new(map.data.clone(), header, map.source.clone()),
        row,
        warnings,
    })
}

/// [`update_pointing`] without copying the pixels: replaces the header of `map` and
/// returns `(row, warnings)` (0-based data row of the table, non-fatal problems). On error
/// the map is unchanged.
pub fn update_pointing_in_place(
    map: &mut AiaMap,
    table: &PointingTable,
) -> Result<(usize, Vec<String>)> {
    let (header, row, warnings) = updated_header(map.view(), table)?;
    map.header = header;
    Ok((row, warnings))
}

/// The header of [`update_pointing`] without touching pixels (only `map`'s header, shape
/// and source are read): `(header, row, warnings)` as [`update_pointing_in_place`].
///
/// Errors: as [`update_pointing`].
pub fn updated_header(
    map: MapView<'_>,
    table: &PointingTable,
) -> Result<(Header, usize, Vec<String>)> {
    let wavelength = map.wavelength()?;
    let t = t_obs(map)?;
    let row = table.find_row(t).ok_or_else(|| {
        let (first, last) = match (table.rows.first(), table.rows.last()) {
            (Some(a), Some(b)) => (a.t_start.to_string(), b.t_stop.to_string()),
            _ => ("-".into(), "-".into()),
        };
        table_error(
            &table.source,
            None,
            format!(
                "no row with T_START <= T_OBS < T_STOP for T_OBS = {t} of {} \
                 (first T_START {first}, last T_STOP {last})",
                map.source
            ),
        )
    })?;
    let e = table.entry(row, wavelength)?;
    let r = &table.rows[row];
    let sat_rot = required_number(map, "SAT_ROT")?;
    let www = format!("A_{wavelength:03}");
    let mut warnings = Vec::new();
    let mut changes: Vec<String> = Vec::new();

    for key in ["CDELT1", "CDELT2"] {
        if let Some(c) = finite(map, key) {
            if (c / LEVEL1_PLATE_SCALE - 1.0).abs() >= 0.01 {
                warnings.push(format!(
                    "{key} = {c} arcsec/pixel differs from {LEVEL1_PLATE_SCALE} by more than 1 %: \
                     the map was probably resampled and the updated pointing is likely wrong"
                ));
            }
        }
    }
    if let Some(l) = finite(map, "LVL_NUM") {
        if l > 1.0 {
            warnings.push(format!(
                "LVL_NUM = {l}: the pointing update is meant for level-1 data"
            ));
        }
    }

    let mut h: Header = map.header.clone();
    let set = |h: &mut Header, key: &str, new: f64, changes: &mut Vec<String>| {
        let old = h.get_f64(key);
        h.set_f64(key, new, None);
        changes.push(match old {
            Some(o) => format!("{key} {o}->{new}"),
            None => format!("{key} ->{new}"),
        });
    };
    let missing = |field: &str, keys: &str| {
        format!(
            "missing value {www}_{field} in {} row {row} (line {}): {keys} not updated",
            table_name(&table.source),
            r.line
        )
    };

    // Reference pixel and Sun-centre keywords.
    let x0_old = finite(map, "X0_MP");
    let y0_old = finite(map, "Y0_MP");
    let relative = x0_old.is_some() && y0_old.is_some();
    if !relative {
        warnings.push(
            "X0_MP and/or Y0_MP keywords are missing: reference pixel (CRPIX1/CRPIX2) not updated"
                .into(),
        );
    }
    for (field, new, old, crpix, mp) in [
        ("X0", e.x0, x0_old, "CRPIX1", "X0_MP"),
        ("Y0", e.y0, y0_old, "CRPIX2", "Y0_MP"),
    ] {
        if !new.is_finite() {
            warnings.push(missing(field, &format!("{crpix} and {mp}")));
            continue;
        }
        if relative {
            if let Some(old) = old {
                let c = required_number(map, crpix)?;
                set(&mut h, crpix, c + (new - old), &mut changes);
            }
        }
        set(&mut h, mp, new, &mut changes);
    }

    // Plate scale.
    if e.imscale.is_finite() && e.imscale > 0.0 {
        for key in ["CDELT1", "CDELT2", "IMSCL_MP"] {
            set(&mut h, key, e.imscale, &mut changes);
        }
    } else if e.imscale.is_finite() {
        warnings.push(format!(
            "non-positive {www}_IMSCALE = {} in {} row {row} (line {}): CDELT1, CDELT2 and IMSCL_MP not updated",
            e.imscale,
            table_name(&table.source),
            r.line
        ));
    } else {
        warnings.push(missing("IMSCALE", "CDELT1, CDELT2 and IMSCL_MP"));
    }

    // Roll.
    if e.instrot.is_finite() {
        set(&mut h, "CROTA2", e.instrot + sat_rot, &mut changes);
        set(&mut h, "INST_ROT", e.instrot, &mut changes);
    } else {
        warnings.push(missing("INSTROT", "CROTA2 and INST_ROT"));
    }
    let matrix_keys = [
        "PC1_1", "PC1_2", "PC2_1", "PC2_2", "CD1_1", "CD1_2", "CD2_1", "CD2_2",
    ];
    if h.contains("CROTA2") {
        for k in matrix_keys {
            if h.remove(k) > 0 {
                changes.push(format!("{k} removed"));
            }
        }
    } else if matrix_keys.iter().any(|k| h.contains(k)) {
        warnings.push(
            "no CROTA2 after the update (INSTROT missing): PCi_j/CDi_j kept as the rotation".into(),
        );
    }

    let name = table_name(&table.source);
    h.set(
        KEY_UPDATED,
        Value::Bool(true),
        Some("pointing updated from master pointing table"),
    );
    let tab: String = name.chars().take(68).collect();
    h.set(
        KEY_TABLE,
        Value::Str(tab),
        Some("master pointing table file"),
    );
    h.set(
        KEY_ROW,
        Value::Int(row as i64),
        Some("0-based data row of PNTTAB used"),
    );
    h.set(
        KEY_START,
        Value::Str(r.t_start.to_string()),
        Some("[UTC] T_START of the pointing row"),
    );
    h.set(
        KEY_STOP,
        Value::Str(r.t_stop.to_string()),
        Some("[UTC] T_STOP of the pointing row"),
    );
    h.push_history(&format!(
        "aiaprep {} update_pointing: table {name} row {row} (line {}) T_START {} T_STOP {}",
        crate::VERSION,
        r.line,
        r.t_start,
        r.t_stop
    ));
    if !changes.is_empty() {
        h.push_history(&format!("update_pointing: {}", changes.join(", ")));
    }

    Ok((h, row, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_columns_are_recognised() {
        assert_eq!(channel_column("A_094_X0"), Some((94, 0)));
        assert_eq!(channel_column("A_1600_INSTROT"), Some((1600, 3)));
        assert_eq!(channel_column("A_171_X0_ERR"), None);
        assert_eq!(channel_column("A__X0"), None);
        assert_eq!(channel_column("T_START"), None);
    }
}
