//! Identities the domain derives from a delivery: job ids, the entity a cooldown holds,
//! and the name a delivery's stored event goes under. How items are addressed in a table is
//! the adapter's business (`switchyard_aws::dynamo::keys`).

use sha2::{Digest, Sha256};

/// The entity a cooldown is kept under for an event of `event_source`: internal events
/// (`internal.<name>`) keep theirs apart, per source, so an emitted event never takes a
/// cooldown that a webhook delivery for the same entity then meets.
pub fn cooldown_entity<'a>(event_source: &str, entity: &'a str) -> std::borrow::Cow<'a, str> {
    if event_source.starts_with(crate::event::INTERNAL_SOURCE_PREFIX) {
        format!("{event_source}|{entity}").into()
    } else {
        entity.into()
    }
}

/// A job id that is the same for the same (source, delivery, module): a resumed delivery
/// finds the job an earlier attempt wrote instead of creating a second one.
pub fn job_id(source: &str, event_id: &str, module: &str) -> String {
    let mut h = Sha256::new();
    for part in [source, event_id, module] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    hex::encode(&h.finalize()[..16])
}

/// `EVENT#{source}#{id}#{digest}`: the name under which a delivery's event, its payload
/// included, is stored once ([`super::PayloadStore::put_payload`]). The body's digest is in
/// the name: a delivery that reuses the id with another body (a conflict, which never holds
/// the reservation anyway) cannot overwrite it.
pub fn event_payload(source: &str, id: &str, digest: &str) -> String {
    let digest = digest.strip_prefix("xxh3:").unwrap_or(digest);
    crate::text::concat(&["EVENT#", source, "#", id, "#", digest])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_ids_are_stable_and_distinct() {
        assert_eq!(job_id("gh", "1", "a"), job_id("gh", "1", "a"));
        assert_ne!(job_id("gh", "1", "a"), job_id("gh", "1", "b"));
        // The separator keeps ("a","bc") and ("ab","c") apart.
        assert_ne!(job_id("a", "bc", "m"), job_id("ab", "c", "m"));
        assert_eq!(job_id("gh", "1", "a").len(), 32);
    }

    #[test]
    fn internal_events_keep_their_cooldowns_apart() {
        assert_eq!(cooldown_entity("github", "o/r#1"), "o/r#1");
        assert_eq!(
            cooldown_entity("internal.deploy", "o/r#1"),
            "internal.deploy|o/r#1"
        );
    }
}
