//! How the install is tenanted (`OP_MODE`): read once, here, by every binary that cares —
//! the gateway (which URL prefix names the tenant), `openpartner dev` and `migrate`, and the
//! local stack that passes it on to the gateway it starts.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Hosted: `/api/t/<slug>/...`
    Multi,
    /// Self-host: `/api/...`, one tenant.
    Single,
}

impl Mode {
    /// `OP_MODE`: `multi` (the default when unset or blank) or `single`.
    pub fn from_env() -> Result<Mode, String> {
        Mode::parse(crate::env::var("OP_MODE").as_deref())
    }

    fn parse(value: Option<&str>) -> Result<Mode, String> {
        match value.map(str::trim) {
            None | Some("") | Some("multi") => Ok(Mode::Multi),
            Some("single") => Ok(Mode::Single),
            Some(other) => Err(format!(
                "OP_MODE must be `multi` or `single`, not `{other}`"
            )),
        }
    }

    /// The value of `OP_MODE` that selects this mode.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Multi => "multi",
            Mode::Single => "single",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Mode;

    #[test]
    fn multi_unless_single() {
        assert_eq!(Mode::parse(None), Ok(Mode::Multi));
        assert_eq!(Mode::parse(Some(" multi ")), Ok(Mode::Multi));
        assert_eq!(Mode::parse(Some("single")), Ok(Mode::Single));
        assert_eq!(
            Mode::parse(Some("both")),
            Err("OP_MODE must be `multi` or `single`, not `both`".to_string())
        );
        for m in [Mode::Multi, Mode::Single] {
            assert_eq!(Mode::parse(Some(m.as_str())), Ok(m));
        }
    }
}
