//! Which applications an alarm belongs to.
//!
//! An alarm event names no application. Each application's policy
//! (`policies/<application>.yaml`) lists its alarms in `rollback.alarms` (exact names or
//! `*`/`?` patterns); an alarm belongs to every application whose list matches it. An alarm
//! that matches several applications acts for each of them independently (each has its own
//! pointer, ledger records and events): a shared dependency's alarm (e.g. a gateway error
//! rate) may legitimately cover several applications, and the policies say so explicitly.
//!
//! Policies are listed on every event (one `ListObjectsV2` page per 1000 applications) and
//! parsed only when their ETag changed since the warm function last read them, so the cost
//! per event stays one listing plus the policies that changed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::layout::{POLICIES_PREFIX, is_valid_application};
use crate::policy::{Policy, PolicyError};
use crate::store::{ObjectStore, StoreError};

/// The applications an alarm matched, and policies that could not be read.
#[derive(Debug, Default)]
pub struct Routing {
    /// (application, its policy), in application order.
    pub matched: Vec<(String, Arc<Policy>)>,
    /// (application, why its policy is unusable). Such an application's alarms cannot be
    /// recognised until its policy is fixed; the handler logs these as errors.
    pub invalid: Vec<(String, String)>,
}

type Cached = (Option<String>, Result<Arc<Policy>, Arc<PolicyError>>);

/// Parsed policies, kept across warm invocations.
#[derive(Debug, Default)]
pub struct PolicyIndex {
    cache: Mutex<HashMap<String, Cached>>,
}

/// The application a policy key names, if the key is a policy.
pub fn application_of_policy_key(key: &str) -> Option<&str> {
    let app = key.strip_prefix(POLICIES_PREFIX)?.strip_suffix(".yaml")?;
    is_valid_application(app).then_some(app)
}

impl PolicyIndex {
    pub fn new() -> Self {
        PolicyIndex::default()
    }

    /// Every application whose `rollback.alarms` match `alarm_name`.
    pub async fn route<S: ObjectStore>(
        &self,
        store: &S,
        alarm_name: &str,
    ) -> Result<Routing, StoreError> {
        let listed = store.list(POLICIES_PREFIX).await?;
        let mut routing = Routing::default();
        let mut seen = Vec::new();
        for object in listed {
            let Some(application) = application_of_policy_key(&object.key) else {
                tracing::debug!(key = %object.key, "not a policies/<application>.yaml key; skipped");
                continue;
            };
            seen.push(object.key.clone());
            let cached = self
                .lock()
                .get(&object.key)
                .filter(|(etag, _)| etag.is_some() && *etag == object.etag)
                .map(|(_, policy)| policy.clone());
            let policy = match cached {
                Some(policy) => policy,
                None => {
                    let bytes = match store.get(&object.key).await {
                        Ok(bytes) => bytes,
                        // Deleted between the listing and the read.
                        Err(e) if e.is_not_found() => continue,
                        Err(e) => return Err(e),
                    };
                    let source = crate::layout::s3_uri(store.bucket(), &object.key);
                    let parsed = match std::str::from_utf8(&bytes) {
                        Ok(text) => Policy::parse(&source, text),
                        Err(_) => Err(PolicyError {
                            source_name: source.clone(),
                            problems: vec![crate::policy::Problem::at(
                                "",
                                "the file is not UTF-8 text",
                            )],
                        }),
                    }
                    .map(Arc::new)
                    .map_err(Arc::new);
                    self.lock()
                        .insert(object.key.clone(), (object.etag.clone(), parsed.clone()));
                    parsed
                }
            };
            match policy {
                Ok(policy) => {
                    let matches = policy
                        .rollback
                        .as_ref()
                        .is_some_and(|r| r.rules().matches(alarm_name));
                    if matches {
                        routing.matched.push((application.to_owned(), policy));
                    }
                }
                Err(error) => routing
                    .invalid
                    .push((application.to_owned(), error.to_string())),
            }
        }
        // Forget policies that were deleted.
        self.lock().retain(|key, _| seen.contains(key));
        Ok(routing)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Cached>> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryStore;

    fn policy(alarms: &str) -> Vec<u8> {
        format!(
            "version: 1\nevaluation:\n  evaluator_model: us.amazon.nova-pro-v1:0\n  metrics: [Builtin.Correctness]\nrelease:\n  pointer:\n    ssm_parameter: /x/release\nrollback:\n  alarms: {alarms}\n"
        )
        .into_bytes()
    }

    #[tokio::test]
    async fn routes_by_pattern_to_every_matching_application() {
        let store = MemoryStore::new("b");
        store
            .put("policies/bot.yaml", policy("[bot-*]"), "")
            .await
            .unwrap();
        store
            .put(
                "policies/search.yaml",
                policy("[search-5xx, shared-gateway-errors]"),
                "",
            )
            .await
            .unwrap();
        store
            .put("policies/chat.yaml", policy("[shared-gateway-*]"), "")
            .await
            .unwrap();
        store
            .put(
                "policies/plain.yaml",
                b"version: 1\nevaluation:\n  evaluator_model: us.amazon.nova-pro-v1:0\n  metrics: [Builtin.Correctness]\n".to_vec(),
                "",
            )
            .await
            .unwrap();
        store
            .put("policies/broken.yaml", b"version: [".to_vec(), "")
            .await
            .unwrap();
        store
            .put("policies/nested/x.yaml", policy("[bot-*]"), "")
            .await
            .unwrap();
        let index = PolicyIndex::new();

        let routing = index.route(&store, "bot-errors").await.unwrap();
        let apps: Vec<&str> = routing.matched.iter().map(|(a, _)| a.as_str()).collect();
        assert_eq!(apps, vec!["bot"]);
        assert_eq!(routing.invalid.len(), 1);
        assert_eq!(routing.invalid[0].0, "broken");
        assert!(routing.invalid[0].1.contains("s3://b/policies/broken.yaml"));

        let routing = index.route(&store, "shared-gateway-errors").await.unwrap();
        let apps: Vec<&str> = routing.matched.iter().map(|(a, _)| a.as_str()).collect();
        assert_eq!(apps, vec!["chat", "search"], "both applications act");

        let routing = index.route(&store, "unrelated").await.unwrap();
        assert!(routing.matched.is_empty());
    }

    #[tokio::test]
    async fn a_changed_policy_is_read_again() {
        let store = MemoryStore::new("b");
        store
            .put("policies/bot.yaml", policy("[bot-a]"), "")
            .await
            .unwrap();
        let index = PolicyIndex::new();
        assert_eq!(index.route(&store, "bot-b").await.unwrap().matched.len(), 0);
        store
            .put("policies/bot.yaml", policy("[bot-a, bot-b]"), "")
            .await
            .unwrap();
        assert_eq!(index.route(&store, "bot-b").await.unwrap().matched.len(), 1);
        store.delete("policies/bot.yaml").await.unwrap();
        assert_eq!(index.route(&store, "bot-b").await.unwrap().matched.len(), 0);
        assert!(index.lock().is_empty(), "deleted policies are forgotten");
    }

    #[test]
    fn policy_keys() {
        assert_eq!(application_of_policy_key("policies/bot.yaml"), Some("bot"));
        assert_eq!(application_of_policy_key("policies/a/b.yaml"), None);
        assert_eq!(application_of_policy_key("policies/bot.yml"), None);
        assert_eq!(application_of_policy_key("datasets/bot.yaml"), None);
    }
}
