//! The Whisper worker pool: a few threads, each with its own decoding state over one set of
//! shared weights, fed by a bounded job queue in which finals go before partials.
//!
//! Streams never decode on their caller's thread. A final (or a one-shot transcription) waits
//! for room in the queue and then for its result: back-pressure on the caller. A partial is only
//! queued when there is room and is never waited for; the stream picks its result up on a later
//! push. A queued partial its stream no longer wants (the utterance ended) is skipped, and a
//! running one is told to stop ([`Ticket::cancel`]): the job checks its stop flag between steps.

use crate::VoiceError;
use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

/// Queued finals per worker before a new final waits for room.
const FINALS_PER_WORKER: usize = 4;
/// Queued partials per worker before a new partial is dropped.
const PARTIALS_PER_WORKER: usize = 1;

/// How urgent a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Priority {
    /// Someone waits for it (an utterance's final text, a one-shot transcription, a full 30 s
    /// window): queued behind other finals only, and the submitter waits for room.
    Final,
    /// A partial transcript: queued behind every final, dropped when the queue is full.
    Partial,
}

/// Where a job's result is handed back: shared by the submitter's [`Ticket`] and the job.
#[derive(Debug)]
struct Reply<T> {
    state: Mutex<ReplyState<T>>,
    done: Condvar,
    /// Set when the submitter no longer wants a running job's result.
    stop: AtomicBool,
}

#[derive(Debug)]
enum ReplyState<T> {
    Queued,
    Running,
    Done(Result<T, VoiceError>),
    /// The submitter gave it up before a worker took it.
    Cancelled,
    /// The result was taken.
    Taken,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section here leaves consistent state even if it panicked half-way.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The submitter's handle on one job.
#[derive(Debug)]
pub(super) struct Ticket<T> {
    reply: Arc<Reply<T>>,
}

impl<T> Ticket<T> {
    /// The result if the job is done, without waiting.
    pub fn try_take(&self) -> Option<Result<T, VoiceError>> {
        let mut state = lock(&self.reply.state);
        match std::mem::replace(&mut *state, ReplyState::Taken) {
            ReplyState::Done(result) => Some(result),
            other => {
                *state = other;
                None
            }
        }
    }

    /// Waits for the result.
    pub fn wait(self) -> Result<T, VoiceError> {
        let mut state = lock(&self.reply.state);
        loop {
            match std::mem::replace(&mut *state, ReplyState::Taken) {
                ReplyState::Done(result) => return result,
                ReplyState::Cancelled | ReplyState::Taken => {
                    return Err(VoiceError::engine("whisper", "the decode was abandoned"))
                }
                other => *state = other,
            }
            state = self
                .reply
                .done
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Gives the job up without waiting: a queued job is skipped, a running one is asked to
    /// stop at its next check. A result already there is returned.
    pub fn cancel(self) -> Option<Result<T, VoiceError>> {
        let mut state = lock(&self.reply.state);
        match std::mem::replace(&mut *state, ReplyState::Cancelled) {
            ReplyState::Done(result) => Some(result),
            ReplyState::Running => {
                self.reply.stop.store(true, Ordering::Relaxed);
                None
            }
            _ => None,
        }
    }
}

struct Job<J, T> {
    work: J,
    reply: Arc<Reply<T>>,
}

struct Queue<J, T> {
    state: Mutex<QueueState<J, T>>,
    /// Workers wait here for a job.
    job_ready: Condvar,
    /// Submitters of finals wait here for room.
    room: Condvar,
    finals_cap: usize,
    partials_cap: usize,
}

struct QueueState<J, T> {
    finals: VecDeque<Job<J, T>>,
    partials: VecDeque<Job<J, T>>,
    shutdown: bool,
}

/// `workers` threads running `run(&mut state, job)` on jobs of type `J`, each with its own
/// `S` (made by `make_state`, which may share read-only data such as model weights).
pub(super) struct WorkerPool<J, T> {
    queue: Arc<Queue<J, T>>,
    threads: Vec<JoinHandle<()>>,
}

impl<J, T> std::fmt::Debug for WorkerPool<J, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerPool")
            .field("workers", &self.threads.len())
            .finish_non_exhaustive()
    }
}

impl<J: Send + 'static, T: Send + 'static> WorkerPool<J, T> {
    pub fn start<S: Send + 'static>(
        name: &str,
        states: Vec<S>,
        run: impl Fn(&mut S, J, &AtomicBool) -> Result<T, VoiceError> + Send + Sync + 'static,
    ) -> Result<Self, VoiceError> {
        let workers = states.len().max(1);
        let queue = Arc::new(Queue {
            state: Mutex::new(QueueState {
                finals: VecDeque::new(),
                partials: VecDeque::new(),
                shutdown: false,
            }),
            job_ready: Condvar::new(),
            room: Condvar::new(),
            finals_cap: FINALS_PER_WORKER * workers,
            partials_cap: PARTIALS_PER_WORKER * workers,
        });
        let run = Arc::new(run);
        let mut threads = Vec::with_capacity(states.len());
        for (i, mut state) in states.into_iter().enumerate() {
            let (queue, run) = (Arc::clone(&queue), Arc::clone(&run));
            let thread = std::thread::Builder::new()
                .name(format!("{name}-worker-{i}"))
                .spawn(move || {
                    while let Some(job) = queue.next() {
                        if !job.reply.start() {
                            continue;
                        }
                        let result = catch_unwind(AssertUnwindSafe(|| {
                            run(&mut state, job.work, &job.reply.stop)
                        }))
                        .unwrap_or_else(|_| {
                            Err(VoiceError::engine("whisper", "a decode panicked"))
                        });
                        job.reply.finish(result);
                    }
                })
                .map_err(|e| VoiceError::engine("whisper", format!("starting a worker: {e}")))?;
            threads.push(thread);
        }
        Ok(Self { queue, threads })
    }

