//! Key builders: the one place that knows how items are addressed in the table (the
//! domain's identities, job ids and cooldown entities, are `switchyard_core::store::ids`).

use sha2::{Digest, Sha256};
use switchyard_core::text::{concat, concat_reserving, push_decimal};

/// Sort key of event items.
pub const EVENT_SK: &str = "EVENT";
/// Sort key of cooldown items.
pub const COOLDOWN_SK: &str = "COOLDOWN";
/// Sort key of job items.
pub const JOB_SK: &str = "JOB";

// Partition keys may be up to 2048 bytes; entity keys come from payloads, so long ones are
// replaced by their hash to stay well inside the limit.
const MAX_ENTITY_IN_KEY: usize = 512;

/// `EVENT#{source}#{id}`: one item per delivery, so de-duplication is one conditional write.
pub fn event(source: &str, id: &str) -> String {
    concat(&["EVENT#", source, "#", id])
}

/// `COOLDOWN#{module}#{entity}`: one item per (module, entity) pair.
pub fn cooldown(module: &str, entity: &str) -> String {
    if entity.len() > MAX_ENTITY_IN_KEY {
        format!(
            "COOLDOWN#{module}#sha256:{}",
            hex::encode(Sha256::digest(entity.as_bytes()))
        )
    } else {
        concat(&["COOLDOWN#", module, "#", entity])
    }
}

/// Sort key of settings items.
pub const SETTINGS_SK: &str = "SETTINGS";

/// `SETTINGS#{scope}`.
pub fn settings(scope: &str) -> String {
    format!("SETTINGS#{scope}")
}

/// The scheduler's state item: `SCHEDULER` / `STATE`.
pub const SCHEDULER_PK: &str = "SCHEDULER";
/// Sort key of the scheduler's state item.
pub const SCHEDULER_SK: &str = "STATE";

/// `PAYLOAD#{key}`: the parts of a large payload (sort keys `PART#nnnn`).
pub fn payload(key: &str) -> String {
    concat(&["PAYLOAD#", key])
}

/// `JOB#{id}`.
pub fn job(id: &str) -> String {
    concat(&["JOB#", id])
}

/// The index that lists events, newest first (`gsi1pk` = [`events_shard`], `gsi1sk` =
/// [`time_sort`]; projects `source` and `event_type`, which never change, so an event's
/// later updates write nothing to it).
pub const EVENTS_INDEX: &str = "events_by_time";
/// The index that lists jobs, newest first (`gsi2pk` = [`jobs_shard`], `gsi2sk` =
/// [`time_sort`]; projects `module`).
pub const JOBS_INDEX: &str = "jobs_by_time";

pub use switchyard_core::config::DEFAULT_SHARDS;

/// The shard of `id` among `shards` (XXH3: stable across processes and versions).
pub fn shard_of(id: &str, shards: u16) -> u16 {
    let h = xxhash_rust::xxh3::xxh3_64(id.as_bytes());
    u16::try_from(h % u64::from(shards.max(1))).unwrap_or(0)
}

/// `parts` then `shard` in two digits at least.
fn shard_key(parts: &[&str], shard: u16) -> String {
    let mut key = concat_reserving(parts, 3);
    push_decimal(&mut key, u64::from(shard), 2);
    key
}

/// `EVENTS#{nn}`: the events index partition of shard `shard`.
pub fn events_shard(shard: u16) -> String {
    shard_key(&["EVENTS#"], shard)
}

/// `JOBS#{nn}`: the jobs index partition of shard `shard`.
pub fn jobs_shard(shard: u16) -> String {
    shard_key(&["JOBS#"], shard)
}

/// `QUEUE#{module}#{nn}`: shard `shard` of a pull module's queue.
pub fn queue_shard(module: &str, shard: u16) -> String {
    shard_key(&["QUEUE#", module, "#"], shard)
}

/// Index sort key: milliseconds since the epoch, zero-padded so text order is time order,
/// then `suffix` to make it unique.
pub fn time_sort(t: time::OffsetDateTime, suffix: &str) -> String {
    let ms = t.unix_timestamp_nanos() / 1_000_000;
    match u64::try_from(ms) {
        Ok(ms) => {
            let mut key = String::with_capacity(14 + suffix.len());
            push_decimal(&mut key, ms, 13);
            for part in ["#", suffix] {
                key.push_str(part);
            }
            key
        }
        // Before 1970: never on the request path.
        Err(_) => format!("{ms:013}#{suffix}"),
    }
}

/// The registry's items: `REGISTRY` / `CURRENT` and `REGISTRY` / `V#{n:010}`.
pub const REGISTRY_PK: &str = "REGISTRY";
/// Sort key of the pointer to the active registry version.
pub const REGISTRY_CURRENT_SK: &str = "CURRENT";

/// Sort key of registry version `n`.
pub fn registry_version(n: u64) -> String {
    format!("V#{n:010}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_entities_are_hashed_in_keys() {
        let long = "x".repeat(5000);
        assert!(cooldown("m", &long).len() < 200);
        assert_eq!(cooldown("m", "a/b#1"), "COOLDOWN#m#a/b#1");
    }

    #[test]
    fn index_keys_sort_by_time() {
        let a = time::OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let b = a + time::Duration::milliseconds(1);
        assert!(time_sort(a, "z") < time_sort(b, "a"));
        assert_eq!(registry_version(12), "V#0000000012");
        assert_eq!(time_sort(a, "github#d-1"), "1700000000000#github#d-1");
        let early = time::OffsetDateTime::from_unix_timestamp(86_400).unwrap();
        assert_eq!(time_sort(early, "x"), "0000086400000#x");
    }

    #[test]
    fn keys_are_spelled_as_the_table_holds_them() {
        assert_eq!(event("github", "d-1"), "EVENT#github#d-1");
        assert_eq!(payload("k#1"), "PAYLOAD#k#1");
        assert_eq!(job("ab12"), "JOB#ab12");
        assert_eq!(settings("acme/app"), "SETTINGS#acme/app");
        for shard in [0u16, 7, 15, 99, 100, 255] {
            assert_eq!(events_shard(shard), format!("EVENTS#{shard:02}"));
            assert_eq!(jobs_shard(shard), format!("JOBS#{shard:02}"));
            assert_eq!(queue_shard("lint", shard), format!("QUEUE#lint#{shard:02}"));
        }
    }

    #[test]
    fn shards_spread_ids_and_stay_in_range() {
        let mut counts = [0u32; 16];
        for i in 0..16_000 {
            counts[usize::from(shard_of(&format!("delivery-{i}"), 16))] += 1;
        }
        // Each shard holds close to 1/16 of 16,000 ids (1,000).
        assert!(
            counts.iter().all(|&c| (850..1150).contains(&c)),
            "{counts:?}"
        );
        assert_eq!(shard_of("x", 1), 0);
        assert_eq!(events_shard(3), "EVENTS#03");
    }
}
