//! Signature header parsing for GitHub, Forgejo, Gitea, GitLab and generic HMAC (hex and
//! base64, with a prefix): arbitrary header values never panic, and what `sign` makes for a
//! body always verifies while the same headers over another body never do.
#![no_main]

use libfuzzer_sys::fuzz_target;
use secrecy::SecretString;
use switchyard_core::config::{Encoding, Source, SourceKind};
use switchyard_core::signature::{sign, verify};
use switchyard_fuzz::{fields, headers, signed_headers};

const SECRET: &str = "fuzz-secret-of-some-length";

fn sources() -> Vec<(Source, &'static str)> {
    let mut hex = Source::new("hmac-hex", SourceKind::Hmac, &[SECRET]);
    hex.hmac.header = "x-signature".into();
    hex.hmac.prefix = Some("sha256=".into());
    hex.hmac.encoding = Encoding::Hex;
    let mut b64 = Source::new("hmac-b64", SourceKind::Hmac, &[SECRET]);
    b64.hmac.header = "x-signature".into();
    b64.hmac.prefix = None;
    b64.hmac.encoding = Encoding::Base64;
    vec![
        (
            Source::new("github", SourceKind::Github, &[SECRET, "old"]),
            "x-hub-signature-256",
        ),
        (
            Source::new("forgejo", SourceKind::Forgejo, &[SECRET]),
            "x-forgejo-signature",
        ),
        (
            Source::new("gitea", SourceKind::Gitea, &[SECRET]),
            "x-gitea-signature",
        ),
        (
            Source::new("gitlab", SourceKind::Gitlab, &[SECRET]),
            "x-gitlab-token",
        ),
        (hex, "x-signature"),
        (b64, "x-signature"),
    ]
}

fuzz_target!(|data: &[u8]| {
    let f = fields(data, 2);
    let (value, body) = (f[0], f[1]);
    let now = time::OffsetDateTime::now_utc();
    for (source, name) in sources() {
        let hostile = headers(&[(name, value)]);
        let _ = verify(&source, &hostile, body, now);

        let secret = SecretString::from(SECRET.to_owned());
        let signed = sign(&source, &secret, body, "fuzz", now).expect("a secret signs");
        let map = signed_headers(&signed);
        assert!(
            verify(&source, &map, body, now).is_ok(),
            "{} does not verify what it signed",
            source.id
        );
        if source.kind != SourceKind::Gitlab {
            let mut other = body.to_vec();
            other.push(b'x');
            assert!(
                verify(&source, &map, &other, now).is_err(),
                "{} verified a changed body",
                source.id
            );
        }
    }
});
