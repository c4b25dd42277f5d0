//! Unit tests of the device writer: how writes are taken into batches (the queue alone,
//! with `tokio::time::pause` for the window), and what the task answers over a real
//! SQLite store.

use super::*;
use crate::metrics::Access;
use serde_json::json;

use crate::store::testing::store_with_devices;

/// A last-seen write of device `n` (the writes here are told apart by their device).
fn seen(n: usize) -> Job {
    Job::Write {
        write: StateWrite::Seen {
            deviceid: n.to_string(),
            at: Millis(0),
        },
        done: None,
    }
}

/// The devices of a batch's writes, in order.
fn devices(batch: &Batch) -> Vec<usize> {
    let id = |w: &StateWrite| w.deviceid().parse().expect("a number");
    batch.writes.iter().map(id).collect()
}

/// The next batch, taken from a fresh `Batch`.
async fn next(collector: &mut Collector) -> Batch {
    let mut batch = Batch::default();
    assert!(collector.collect(&mut batch).await, "the queue is open");
    batch
}

#[tokio::test]
async fn a_batch_takes_everything_queued_meanwhile() {
    let (mut collector, tx, _) = Collector::new(Duration::ZERO);
    tx.send(seen(1)).await.unwrap();
    assert_eq!(devices(&next(&mut collector).await), [1]);

    // Queued while the first batch committed: the next batch takes them all.
    for n in 2..=4 {
        tx.send(seen(n)).await.unwrap();
    }
    assert_eq!(devices(&next(&mut collector).await), [2, 3, 4]);
}

#[tokio::test]
async fn a_batch_holds_at_most_max_batch_writes() {
    let (mut collector, tx, _) = Collector::new(Duration::ZERO);
    for n in 0..MAX_BATCH + 10 {
        tx.send(seen(n)).await.unwrap();
    }

    let first = next(&mut collector).await;
    let second = next(&mut collector).await;

    assert_eq!(devices(&first), (0..MAX_BATCH).collect::<Vec<_>>());
    assert_eq!(
        devices(&second),
        (MAX_BATCH..MAX_BATCH + 10).collect::<Vec<_>>()
    );
}

