//! Cost of a hook dispatch with 0, 1 and 10 sync handlers (action point) and of a filter
//! chain with 0, 1 and 10 handlers, as the pipeline pays it per event.

// A benchmark stops on a broken fixture; that is its failure mode.
#![allow(clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use criterion::{Criterion, criterion_group, criterion_main};
use switchyard_core::hooks::{ActionPoint, BusContext, FilterPoint, Flow};

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("hooks");
    for n in [0usize, 1, 10] {
        let point = ActionPoint::<u64>::new("bench", BusContext::default());
        let hits = Arc::new(AtomicU64::new(0));
        for i in 0..n {
            let h = hits.clone();
            point.on(i as i32, move |v| {
                h.fetch_add(*v, Ordering::Relaxed);
                Ok(())
            });
        }
        group.bench_function(format!("action_{n}_handlers"), |b| {
            b.iter(|| point.dispatch(black_box(&1)).expect("no handler fails"))
        });

        let filter = FilterPoint::<u64>::new("bench", BusContext::default());
        for i in 0..n {
            filter.on(i as i32, |v| Ok(Flow::Replace(v + 1)));
        }
        group.bench_function(format!("filter_{n}_handlers"), |b| {
            b.iter(|| filter.apply(black_box(1)).value)
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
