//! Money: exact decimals with an ISO 4217 currency, scaled to the currency's minor unit.
//!
//! Input amounts may be JSON numbers or decimal strings (serde_json keeps the number's
//! text, so `1.005` stays exactly `1.005`). Trailing zeros past the minor unit are accepted
//! and dropped (`"1000.00"` JPY → `1000`); real extra precision is refused
//! (`invalid_amount`). Amounts the API computes are rounded half-even.

use crate::error::{ApiError, ErrorCode};
use rust_decimal::{Decimal, RoundingStrategy};
use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde_json::Value;
use std::borrow::Cow;

/// An upper-case ISO 4217 code with its minor-unit exponent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Currency {
    code: [u8; 3],
    pub exponent: u32,
}

impl Currency {
    pub fn parse(raw: &str) -> Result<Currency, ApiError> {
        let bad = || {
            ApiError::new(
                400,
                ErrorCode::InvalidCurrency,
                format!(
                    "`{}` is not an ISO 4217 currency code",
                    crate::context::truncate(raw, 16)
                ),
            )
        };
        if raw.len() != 3 || !raw.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(bad());
        }
        let c = iso_currency::Currency::from_code(raw).ok_or_else(bad)?;
        // Funds and metals (XAU, XDR, ...) have no minor unit: not money we pay out.
        let exponent = c.exponent().ok_or_else(bad)? as u32;
        let b = raw.as_bytes();
        Ok(Currency {
            code: [b[0], b[1], b[2]],
            exponent,
        })
    }

    pub fn code(&self) -> &str {
        std::str::from_utf8(&self.code).expect("ASCII")
    }

    /// Rounds half-even to the minor unit (for computed amounts).
    pub fn round(&self, d: Decimal) -> Decimal {
        let mut r = d.round_dp_with_strategy(self.exponent, RoundingStrategy::MidpointNearestEven);
        r.rescale(self.exponent);
        r
    }

    /// The canonical string: exactly `exponent` decimals (`"12.00"`, `"1200"`, `"1.500"`).
    pub fn format(&self, d: Decimal) -> String {
        let mut r = d;
        r.rescale(self.exponent);
        r.to_string()
    }

    /// An input amount for this currency: exact, or `invalid_amount`.
    pub fn exact(&self, d: Decimal, field: &str) -> Result<Decimal, ApiError> {
        let n = d.normalize();
        if n.scale() > self.exponent {
            return Err(ApiError::new(
                400,
                ErrorCode::InvalidAmount,
                format!(
                    "{field} has more decimals than {} allows ({})",
                    self.code(),
                    self.exponent
                ),
            )
            .with("field", field));
        }
        let mut r = n;
        r.rescale(self.exponent);
        Ok(r)
    }
}

/// Parses a JSON number or decimal string into an exact decimal (no currency scaling yet).
pub fn parse_decimal(v: &Value, field: &str) -> Result<Decimal, ApiError> {
    let bad = |why: &str| {
        ApiError::new(400, ErrorCode::InvalidAmount, format!("{field} {why}")).with("field", field)
    };
    let text = match v {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_string(),
        _ => return Err(bad("must be a decimal number or string")),
    };
    if text.is_empty() || text.len() > 40 {
        return Err(bad("is not a decimal number"));
    }
    let parsed = if text.contains(['e', 'E']) {
        Decimal::from_scientific(&text)
    } else {
        Decimal::from_str_exact(&text)
    };
    parsed.map_err(|_| bad("is not a decimal number"))
}

/// The largest amount accepted on input (10^15): far above any real payment, far below
/// where decimal arithmetic (percentages, sums of many commissions) could overflow.
pub const MAX_AMOUNT: Decimal = Decimal::from_parts(2_764_472_320, 232_830, 0, false, 0);

/// A non-negative amount in `currency`, exact to its minor unit.
pub fn parse_amount(v: &Value, currency: &Currency, field: &str) -> Result<Decimal, ApiError> {
    let d = parse_decimal(v, field)?;
    if d.abs() > MAX_AMOUNT {
        return Err(ApiError::new(
            400,
            ErrorCode::InvalidAmount,
            format!("{field} is larger than 10^15"),
        )
        .with("field", field));
    }
    if d.is_sign_negative() && !d.is_zero() {
        return Err(ApiError::new(
            400,
            ErrorCode::InvalidAmount,
            format!("{field} must not be negative"),
        )
        .with("field", field));
    }
    currency.exact(d.abs(), field)
}

/// An exact decimal as the API writes it: a string, never a JSON number (`"12.00"`, `"1200"`,
/// `"-5.00"` for a clawback, `"12.5"` for a percent). Amounts carry exactly their currency's
/// minor-unit decimals ([`DecimalString::amount`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct DecimalString(pub String);

