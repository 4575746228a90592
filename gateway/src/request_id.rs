//! `X-Request-Id`: the client's value echoed when it is 1–128 printable ASCII characters,
//! else a new ULID. It follows the request into the worker's logs.

pub fn choose(client_value: Option<&[u8]>) -> String {
    match client_value {
        Some(v) if (1..=128).contains(&v.len()) && v.iter().all(|b| (0x20..=0x7e).contains(b)) => {
            String::from_utf8_lossy(v).into_owned()
        }
        _ => ulid::Ulid::new().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::choose;

    #[test]
    fn echoes_only_sane_ids() {
        assert_eq!(choose(Some(b"abc-123")), "abc-123");
        assert_eq!(choose(Some(&[b'x'; 128])).len(), 128);
        assert_eq!(choose(Some(&[b'x'; 129])).len(), 26);
        assert_eq!(choose(Some(b"has space")), "has space");
        assert_eq!(choose(Some(b"tab\there")).len(), 26);
        assert_eq!(choose(Some(b"")).len(), 26);
        assert_eq!(choose(Some("é".as_bytes())).len(), 26);
        assert_eq!(choose(None).len(), 26);
    }
}
