//! Argon2id password hashing, run off the async threads: deliberately slow (~30 ms) and
//! memory-hard (19 MiB per hash).
//!
//! Requests hash through [`Passwords`], which runs at most `password_hash_concurrency`
//! hashes at once (one per CPU by default): unbounded, 64 concurrent logins took the
//! server from 32 MiB to 1.2 GiB. The others wait their turn in a fair queue, at most
//! `password_hash_queue_timeout`, then get [`PasswordError::Busy`] (HTTP 503 with
//! `Retry-After`). An account that does not exist is checked against a dummy hash of the
//! same cost, so its answer takes as long as a wrong password's and timing cannot tell
//! which addresses have accounts.
//!
//! The hashes run on threads of their own, as many as the bound, each keeping Argon2's
//! 19 MiB of working memory from one hash to the next ([`Memory`]). Allocated per hash,
//! the allocator kept freed blocks in each thread's arena: on tokio's blocking pool two
//! hashes at a time still left 461 MiB resident after 64 logins, and 235 MiB on two
//! threads of their own; with the memory kept it is one block per thread.

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use parking_lot::Mutex;
use rand::RngCore;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;
use tokio::sync::{Semaphore, oneshot};

/// A hash of a random password with the default parameters of [`Argon2::default`]
/// (m=19456, t=2, p=1), the same as every hash made here: verifying against it costs what
/// a real verify costs (a unit test keeps the parameters in step with the crate's).
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$DkU+0YWsPv5QCZOb/wIX7w$Dk/8pPPlAvy6brNTNyNq/JAxBwsO97x976KcvQkqCuM";

/// Why a password could not be hashed or checked.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// Every hashing slot stayed taken for the whole queue timeout: retry later.
    #[error("password hashing is saturated")]
    Busy {
        /// When a retry may find a free slot (the queue timeout, at least a second).
        retry_after: Duration,
    },
    /// The hashing itself failed (logged, answered with a 500).
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

/// Work for a hashing thread, given that thread's memory.
type Job = Box<dyn FnOnce(&mut Memory) + Send>;

/// Argon2's working memory, kept by a hashing thread from one hash to the next (Argon2
/// writes every block before it reads it, so nothing of a former hash leaks into the next).
#[derive(Default)]
struct Memory(Vec<Block>);

impl Memory {
    /// The blocks `argon2` needs, grown on first use (or for a hash with a larger cost).
    fn blocks(&mut self, argon2: &Argon2<'_>) -> &mut [Block] {
        let n = argon2.params().block_count();
        if self.0.len() < n {
            self.0.resize(n, Block::default());
        }
        &mut self.0[..n]
    }
}

/// The server's password hashing: a bounded number of Argon2 runs at once, on as many
/// threads of its own, one set per `App` (several servers in one process each have
/// theirs). The threads end when it is dropped.
#[derive(Debug)]
pub struct Passwords {
    /// A free slot is a free thread: a job is sent only with a slot.
    slots: Arc<Semaphore>,
    queue_timeout: Duration,
    jobs: mpsc::Sender<Job>,
}

