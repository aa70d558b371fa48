//! API tokens: make one (`mo login`, with a password through [`Client::with_password`]), list
//! and revoke them (`/api/v1/tokens`).

use mo_api::{ApiToken, CreatedApiToken, NewApiToken};
use mo_core::Result;
use reqwest::Method;

use crate::{Client, to_json};

impl Client {
    /// Make an API token for `user` (`None`: the caller) with `scope` (`None`: `all`) expiring
    /// at `expires` (`30d`, an RFC 3339 time; `None`: never). The answer's `token` is shown
    /// only this once.
    pub async fn add_token(
        &self,
        user: Option<&str>,
        scope: Option<&str>,
        expires: Option<&str>,
    ) -> Result<CreatedApiToken> {
        let body = to_json(&NewApiToken {
            user: user.map(str::to_string),
            scope: scope.map(str::to_string),
            expires: expires.map(str::to_string),
        })?;
        self.json(Self::post(&["api", "v1", "tokens"], body, None))
            .await
    }

    /// The caller's tokens, or `user`'s (an admin without `user`: every token).
    pub async fn tokens(&self, user: Option<&str>) -> Result<Vec<ApiToken>> {
        let mut req = Self::get(&["api", "v1", "tokens"], None);
        if let Some(u) = user {
            req.query.push(("user", u.to_string()));
        }
        self.json(req).await
    }

    /// Revoke the token with this id.
    pub async fn revoke_token(&self, id: &str) -> Result<()> {
        let segments = ["api", "v1", "tokens", id];
        let mut req = Self::get(&segments, None);
        req.method = Method::DELETE;
        self.send(req).await.map(|_| ())
    }
}
