//! Every file in `events/` parses, so none rots: raw payloads normalize for their kind, and
//! API Gateway envelopes carry a body that verifies with the documented development secret.

use std::path::Path;

use http::HeaderMap;
use switchyard::config::{Source, SourceKind};
use switchyard::signature::verify;

#[test]
fn every_sample_event_parses() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../events");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        let value: serde_json::Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        seen += 1;
        if let Some(rest) = name.strip_prefix("apigw-") {
            let request: lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequest =
                serde_json::from_value(value).unwrap_or_else(|e| panic!("{name}: {e}"));
            let body = request.body.clone().unwrap_or_default();
            let mut headers = HeaderMap::new();
            for (k, v) in request.headers.iter() {
                headers.insert(k.clone(), v.clone());
            }
            let source = Source::new("github", SourceKind::Github, &["switchyard-dev-secret"]);
            let ok = verify(
                &source,
                &headers,
                body.as_bytes(),
                time::OffsetDateTime::now_utc(),
            )
            .is_ok();
            assert_eq!(ok, !rest.contains("bad-signature"), "{name}");
            continue;
        }
        if name.starts_with("eventbridge-") {
            assert_eq!(value["detail-type"], "Scheduled Event", "{name}");
            continue;
        }
        let kind = name.split('-').next().unwrap();
        assert!(
            SourceKind::parse(kind).is_some(),
            "{name}: name must start with a source kind"
        );
        assert!(value.is_object(), "{name}");
    }
    assert!(seen >= 12, "only {seen} sample files");
}
