//! Scopes as the distribution token spec spells them (`repository:proj/app:pull,push`).

use hoist_registry::Action;
use serde::{Deserialize, Serialize};

/// One entry of a token's `access` claim, and of a token request's `scope`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Access {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub actions: Vec<String>,
}

impl Access {
    pub fn repository(name: &str, actions: &[Action]) -> Self {
        Self {
            kind: "repository".into(),
            name: name.into(),
            actions: actions.iter().map(|a| a.as_str().to_owned()).collect(),
        }
    }

    /// Parses `type:name:actions`. The name may itself hold a colon (a registry with a
    /// port), so the type is split off the front and the actions off the back.
    pub fn parse(scope: &str) -> Option<Self> {
        let (kind, rest) = scope.split_once(':')?;
        let (name, actions) = rest.rsplit_once(':')?;
        if kind.is_empty() || name.is_empty() {
            return None;
        }
        Some(Self {
            kind: kind.into(),
            name: name.into(),
            actions: actions
                .split(',')
                .filter(|a| !a.is_empty())
                .map(str::to_owned)
                .collect(),
        })
    }

    /// Whether this entry grants `action` on the repository `name`.
    pub fn grants(&self, name: &str, action: Action) -> bool {
        self.kind == "repository"
            && self.name == name
            && self
                .actions
                .iter()
                .any(|a| a == action.as_str() || a == "*")
    }

    /// The scope string, as a challenge's `scope` parameter carries it.
    pub fn to_scope(&self) -> String {
        format!("{}:{}:{}", self.kind, self.name, self.actions.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_with_ports_and_wildcards() {
        let a = Access::parse("repository:proj/app:pull,push").unwrap();
        assert_eq!(a.name, "proj/app");
        assert!(a.grants("proj/app", Action::Push));
        assert!(!a.grants("proj/app", Action::Delete));
        assert!(!a.grants("proj/other", Action::Pull));
        let port = Access::parse("repository:localhost:5000/proj/app:pull").unwrap();
        assert_eq!(port.name, "localhost:5000/proj/app");
        assert_eq!(
            Access::parse("registry:catalog:*").unwrap().actions,
            vec!["*"]
        );
        assert!(Access::parse("nonsense").is_none());
        assert_eq!(
            Action::parse_list("push,pull,bogus,pull"),
            vec![Action::Pull, Action::Push]
        );
        assert_eq!(a.to_scope(), "repository:proj/app:pull,push");
    }
}