impl Passwords {
    /// At most `concurrency` hashes at once (0: one per CPU); a request waits at most
    /// `queue_timeout` for its turn.
    pub fn new(concurrency: usize, queue_timeout: Duration) -> anyhow::Result<Self> {
        let concurrency = match concurrency {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        };
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..concurrency {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("iotgo-password-{n}"))
                .spawn(move || {
                    let mut memory = Memory::default();
                    loop {
                        // The lock is released here, before the job runs (a `while let`
                        // would hold it through the body: one hash at a time).
                        let next = queue.lock().recv();
                        // Ends when every sender is gone.
                        let Ok(job) = next else { break };
                        // A panic drops the job's answer (its caller gets an error) but
                        // leaves the thread serving.
                        let job = AssertUnwindSafe(|| job(&mut memory));
                        let _ = std::panic::catch_unwind(job);
                    }
                })?;
        }
        Ok(Passwords {
            slots: Arc::new(Semaphore::new(concurrency)),
            queue_timeout,
            jobs,
        })
    }

    /// Hashes `password` into an Argon2id PHC string.
    pub async fn hash(&self, password: String) -> Result<String, PasswordError> {
        Ok(self
            .run(move |memory| hash_with(memory, &password))
            .await??)
    }

    /// Whether `password` matches the PHC string `hash`; a malformed hash never matches.
    /// `None` (no such account) takes one verify against a dummy hash and never matches.
    pub async fn verify(&self, password: &str, hash: Option<&str>) -> Result<bool, PasswordError> {
        let known = hash.is_some();
        let (password, hash) = (password.to_owned(), hash.unwrap_or(DUMMY_HASH).to_owned());
        let matches = self
            .run(move |memory| verify_with(memory, &password, &hash))
            .await?;
        Ok(known && matches)
    }

    /// Runs `job` on a hashing thread once a slot is free. The slot goes with the job:
    /// a request given up meanwhile (its client gone) keeps it until the hash ends, so
    /// the bound holds for the memory in use, not just for the requests waiting.
    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Memory) -> T + Send + 'static,
    ) -> Result<T, PasswordError> {
        let slot = tokio::time::timeout(self.queue_timeout, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| PasswordError::Busy {
                retry_after: self.queue_timeout.max(Duration::from_secs(1)),
            })?
            .map_err(|e| anyhow::anyhow!("password hashing closed: {e}"))?;
        let (answer, done) = oneshot::channel();
        self.jobs
            .send(Box::new(move |memory: &mut Memory| {
                let _slot = slot;
                let _ = answer.send(job(memory));
            }))
            .map_err(|_| anyhow::anyhow!("the password hashing threads are gone"))?;
        let done = done
            .await
            .map_err(|_| anyhow::anyhow!("password hashing failed (a panic)"))?;
        Ok(done)
    }
}

/// Hashes a password into an Argon2id PHC string on the blocking pool, outside any bound:
/// for start-up and the command line only; requests go through [`Passwords::hash`].
pub async fn hash_password(password: String) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || hash_with(&mut Memory::default(), &password)).await?
}

/// An Argon2id PHC string of `password` with [`Argon2::default`]'s parameters and a
/// random 16-byte salt: what `PasswordHasher::hash_password` makes, in `memory`.
fn hash_with(memory: &mut Memory, password: &str) -> anyhow::Result<String> {
    let failed = |e: &dyn std::fmt::Display| anyhow::anyhow!("password hashing failed: {e}");
    let argon2 = Argon2::default();
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    argon2
        .hash_password_into_with_memory(
            password.as_bytes(),
            &salt,
            &mut out,
            memory.blocks(&argon2),
        )
        .map_err(|e| failed(&e))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(argon2.params()).map_err(|e| failed(&e))?,
        salt: Some(Salt::new(&salt).map_err(|e| failed(&e))?),
        hash: Some(Output::new(&out).map_err(|e| failed(&e))?),
    };
    Ok(phc.to_string())
}

