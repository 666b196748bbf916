//! The CSV records of a pointing table: fields split on commas, `"…"` quoting with `""`
//! for a quote inside, and values that read as NaN (JSOC's MISSING).

use std::borrow::Cow;

/// Split one CSV record into fields (quotes removed, unquoted fields trimmed).
pub(super) fn split_record(line: &str) -> std::result::Result<Vec<Cow<'_, str>>, String> {
    if !line.contains('"') {
        // Fast path (the usual JSOC export): no quoting, borrow the fields.
        return Ok(line.split(',').map(|f| Cow::Borrowed(f.trim())).collect());
    }
    let mut fields = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        // One field.
        while chars.peek().is_some_and(|c| *c == ' ' || *c == '\t') {
            chars.next();
        }
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                if c == '"' {
                    if chars.peek() == Some(&'"') {
                        chars.next();
                        field.push('"');
                    } else {
                        closed = true;
                        break;
                    }
                } else {
                    field.push(c);
                }
            }
            if !closed {
                return Err(format!(
                    "field {} has an unterminated quote",
                    fields.len() + 1
                ));
            }
            while chars.peek().is_some_and(|c| *c == ' ' || *c == '\t') {
                chars.next();
            }
            match chars.peek() {
                None | Some(',') => {}
                Some(c) => {
                    return Err(format!(
                        "field {}: unexpected '{c}' after a closing quote",
                        fields.len() + 1
                    ))
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                field.push(c);
                chars.next();
            }
            field = field.trim().to_string();
        }
        fields.push(Cow::Owned(field));
        match chars.next() {
            Some(',') => continue,
            _ => break,
        }
    }
    Ok(fields)
}

/// A table value: empty / NaN / missing / `--` → NaN.
pub(super) fn parse_value(s: &str) -> Option<f64> {
    let t = s.trim();
    if t.is_empty()
        || t.eq_ignore_ascii_case("nan")
        || t.eq_ignore_ascii_case("missing")
        || t == "--"
    {
        return Some(f64::NAN);
    }
    t.parse::<f64>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_split_handles_quotes() {
        assert_eq!(
            split_record(r#" a , "b,c" ,"d""e",,"" "#).unwrap(),
            vec!["a", "b,c", "d\"e", "", ""]
        );
        assert!(split_record(r#"a,"b"#).is_err());
        assert!(split_record(r#"a,"b"x"#).is_err());
    }
}
