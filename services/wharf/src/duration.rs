//! Humane durations on the command line: `500ms`, `30s`, `2m`, `1h`, `1m30s`, `1.5s`.
//!
//! Every option of the CLI that takes a time is read by [`parse`] (or [`parse_positive`] when zero
//! makes no sense), so they all accept the same spellings and fail with the same hint; a command
//! adds its own rules on top (`wharf chaos --for` wants whole seconds within an hour and a
//! unit). [`human`] prints a duration back in the same spelling, for messages.

use std::time::Duration;

/// How to write a duration, appended to every parse error.
const HINT: &str = "use e.g. 500ms, 30s, 2m, 1h or 1m30s; a bare number is seconds";

/// `500ms`, `30s`, `2m` (or `2min`), `1h`, `1m30s`, `1.5s`, `1m 30s`; a bare number is seconds.
/// Zero is allowed.
pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err(format!("empty duration: {HINT}"));
    }
    if let Ok(seconds) = text.parse::<f64>() {
        return Duration::try_from_secs_f64(seconds).map_err(|_| format!("\"{text}\" is not a duration: {HINT}"));
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let number_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let unit_len =
            rest[number_len..].find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len() - number_len);
        // Spaces around a unit are only separators: `30 s`, `1m 30s`.
        let (number, unit) = (&rest[..number_len], rest[number_len..number_len + unit_len].trim());
        let number: f64 = number
            .parse()
            .map_err(|_| format!("\"{text}\" is not a duration: expected a number before \"{unit}\"; {HINT}"))?;
        let seconds_per_unit = match unit {
            "ms" => 0.001,
            "s" => 1.0,
            "m" | "min" => 60.0,
            "h" => 3600.0,
            "" => return Err(format!("\"{text}\" is not a duration: the number {number} has no unit; {HINT}")),
            other => return Err(format!("\"{text}\" is not a duration: unknown unit \"{other}\"; {HINT}")),
        };
        let part = Duration::try_from_secs_f64(number * seconds_per_unit)
            .map_err(|_| format!("\"{text}\" is too long a duration"))?;
        total = total.checked_add(part).ok_or_else(|| format!("\"{text}\" is too long a duration"))?;
        rest = &rest[number_len + unit_len..];
    }
    Ok(total)
}

/// A duration above zero.
pub fn parse_positive(text: &str) -> Result<Duration, String> {
    let duration = parse(text)?;
    if duration.is_zero() { Err(format!("\"{text}\" is zero: the duration must be above 0")) } else { Ok(duration) }
}

/// `500ms`, `30s`, `2m`, `1m30s`; `2.5s` when there are milliseconds beyond a second.
pub fn human(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis < 1000 {
        format!("{millis}ms")
    } else if !millis.is_multiple_of(1000) {
        format!("{:.1}s", duration.as_secs_f64())
    } else {
        let seconds = duration.as_secs();
        match (seconds / 60, seconds % 60) {
            (0, s) => format!("{s}s"),
            (m, 0) => format!("{m}m"),
            (m, s) => format!("{m}m{s}s"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_humane_units() {
        let ok = |text: &str| parse(text).unwrap();
        assert_eq!(ok("500ms"), Duration::from_millis(500));
        assert_eq!(ok("30s"), Duration::from_secs(30));
        assert_eq!(ok("2m"), Duration::from_secs(120));
        assert_eq!(ok("2min"), Duration::from_secs(120));
        assert_eq!(ok("1h"), Duration::from_secs(3600));
        assert_eq!(ok("1m30s"), Duration::from_secs(90));
        assert_eq!(ok("1m 30s"), Duration::from_secs(90));
        assert_eq!(ok(" 30 s "), Duration::from_secs(30));
        assert_eq!(ok("1.5s"), Duration::from_millis(1500));
        assert_eq!(ok("45"), Duration::from_secs(45));
        assert_eq!(ok("0"), Duration::ZERO);
        for bad in ["5x", "", "s", "1m30", "ten seconds", "-3s", "-3", "1..5s", "inf", "NaN"] {
            let err = parse(bad).unwrap_err();
            assert!(err.contains("500ms"), "{bad:?}: {err}");
        }
        assert!(parse("5x").unwrap_err().contains("unknown unit \"x\""));
        assert!(parse("1m30").unwrap_err().contains("the number 30 has no unit"));
        assert!(parse("99999999999999999999h").unwrap_err().contains("too long"));
        assert!(parse_positive("0s").unwrap_err().contains("above 0"));
        assert_eq!(parse_positive("1ms"), Ok(Duration::from_millis(1)));
    }

    #[test]
    fn durations_print_back_humanely() {
        for text in ["500ms", "30s", "2m", "1m30s", "1.5s"] {
            assert_eq!(human(parse(text).unwrap()), text);
        }
    }
}
