//! Where a request goes: the in-process provider (paused time) or HTTP (real time).

use ratelimited::testing::MockProvider;

use crate::common::{ApiError, ChatClient};
use crate::workload::Job;

pub(crate) enum Target {
    Mock(MockProvider),
    Http(ChatClient),
}

impl Target {
    /// One attempt, no limiter.
    pub(crate) async fn send(&self, job: &Job) -> Result<(), ApiError> {
        match self {
            Target::Mock(provider) => provider
                .chat(&job.mock_request())
                .await
                .map(drop)
                .map_err(ApiError::Http),
            Target::Http(http) => http.chat(&job.body()).await.map(drop),
        }
    }
}
