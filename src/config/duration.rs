//! The time syntax of ha.cf (`2`, `1.5`, `500ms`, `2000us`), as cluster-glue reads it.
//!
//! A value is a number made of digits and dots (read like C `atof`, so `1.2.3` is 1.2),
//! optionally followed by blanks and a unit. No unit means seconds; a unit starting with
//! `ms` (any case, so `msec` too) means milliseconds; one starting with `us` (so `usec`)
//! means microseconds. Anything else (`s`, `x`, `e3`, a sign) makes the value invalid.
//! The result is value × unit + 0.5, truncated: rounding half-up to whole milliseconds.

/// Blanks as cluster-glue skips them.
fn is_blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0c')
}

/// C `atof` applied to a run of digits and dots: the longest `digits[.digits]` prefix,
/// 0 when it holds no digit at all (`.` or `..`).
fn atof_digits_and_dots(s: &str) -> f64 {
    let (int_part, rest) = match s.find('.') {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => (s, ""),
    };
    let frac_part = match rest.find('.') {
        Some(i) => &rest[..i],
        None => rest,
    };
    if int_part.is_empty() && frac_part.is_empty() {
        return 0.0;
    }
    let int_part = if int_part.is_empty() { "0" } else { int_part };
    let frac_part = if frac_part.is_empty() { "0" } else { frac_part };
    format!("{int_part}.{frac_part}")
        .parse::<f64>()
        .unwrap_or(0.0)
}

/// Milliseconds for a time value, or None when it is not valid.
///
/// Follows the converter exactly, so leading blanks and blanks between the number and the
/// unit are accepted here; in ha.cf they cannot occur inside one token (`500 ms` is two
/// tokens, and `ms` alone is invalid). Values too large for a C `long` are refused.
pub fn parse_ms(s: &str) -> Option<u64> {
    let s = s.trim_start_matches(is_blank);
    let num_len = s
        .bytes()
        .take_while(|b| b.is_ascii_digit() || *b == b'.')
        .count();
    if num_len == 0 {
        // No sign, no letters: the first character must be a digit or a dot.
        return None;
    }
    let (number, rest) = s.split_at(num_len);
    let unit = rest.trim_start_matches(is_blank);
    let unit_prefix = unit.get(..2).map(str::to_ascii_lowercase);
    let (multiplier, divisor) = match unit_prefix.as_deref() {
        Some("ms") => (1.0, 1.0),
        Some("us") => (1.0, 1000.0),
        _ if unit.is_empty() => (1000.0, 1.0),
        _ => return None,
    };
    let ms = atof_digits_and_dots(number) * multiplier / divisor + 0.5;
    // A C long holds at most 2^63 - 1; anything at or above 2^63 would not convert.
    if !ms.is_finite() || ms >= 9_223_372_036_854_775_808.0 {
        return None;
    }
    Some(ms as u64)
}

#[cfg(test)]
mod tests {
    use super::parse_ms;

    #[test]
    fn plain_seconds() {
        assert_eq!(parse_ms("2"), Some(2000));
        assert_eq!(parse_ms("0"), Some(0));
        assert_eq!(parse_ms("30"), Some(30000));
    }

    #[test]
    fn fractional_seconds() {
        assert_eq!(parse_ms("1.5"), Some(1500));
        assert_eq!(parse_ms(".25"), Some(250));
        assert_eq!(parse_ms("0.5"), Some(500));
        assert_eq!(parse_ms("5."), Some(5000));
    }

    #[test]
    fn milliseconds_any_case() {
        assert_eq!(parse_ms("500ms"), Some(500));
        assert_eq!(parse_ms("2000ms"), Some(2000));
        assert_eq!(parse_ms("1500MS"), Some(1500));
        assert_eq!(parse_ms("1500Ms"), Some(1500));
    }

    #[test]
    fn anything_starting_with_ms_is_ms() {
        assert_eq!(parse_ms("1msec"), Some(1));
        assert_eq!(parse_ms("7msfoo"), Some(7));
    }

    #[test]
    fn microseconds() {
        assert_eq!(parse_ms("2000us"), Some(2));
        assert_eq!(parse_ms("1500000us"), Some(1500));
        assert_eq!(parse_ms("1500000usec"), Some(1500));
        assert_eq!(parse_ms("2000US"), Some(2));
    }

    #[test]
    fn rounding_half_up() {
        assert_eq!(parse_ms("1.5ms"), Some(2));
        assert_eq!(parse_ms("1.4ms"), Some(1));
        assert_eq!(parse_ms("0.0005"), Some(1));
        assert_eq!(parse_ms("0.0004"), Some(0));
        assert_eq!(parse_ms("1500us"), Some(2));
        assert_eq!(parse_ms("1499us"), Some(1));
    }

    #[test]
    fn invalid_values() {
        for bad in [
            "1s", "3x", "1e3", "abc", "-1", "+1", "", "ms", "s", "1 s", "0x10", " ",
        ] {
            assert_eq!(parse_ms(bad), None, "{bad:?} should be invalid");
        }
    }

    #[test]
    fn atof_style_number() {
        assert_eq!(parse_ms("1.2.3"), Some(1200));
        assert_eq!(parse_ms("1.2.3ms"), Some(1));
        assert_eq!(parse_ms("."), Some(0));
        assert_eq!(parse_ms(".."), Some(0));
    }

    #[test]
    fn converter_accepts_blanks_around() {
        // The converter itself allows these; ha.cf tokenizing never hands them over.
        assert_eq!(parse_ms("500 ms"), Some(500));
        assert_eq!(parse_ms(" 2"), Some(2000));
        assert_eq!(parse_ms("2 "), Some(2000));
        assert_eq!(parse_ms("2\r\n"), Some(2000));
    }

    #[test]
    fn huge_values_do_not_overflow() {
        assert_eq!(parse_ms("99999999999999999999999999"), None);
        assert_eq!(parse_ms("1000000000"), Some(1_000_000_000_000));
        let long = "9".repeat(400);
        assert_eq!(parse_ms(&long), None);
    }
}
