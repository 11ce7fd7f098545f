//! Integers as JSON Schema counts them: any number whose fractional part is zero, however it is
//! written (`3`, `3.0`, `3e2`). A document that says `type: integer` tells a client that
//! `558314644.0` is one, so the services take it as one.

use serde_json::Number;

/// The largest magnitude a JSON number written with a fraction or an exponent holds exactly (2^53).
const EXACT: f64 = 9_007_199_254_740_992.0;

/// The number as an `i64` when it is an integer in range; beyond ±2^53 only when written without
/// a fraction or exponent (an `f64` no longer holds every integer there).
pub fn whole(number: &Number) -> Option<i64> {
    if let Some(n) = number.as_i64() {
        return Some(n);
    }
    let value = number.as_f64()?;
    (value.fract() == 0.0 && value.abs() <= EXACT).then_some(value as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn number(text: &str) -> Number {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn integers_however_written() {
        for (text, want) in [("3", 3), ("-7", -7), ("558314644.0", 558_314_644), ("3e2", 300), ("-0.0", 0), ("1E0", 1)]
        {
            assert_eq!(whole(&number(text)), Some(want), "{text}");
        }
        assert_eq!(whole(&number("9223372036854775807")), Some(i64::MAX));
        assert_eq!(whole(&number("9007199254740992.0")), Some(9_007_199_254_740_992));
    }

    #[test]
    fn a_body_keeps_the_integer_the_client_wrote() {
        // Without correctly rounded parsing this arrives as 3895520399053462.5.
        let body = crate::strict_json::parse(br#"{"id": 3895520399053462.0}"#).unwrap();
        assert_eq!(body["id"].as_number().and_then(whole), Some(3_895_520_399_053_462));
    }

    #[test]
    fn fractions_and_what_is_out_of_range_are_not() {
        for text in ["2.5", "1e-3", "9223372036854775808", "1e19", "9007199254740994.0", "-1e300"] {
            assert_eq!(whole(&number(text)), None, "{text}");
        }
    }
}
