//! What a GitHub App costs a function instance, for docs/github-app.md: parsing the PEM key
//! (once, at cold start) and signing one app JWT (once per installation token exchange).
//!
//! ```text
//! cargo run --release --example github_app_cost
//! ```

use std::time::Instant;

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use aws_lc_rs::rsa::{KeyPair, KeySize};
use base64::Engine;

fn main() -> anyhow::Result<()> {
    let key = KeyPair::generate(KeySize::Rsa2048).map_err(|_| anyhow::anyhow!("keygen"))?;
    let der = AsDer::<Pkcs8V1Der>::as_der(&key).map_err(|_| anyhow::anyhow!("der"))?;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
    let pem = format!("-----BEGIN PRIVATE KEY-----\n{b64}\n-----END PRIVATE KEY-----\n");
    let n = 200u32;
    let started = Instant::now();
    let mut app = None;
    for _ in 0..n {
        app = Some(switchyard::github_app::GithubApp::new(
            "424242",
            &pem,
            "https://api.github.com",
        )?);
    }
    let parse = started.elapsed() / n;
    let app = app.ok_or_else(|| anyhow::anyhow!("no iterations"))?;
    let started = Instant::now();
    for i in 0..n {
        app.jwt(1_800_000_000 + i64::from(i))?;
    }
    let sign = started.elapsed() / n;
    println!("RSA-2048 key parse and client: {parse:?} each; app JWT (RS256): {sign:?} each");
    Ok(())
}