#[tokio::test(start_paused = true)]
async fn the_window_gathers_the_writes_that_come_within_it() {
    let window = Duration::from_millis(10);
    let (mut collector, tx, _) = Collector::new(window);
    tx.send(seen(1)).await.unwrap();
    let start = tokio::time::Instant::now();
    let later = async {
        tokio::time::sleep(Duration::from_millis(6)).await;
        tx.send(seen(2)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
        tx.send(seen(3)).await.unwrap();
    };

    let (first, ()) = tokio::join!(next(&mut collector), later);

    // The batch waited its whole window from its first write, then took what came.
    assert_eq!(devices(&first), [1, 2]);
    assert_eq!(start.elapsed(), Duration::from_millis(16));
    let second = next(&mut collector).await;
    assert_eq!(devices(&second), [3]);
    assert_eq!(start.elapsed(), Duration::from_millis(26));
}

#[tokio::test]
async fn an_order_ends_its_batch_and_runs_after_it() {
    let (mut collector, tx, _) = Collector::new(Duration::ZERO);
    let (done, _answer) = oneshot::channel();
    tx.send(seen(1)).await.unwrap();
    tx.send(Job::Order(Order::Purge {
        cutoff: Millis(0),
        done,
    }))
    .await
    .unwrap();
    tx.send(seen(2)).await.unwrap();

    let first = next(&mut collector).await;
    assert_eq!(devices(&first), [1]);
    assert!(matches!(first.order, Some(Order::Purge { .. })));
    assert_eq!(devices(&next(&mut collector).await), [2]);
}

#[tokio::test]
async fn a_close_leaves_what_is_queued_to_take_then_ends_the_queue() {
    let (mut collector, tx, close) = Collector::new(Duration::ZERO);
    tx.send(seen(1)).await.unwrap();
    tx.send(seen(2)).await.unwrap();
    close.notify_one();

    // (The close may be seen before the first batch or only once the queue is empty.)
    assert_eq!(devices(&next(&mut collector).await), [1, 2]);
    assert!(!collector.collect(&mut Batch::default()).await);
    assert!(collector.closing);
    assert!(tx.send(seen(3)).await.is_err(), "closed to new writes");
}

/// A writer task over a fresh SQLite store with one user and `n` devices of type 03
/// (temperature and humidity, kept in history).
async fn writer_with_devices(
    n: usize,
) -> (
    tempfile::TempDir,
    Store,
    Writer,
    JoinHandle<()>,
    crate::history::Reader,
    Vec<String>,
) {
    let (dir, store, ids) = store_with_devices("03", n).await;
    let recorder = Recorder::load(store.clone(), true).await.expect("recorder");
    let reader = recorder.reader();
    let metrics = Metrics::start(Access::Off).expect("metrics");
    let (writer, task) = Writer::spawn(
        store.clone(),
        recorder,
        Duration::ZERO,
        StateLimits::NONE,
        metrics,
    );
    (dir, store, writer, task, reader, ids)
}

fn update(deviceid: &str, temperature: i64) -> StateWrite {
    StateWrite::Merge {
        deviceid: deviceid.to_owned(),
        params: json!({"temperature": temperature})
            .as_object()
            .expect("an object")
            .clone(),
        at: Millis::now(),
        seen: true,
    }
}

#[tokio::test]
async fn an_ack_comes_once_the_write_and_its_history_are_committed() {
    let (_dir, store, writer, _task, reader, ids) = writer_with_devices(1).await;

    assert!(writer.commit(update(&ids[0], 21)).await);

    let device = store
        .devices()
        .find(&ids[0])
        .await
        .unwrap()
        .expect("device");
    assert_eq!(
        device.params,
        json!({"temperature": 21}).as_object().cloned()
    );
    assert_eq!(reader.count(&ids[0]).await.unwrap(), 1);
}

#[tokio::test]
async fn close_commits_and_acks_everything_queued_folds_then_ends() {
    let (_dir, store, writer, task, reader, ids) = writer_with_devices(2).await;
    let mut waits = Vec::new();
    for t in 0..20 {
        waits.push(writer.submit(update(&ids[t % 2], t as i64)).await);
    }

    writer.close();
    task.await.expect("the task ends");

    for wait in waits {
        assert_eq!(wait.await, Ok(true));
    }
    assert!(!writer.commit(update(&ids[0], 99)).await, "closed");
    let device = store
        .devices()
        .find(&ids[1])
        .await
        .unwrap()
        .expect("device");
    assert_eq!(
        device.params,
        json!({"temperature": 19}).as_object().cloned()
    );
    // The recent points went into chunks as the task ended.
    assert_eq!(reader.recent_len(), 0);
    assert_eq!(reader.count(&ids[0]).await.unwrap(), 10);
    assert_eq!(writer.fold_history(1).await.unwrap(), 0);
}

#[tokio::test]
async fn a_failed_commit_answers_false() {
    let (_dir, store, writer, _task, reader, ids) = writer_with_devices(1).await;
    store.close().await;

    assert!(!writer.commit(update(&ids[0], 21)).await);
    assert_eq!(reader.recent_len(), 0);
}

#[tokio::test]
async fn orders_change_the_recent_points_between_batches() {
    let (_dir, _store, writer, _task, reader, ids) = writer_with_devices(2).await;
    assert!(writer.commit(update(&ids[0], 1)).await);
    assert!(writer.commit(update(&ids[1], 2)).await);
    assert_eq!(reader.recent_len(), 2);

    writer.deleted(std::slice::from_ref(&ids[0])).await;
    assert_eq!(reader.recent_len(), 1);
    assert_eq!(writer.purge_history(Millis(0)).await, 0);
    assert_eq!(writer.purge_history(Millis(i64::MAX)).await, 1);
    assert!(writer.commit(update(&ids[1], 3)).await);
    assert_eq!(writer.fold_history(2).await.unwrap(), 0);
    assert_eq!(writer.fold_history(1).await.unwrap(), 1);
    assert_eq!(
        (reader.recent_len(), reader.count(&ids[1]).await.unwrap()),
        (0, 1)
    );
}
