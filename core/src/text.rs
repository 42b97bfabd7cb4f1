//! Short strings built on the request path without `fmt`'s machinery: table keys,
//! expression names and request headers are concatenations of a few parts, and `format!`
//! cost each one a walk of its format description, a size guess and growth (about 6 % of
//! the router's user-space instructions per delivery, docs/performance.md, session 16).

/// The parts joined, in one allocation of the exact size.
pub fn concat(parts: &[&str]) -> String {
    concat_reserving(parts, 0)
}

/// The parts joined, with room for `extra` more bytes (a number pushed after them).
pub fn concat_reserving(parts: &[&str], extra: usize) -> String {
    let mut out = String::with_capacity(parts.iter().map(|p| p.len()).sum::<usize>() + extra);
    for part in parts {
        out.push_str(part);
    }
    out
}

/// Appends `n` in decimal, zero-padded to at least `width` digits (`{n:0width$}`).
pub fn push_decimal(out: &mut String, n: u64, width: usize) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    let mut rest = n;
    loop {
        start -= 1;
        // A remainder below 10 fits a byte.
        digits[start] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    for _ in (digits.len() - start)..width {
        out.push('0');
    }
    for &d in &digits[start..] {
        out.push(char::from(d));
    }
}

/// Appends the low `digits` hex digits of `n`, lowercase, most significant first
/// (`{n:032x}` for a `u128` and 32 digits).
pub fn push_hex(out: &mut String, n: u128, digits: u32) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for i in (0..digits.min(32)).rev() {
        out.push(char::from(HEX[((n >> (4 * i)) & 0xf) as usize]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concat_joins_in_order() {
        assert_eq!(
            concat(&["EVENT#", "github", "#", "d-1"]),
            "EVENT#github#d-1"
        );
        assert_eq!(concat(&[]), "");
        assert_eq!(concat(&["", "a", ""]), "a");
    }

    #[test]
    fn decimals_match_format_with_zero_padding() {
        for n in [0u64, 1, 9, 10, 99, 100, 12_345, 1_733_000_000_000, u64::MAX] {
            for width in [0usize, 1, 2, 4, 10, 13, 25] {
                let mut out = String::from("x");
                push_decimal(&mut out, n, width);
                assert_eq!(out, format!("x{n:0width$}"), "{n} {width}");
            }
        }
    }

    #[test]
    fn hex_matches_format() {
        for n in [
            0u128,
            1,
            0xabc,
            u128::from(u64::MAX),
            u128::MAX,
            0x0123_4567_89ab_cdef,
        ] {
            let mut out = String::new();
            push_hex(&mut out, n, 32);
            assert_eq!(out, format!("{n:032x}"));
            let mut low = String::new();
            push_hex(&mut low, n, 4);
            assert_eq!(low, format!("{:04x}", n & 0xffff));
        }
    }
}
