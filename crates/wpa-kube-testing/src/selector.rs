//! Label selectors on list requests (`?labelSelector=`), as the API server
//! parses them (`k8s.io/apimachinery/pkg/labels`): requirements joined by
//! commas, each `key=value`, `key==value`, `key!=value`,
//! `key in (a,b)`, `key notin (a,b)`, `key` (exists) or `!key`. Label
//! keys and values are not checked for their syntax; a malformed selector
//! is a 400 as on the real server.

use serde_json::Value;

/// One requirement.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    DoesNotExist(String),
}

/// A parsed selector: every requirement must hold.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct LabelSelector(Vec<Requirement>);

/// Splits at top-level commas (not those inside parentheses).
fn split_requirements(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

fn set(values: &str) -> Result<Vec<String>, String> {
    let inner = values
        .trim()
        .strip_prefix('(')
        .and_then(|rest| rest.strip_suffix(')'))
        .ok_or_else(|| format!("expected (values), got {values:?}"))?;
    Ok(inner
        .split(',')
        .map(|value| value.trim().to_owned())
        .collect())
}

fn requirement(text: &str) -> Result<Requirement, String> {
    let text = text.trim();
    if let Some(key) = text.strip_prefix('!') {
        return Ok(Requirement::DoesNotExist(key.trim().to_owned()));
    }
    if let Some((key, value)) = text.split_once("!=") {
        return Ok(Requirement::NotEquals(
            key.trim().into(),
            value.trim().into(),
        ));
    }
    if let Some((key, value)) = text.split_once("==").or_else(|| text.split_once('=')) {
        return Ok(Requirement::Equals(key.trim().into(), value.trim().into()));
    }
    if let Some((key, values)) = text.split_once(" notin ") {
        return Ok(Requirement::NotIn(key.trim().into(), set(values)?));
    }
    if let Some((key, values)) = text.split_once(" in ") {
        return Ok(Requirement::In(key.trim().into(), set(values)?));
    }
    if text.is_empty() || text.contains(char::is_whitespace) {
        return Err(format!("unable to parse requirement {text:?}"));
    }
    Ok(Requirement::Exists(text.to_owned()))
}

impl LabelSelector {
    /// Parses the (percent-decoded) value of `labelSelector`.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        if text.trim().is_empty() {
            return Ok(LabelSelector::default());
        }
        split_requirements(text)
            .into_iter()
            .map(requirement)
            .collect::<Result<_, _>>()
            .map(LabelSelector)
    }

    /// Whether `object`'s labels satisfy every requirement.
    pub(crate) fn matches(&self, object: &Value) -> bool {
        let labels = object.pointer("/metadata/labels");
        let label = |key: &str| labels.and_then(|l| l.get(key)).and_then(Value::as_str);
        self.0.iter().all(|requirement| match requirement {
            Requirement::Equals(key, value) => label(key) == Some(value),
            Requirement::NotEquals(key, value) => label(key) != Some(value),
            Requirement::In(key, values) => {
                label(key).is_some_and(|l| values.iter().any(|v| v == l))
            }
            Requirement::NotIn(key, values) => {
                label(key).is_none_or(|l| values.iter().all(|v| v != l))
            }
            Requirement::Exists(key) => label(key).is_some(),
            Requirement::DoesNotExist(key) => label(key).is_none(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(labels: Value) -> Value {
        json!({"metadata": {"labels": labels}})
    }

    #[test]
    fn every_operator() {
        let p = pod(json!({"app": "worker", "tier": "jobs"}));
        let holds = |s: &str| LabelSelector::parse(s).map(|sel| sel.matches(&p));
        assert_eq!(holds("app=worker"), Ok(true));
        assert_eq!(holds("app==worker,tier=jobs"), Ok(true));
        assert_eq!(holds("app=worker,tier=web"), Ok(false));
        assert_eq!(holds("app!=web"), Ok(true));
        assert_eq!(holds("tier in (jobs, web)"), Ok(true));
        assert_eq!(holds("tier notin (jobs)"), Ok(false));
        assert_eq!(holds("app,!canary"), Ok(true));
        assert_eq!(holds("canary"), Ok(false));
        assert_eq!(holds("app in (worker),tier notin (web,db)"), Ok(true));
        assert_eq!(holds(""), Ok(true));
        assert!(LabelSelector::parse("tier in jobs").is_err());
        assert!(LabelSelector::parse("a b").is_err());
    }
}