impl DecimalString {
    /// `d` in the currency `code` (as stored), scaled to its minor unit.
    pub fn amount(d: Decimal, code: &str) -> DecimalString {
        DecimalString(Currency::parse(code).map_or(d.to_string(), |c| c.format(d)))
    }
}

impl JsonSchema for DecimalString {
    fn schema_name() -> Cow<'static, str> {
        "DecimalString".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": "^-?[0-9]+(\\.[0-9]+)?$",
            "description": "An exact decimal number as a string; an amount has exactly its currency's minor-unit decimals (`\"12.00\"` USD, `\"1200\"` JPY, `\"1.500\"` KWD).",
            "examples": ["12.00"],
        })
    }
}

/// An input amount ([`parse_amount`]): a JSON number or a decimal string, not negative, at
/// most 10^15, with no more decimals than the currency's minor unit (else `invalid_amount`).
/// For request schemas (`#[schemars(with = "AmountInput")]` on a `Value` field).
pub struct AmountInput;

impl JsonSchema for AmountInput {
    fn schema_name() -> Cow<'static, str> {
        "AmountInput".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "An amount: a JSON number or a decimal string, exact to the currency's minor unit (`\"12.50\"` USD; trailing zeros past it are dropped, more decimals are refused with `invalid_amount`), from 0 to 10^15.",
            "anyOf": [
                {"type": "number", "minimum": 0, "maximum": 1_000_000_000_000_000i64},
                {"type": "string", "pattern": "^[0-9]{1,16}(\\.[0-9]{1,20})?$"},
            ],
            "examples": ["12.50"],
        })
    }
}

/// An ISO 4217 currency code with a minor unit ([`Currency::parse`]: else `invalid_currency`).
pub struct CurrencyCode;

impl JsonSchema for CurrencyCode {
    fn schema_name() -> Cow<'static, str> {
        "CurrencyCode".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": "^[A-Z]{3}$",
            "description": "An ISO 4217 currency code, upper case (`USD`).",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::str::FromStr;

    fn cur(c: &str) -> Currency {
        Currency::parse(c).unwrap()
    }

    #[test]
    fn currencies() {
        assert_eq!(cur("USD").exponent, 2);
        assert_eq!(cur("JPY").exponent, 0);
        assert_eq!(cur("KWD").exponent, 3);
        for bad in ["usd", "US", "USDX", "ZZZ", "", "XAU"] {
            assert_eq!(
                Currency::parse(bad).unwrap_err().code,
                ErrorCode::InvalidCurrency,
                "{bad}"
            );
        }
    }

    #[test]
    fn amounts_are_exact_and_normalised() {
        let ok = |v: Value, c: &str| cur(c).format(parse_amount(&v, &cur(c), "value").unwrap());
        assert_eq!(ok(json!("12"), "USD"), "12.00");
        assert_eq!(ok(json!(12.5), "USD"), "12.50");
        assert_eq!(ok(json!("1000.00"), "JPY"), "1000");
        assert_eq!(ok(json!("1.5"), "KWD"), "1.500");
        assert_eq!(ok(json!(1e2), "USD"), "100.00");
        let err = |v: Value, c: &str| parse_amount(&v, &cur(c), "value").unwrap_err().code;
        assert_eq!(err(json!("1000.5"), "JPY"), ErrorCode::InvalidAmount);
        assert_eq!(err(json!("1.005"), "USD"), ErrorCode::InvalidAmount);
        assert_eq!(
            err(json!(1.005), "USD"),
            ErrorCode::InvalidAmount,
            "JSON numbers keep their exact text"
        );
        assert_eq!(err(json!("-1"), "USD"), ErrorCode::InvalidAmount);
        assert_eq!(err(json!("abc"), "USD"), ErrorCode::InvalidAmount);
        assert_eq!(err(json!(true), "USD"), ErrorCode::InvalidAmount);
        assert_eq!(err(json!("NaN"), "USD"), ErrorCode::InvalidAmount);
        assert_eq!(err(json!("1e30"), "USD"), ErrorCode::InvalidAmount);
        assert_eq!(
            err(json!("99999999999999999999999999"), "USD"),
            ErrorCode::InvalidAmount
        );
        assert_eq!(MAX_AMOUNT, Decimal::from(1_000_000_000_000_000i64));
        assert_eq!(ok(json!("1000000000000000"), "USD"), "1000000000000000.00");
    }

    #[test]
    fn rounding_is_half_even() {
        let usd = cur("USD");
        assert_eq!(
            usd.format(usd.round(Decimal::from_str("0.125").unwrap())),
            "0.12"
        );
        assert_eq!(
            usd.format(usd.round(Decimal::from_str("0.135").unwrap())),
            "0.14"
        );
        let jpy = cur("JPY");
        assert_eq!(
            jpy.format(jpy.round(Decimal::from_str("2.5").unwrap())),
            "2"
        );
    }
}
