//! Where a job is, as shown on its event's forge (check runs, commit statuses): the phases
//! the [`crate::dispatch::JobReports`] port is told.

use serde_json::Value;

/// Where a job is, as shown on the forge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobPhase {
    /// Dispatched, waiting for its module.
    Queued,
    /// The module runs it.
    InProgress,
    /// Finished: `conclusion` is `success`, `failure` or `cancelled`; `summary` is the job's
    /// output or error (cut to 4 KB).
    Completed {
        /// `success`, `failure` or `cancelled`.
        conclusion: &'static str,
        /// What the job said.
        summary: String,
    },
}

impl JobPhase {
    /// The phase of a job that ended with `status`: its conclusion, and its error (else its
    /// output as JSON) as the summary.
    pub fn finished(
        status: crate::store::JobStatus,
        error: Option<&str>,
        output: Option<&Value>,
    ) -> Self {
        use crate::store::JobStatus;
        Self::Completed {
            conclusion: match status {
                JobStatus::Succeeded => "success",
                JobStatus::Cancelled => "cancelled",
                _ => "failure",
            },
            summary: match (error, output) {
                (Some(e), _) => e.to_owned(),
                (None, Some(o)) => format!("```json\n{o}\n```"),
                (None, None) => String::new(),
            },
        }
    }
}