/// Whether `password` matches the Argon2 PHC string `phc` (any variant, version and
/// parameters it names), computed in `memory`; the comparison is constant-time
/// (`Output`'s). What `PasswordVerifier::verify_password` does.
fn verify_with(memory: &mut Memory, password: &str, phc: &str) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&hash.salt, &hash.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(hash.algorithm.as_str()) else {
        return false;
    };
    let Ok(version) = hash.version.map(Version::try_from).transpose() else {
        return false;
    };
    let Ok(params) = Params::try_from(&hash) else {
        return false;
    };
    let argon2 = Argon2::new(algorithm, version.unwrap_or_default(), params);
    let mut out = vec![0u8; expected.len()];
    argon2
        .hash_password_into_with_memory(password.as_bytes(), salt, &mut out, memory.blocks(&argon2))
        .is_ok()
        && Output::new(&out).is_ok_and(|computed| &computed == expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_differ() {
        let passwords = Passwords::new(0, Duration::from_secs(5)).unwrap();
        let a = passwords.hash("s3cret-pw".into()).await.unwrap();
        let b = hash_password("s3cret-pw".into()).await.unwrap();
        assert!(a.starts_with("$argon2id$"));
        assert_ne!(a, b, "each hash has its own salt");
        let verify = |pw: &'static str, hash: Option<String>| {
            let passwords = &passwords;
            async move { passwords.verify(pw, hash.as_deref()).await.unwrap() }
        };
        assert!(verify("s3cret-pw", Some(a.clone())).await);
        assert!(verify("s3cret-pw", Some(b)).await);
        assert!(!verify("wrong", Some(a)).await);
        assert!(!verify("x", Some("not a hash".into())).await);
        assert!(!verify("x", None).await);
    }

    #[test]
    fn the_dummy_hash_has_the_parameters_of_every_hash() {
        let dummy = argon2::PasswordHash::new(DUMMY_HASH).unwrap();
        let made = hash_with(&mut Memory::default(), "x").unwrap();
        let made = argon2::PasswordHash::new(&made).unwrap();
        assert_eq!(dummy.algorithm, made.algorithm);
        assert_eq!(dummy.version, made.version);
        assert_eq!(dummy.params, made.params);
        assert_eq!(dummy.hash.map(|h| h.len()), made.hash.map(|h| h.len()));
    }

    #[test]
    fn hashes_agree_with_the_argon2_crates_own() {
        use argon2::{PasswordHasher, PasswordVerifier};
        let mut memory = Memory::default();
        let ours = hash_with(&mut memory, "pw 1").unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"pw 1", ours.as_str())
                .is_ok()
        );
        assert!(
            Argon2::default()
                .verify_password(b"pw 2", ours.as_str())
                .is_err()
        );
        let theirs = Argon2::default()
            .hash_password(b"pw 1")
            .unwrap()
            .to_string();
        assert!(verify_with(&mut memory, "pw 1", &theirs));
        assert!(!verify_with(&mut memory, "pw 2", &theirs));
        // Other parameters and variants (an imported hash), in the same memory.
        let params = Params::new(8192, 3, 1, Some(24)).unwrap();
        let other = Argon2::new(Algorithm::Argon2i, Version::V0x10, params);
        let other = other.hash_password(b"pw 1").unwrap().to_string();
        assert!(verify_with(&mut memory, "pw 1", &other));
        assert!(!verify_with(&mut memory, "pw 2", &other));
        assert!(verify_with(&mut memory, "pw 1", &ours));
    }

    #[tokio::test]
    async fn the_threads_hash_side_by_side() {
        // Two slots, two hashes: both must be running at once (a shared lock held
        // through a job would run them one after the other).
        let passwords = Arc::new(Passwords::new(2, Duration::from_secs(60)).unwrap());
        let running = Arc::new(std::sync::Barrier::new(2));
        let both = (0..2).map(|_| {
            let running = running.clone();
            let passwords = passwords.clone();
            tokio::spawn(async move { passwords.run(move |_| running.wait()).await.unwrap() })
        });
        let waited = tokio::time::timeout(
            Duration::from_secs(10),
            futures_util::future::join_all(both),
        );
        assert!(
            waited.await.is_ok(),
            "the second job never ran beside the first"
        );
    }

    #[tokio::test]
    async fn a_full_queue_answers_busy() {
        let passwords = Arc::new(Passwords::new(1, Duration::from_millis(1)).unwrap());
        let first = tokio::spawn({
            let passwords = passwords.clone();
            async move { passwords.hash("first".into()).await }
        });
        // The first hash holds the only slot for ~30 ms.
        tokio::time::sleep(Duration::from_millis(5)).await;
        let second = passwords.verify("second", None).await;
        assert!(matches!(
            second,
            Err(PasswordError::Busy { retry_after }) if retry_after == Duration::from_secs(1)
        ));
        assert!(first.await.unwrap().is_ok());
    }
}
