//! How a call ended, and what that makes of the customer's place in the queue: done, do not
//! call, a booked callback, a retry after back-off, or out of attempts.

use super::config::DialerConfig;
use retrieval::store::{QueueStatus, QueueUpdate};
use serde::{Deserialize, Serialize};

/// How a dial attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallOutcome {
    /// The customer bought.
    Converted,
    /// The customer booked a callback.
    Callback,
    /// The customer said no.
    Refused,
    /// An agent took the call over.
    HandedOff,
    /// The customer asked never to be called again.
    DoNotCall,
    NoAnswer,
    Voicemail,
    /// The line was busy.
    Busy,
    /// The customer hung up before an outcome.
    HungUp,
    /// The customer stayed silent until the call was closed.
    NoInput,
    /// The call failed (network, engine or transport error).
    Failed,
    /// The call asked for a human and none was free within the wait.
    AbandonedHandoff,
    /// The dialer died while the call was live (set by recovery).
    Interrupted,
}

impl CallOutcome {
    /// Every outcome, in declaration order.
    pub const ALL: [CallOutcome; 13] = [
        CallOutcome::Converted,
        CallOutcome::Callback,
        CallOutcome::Refused,
        CallOutcome::HandedOff,
        CallOutcome::DoNotCall,
        CallOutcome::NoAnswer,
        CallOutcome::Voicemail,
        CallOutcome::Busy,
        CallOutcome::HungUp,
        CallOutcome::NoInput,
        CallOutcome::Failed,
        CallOutcome::AbandonedHandoff,
        CallOutcome::Interrupted,
    ];

    /// The stored spelling, e.g. `no_answer`.
    pub fn as_str(self) -> &'static str {
        match self {
            CallOutcome::Converted => "converted",
            CallOutcome::Callback => "callback",
            CallOutcome::Refused => "refused",
            CallOutcome::HandedOff => "handed_off",
            CallOutcome::DoNotCall => "do_not_call",
            CallOutcome::NoAnswer => "no_answer",
            CallOutcome::Voicemail => "voicemail",
            CallOutcome::Busy => "busy",
            CallOutcome::HungUp => "hung_up",
            CallOutcome::NoInput => "no_input",
            CallOutcome::Failed => "failed",
            CallOutcome::AbandonedHandoff => "abandoned_handoff",
            CallOutcome::Interrupted => "interrupted",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == s)
    }

    /// Whether the call asked for a human (taken or abandoned): what hand-off pacing learns.
    pub fn asked_for_agent(self) -> bool {
        matches!(self, CallOutcome::HandedOff | CallOutcome::AbandonedHandoff)
    }
}

impl From<dialog::policy::Outcome> for CallOutcome {
    fn from(o: dialog::policy::Outcome) -> Self {
        use dialog::policy::Outcome;
        match o {
            Outcome::Converted => CallOutcome::Converted,
            Outcome::Callback => CallOutcome::Callback,
            Outcome::Refused => CallOutcome::Refused,
            Outcome::HandedOff => CallOutcome::HandedOff,
            Outcome::DoNotCall => CallOutcome::DoNotCall,
        }
    }
}

/// What the queue row of attempt `attempt_no` becomes after `outcome`:
///
/// - converted, refused, handed off: `done` (a refusal also starts the cross-campaign cooldown,
///   which the dialer checks before every dial);
/// - do not call: `do_not_call`;
/// - callback: `pending`, due at the booked time (or `callback_default_minutes` after the
///   call when none was said) with callback priority, while fewer than `max_callbacks` were
///   booked; then `exhausted`;
/// - anything else (no answer, voicemail, busy, hung up, no input, failed, abandoned hand-off,
///   interrupted): `pending` after the back-off for this attempt while attempts remain, else
///   `exhausted`.
pub fn queue_update(
    config: &DialerConfig,
    attempt_no: i64,
    callbacks: i64,
    outcome: CallOutcome,
    callback_at_ms: Option<i64>,
    ended_at_ms: i64,
) -> QueueUpdate {
    let end = |status| QueueUpdate {
        status,
        next_attempt_at_ms: ended_at_ms,
        callback_at_ms: None,
        callbacks,
    };
    match outcome {
        CallOutcome::Converted | CallOutcome::Refused | CallOutcome::HandedOff => {
            end(QueueStatus::Done)
        }
        CallOutcome::DoNotCall => end(QueueStatus::DoNotCall),
        CallOutcome::Callback if callbacks < i64::from(config.max_callbacks) => {
            let at = callback_at_ms
                .unwrap_or(ended_at_ms + i64::from(config.callback_default_minutes) * 60_000);
            QueueUpdate {
                status: QueueStatus::Pending,
                next_attempt_at_ms: at,
                callback_at_ms: Some(at),
                callbacks: callbacks + 1,
            }
        }
        CallOutcome::Callback => end(QueueStatus::Exhausted),
        _ if attempt_no >= i64::from(config.max_attempts) => end(QueueStatus::Exhausted),
        _ => {
            let step = usize::try_from(attempt_no.max(1) - 1).unwrap_or(0);
            let minutes = config
                .retry_backoff_minutes
                .get(step)
                .or(config.retry_backoff_minutes.last())
                .copied()
                .unwrap_or(60);
            QueueUpdate {
                status: QueueStatus::Pending,
                next_attempt_at_ms: ended_at_ms + i64::from(minutes) * 60_000,
                callback_at_ms: None,
                callbacks,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_round_trip() {
        for o in CallOutcome::ALL {
            assert_eq!(CallOutcome::parse(o.as_str()), Some(o));
        }
        assert_eq!(CallOutcome::parse("maybe"), None);
    }

    #[test]
    fn retries_back_off_then_exhaust() {
        let c = DialerConfig::default();
        let u = queue_update(&c, 1, 0, CallOutcome::NoAnswer, None, 0);
        assert_eq!(u.status, QueueStatus::Pending);
        assert_eq!(u.next_attempt_at_ms, 60 * 60_000);
        let u = queue_update(&c, 2, 0, CallOutcome::Voicemail, None, 0);
        assert_eq!(u.next_attempt_at_ms, 240 * 60_000);
        let u = queue_update(&c, 3, 0, CallOutcome::NoAnswer, None, 0);
        assert_eq!(u.status, QueueStatus::Exhausted);
        let u = queue_update(&c, 3, 0, CallOutcome::Callback, Some(5), 0);
        assert_eq!(
            (u.status, u.callback_at_ms, u.callbacks),
            (QueueStatus::Pending, Some(5), 1)
        );
        let u = queue_update(&c, 4, 2, CallOutcome::Callback, Some(5), 0);
        assert_eq!(u.status, QueueStatus::Exhausted);
        let u = queue_update(&c, 1, 0, CallOutcome::Refused, None, 0);
        assert_eq!(u.status, QueueStatus::Done);
    }
}