    /// Queues a job. A final waits for room; a partial is dropped (`None`) when there is none.
    pub fn submit(&self, work: J, priority: Priority) -> Option<Ticket<T>> {
        let reply = Arc::new(Reply {
            state: Mutex::new(ReplyState::Queued),
            done: Condvar::new(),
            stop: AtomicBool::new(false),
        });
        let job = Job {
            work,
            reply: Arc::clone(&reply),
        };
        let mut state = lock(&self.queue.state);
        match priority {
            Priority::Final => {
                while state.finals.len() >= self.queue.finals_cap {
                    state = self
                        .queue
                        .room
                        .wait(state)
                        .unwrap_or_else(PoisonError::into_inner);
                }
                state.finals.push_back(job);
            }
            Priority::Partial => {
                if state.partials.len() >= self.queue.partials_cap {
                    return None;
                }
                state.partials.push_back(job);
            }
        }
        drop(state);
        self.queue.job_ready.notify_one();
        Some(Ticket { reply })
    }
}

impl<J, T> Queue<J, T> {
    /// The next job, finals first; `None` at shutdown.
    fn next(&self) -> Option<Job<J, T>> {
        let mut state = lock(&self.state);
        loop {
            if let Some(job) = state.finals.pop_front() {
                self.room.notify_one();
                return Some(job);
            }
            if let Some(job) = state.partials.pop_front() {
                return Some(job);
            }
            if state.shutdown {
                return None;
            }
            state = self
                .job_ready
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

impl<T> Reply<T> {
    /// Marks the job running; `false` if its submitter cancelled it.
    fn start(&self) -> bool {
        let mut state = lock(&self.state);
        if matches!(*state, ReplyState::Queued) {
            *state = ReplyState::Running;
            true
        } else {
            false
        }
    }

    fn finish(&self, result: Result<T, VoiceError>) {
        let mut state = lock(&self.state);
        // A cancelled job's result is not wanted: drop it rather than keep it.
        if !matches!(*state, ReplyState::Cancelled) {
            *state = ReplyState::Done(result);
        }
        drop(state);
        self.done.notify_all();
    }
}

impl<J, T> Drop for WorkerPool<J, T> {
    /// Workers finish the job in hand and every queued one, then exit.
    fn drop(&mut self) {
        lock(&self.queue.state).shutdown = true;
        self.queue.job_ready.notify_all();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// Jobs are numbers; a job of 0 runs until it is told to stop.
    fn pool() -> WorkerPool<u32, u32> {
        WorkerPool::start("test", vec![()], |_, job: u32, stop: &AtomicBool| {
            if job == 0 {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(1));
                }
                return Err(VoiceError::engine("test", "stopped"));
            }
            Ok(job * 2)
        })
        .expect("pool")
    }

    #[test]
    fn a_cancelled_running_job_stops_and_the_next_runs() {
        let pool = pool();
        let endless = pool.submit(0, Priority::Partial).expect("room");
        // Let the worker pick it up.
        while matches!(*lock(&endless.reply.state), ReplyState::Queued) {
            std::thread::sleep(Duration::from_millis(1));
        }
        let started = Instant::now();
        assert!(endless.cancel().is_none());
        let next = pool.submit(21, Priority::Final).expect("room");
        assert_eq!(next.wait().expect("result"), 42);
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn cancel_returns_a_finished_result_and_skips_a_queued_job() {
        let pool = pool();
        let done = pool.submit(5, Priority::Final).expect("room");
        let mut result = None;
        for _ in 0..5000 {
            if matches!(*lock(&done.reply.state), ReplyState::Done(_)) {
                result = done.cancel();
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(result.expect("finished").expect("ok"), 10);

        let endless = pool.submit(0, Priority::Final).expect("room");
        let queued = pool.submit(7, Priority::Partial).expect("room");
        assert!(queued.cancel().is_none());
        endless.cancel();
        assert_eq!(
            pool.submit(8, Priority::Final)
                .expect("room")
                .wait()
                .expect("ok"),
            16
        );
    }
}
