//! The admin account: its password comes from the environment or a file. Production
//! mode has no default; development mode makes one on the first start, keeps it in the
//! data folder, and prints it once.

use std::fmt;
use std::path::{Path, PathBuf};

pub const ADMIN_USER: &str = "admin";
/// Where development mode keeps the password it generated.
const GENERATED_FILE: &str = "admin-password";

/// The admin's password. Debug output never shows it.
#[derive(Clone)]
pub struct AdminPassword(String);

impl AdminPassword {
    pub fn check(&self, given: &str) -> bool {
        super::secrets_match(given, &self.0)
    }

    /// The password itself, for the places that must send it (the host's own imports
    /// into its registry never do; tests do).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AdminPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminPassword(…)")
    }
}

/// Where the password came from, for the start-up message.
#[derive(Debug, PartialEq, Eq)]
pub enum Source {
    Given,
    File(PathBuf),
    /// Generated now: the message shows it once.
    Generated {
        path: PathBuf,
    },
    /// Generated on an earlier start of development mode.
    Kept(PathBuf),
}

/// Decides the admin password. `given` is the value of the environment variable.
pub fn resolve(
    given: Option<String>,
    file: Option<&Path>,
    development: bool,
    data_dir: &Path,
) -> Result<(AdminPassword, Source), String> {
    if let Some(password) = given.filter(|p| !p.is_empty()) {
        return Ok((AdminPassword(password), Source::Given));
    }
    if let Some(path) = file {
        let text = std::fs::read_to_string(path).map_err(|e| {
            format!(
                "cannot read the admin password file {}: {e}",
                path.display()
            )
        })?;
        let password = text.trim_end_matches(['\r', '\n']).to_owned();
        if password.is_empty() {
            return Err(format!(
                "the admin password file {} is empty",
                path.display()
            ));
        }
        return Ok((AdminPassword(password), Source::File(path.to_owned())));
    }
    if !development {
        return Err(
            "no admin password: set HOIST_ADMIN_PASSWORD or HOIST_ADMIN_PASSWORD_FILE \
                    (or admin_password_file in the configuration), or start with --dev to \
                    generate one for local use"
                .into(),
        );
    }
    let path = data_dir.join(GENERATED_FILE);
    if let Ok(text) = std::fs::read_to_string(&path) {
        let password = text.trim().to_owned();
        if !password.is_empty() {
            return Ok((AdminPassword(password), Source::Kept(path)));
        }
    }
    let password = super::new_secret().trim_start_matches("hoist_")[..20].to_owned();
    hoist_common::keyfile::write_private(&path, password.as_bytes(), false)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok((AdminPassword(password), Source::Generated { path }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn production_needs_a_password_and_development_keeps_the_one_it_made() {
        let dir = tempfile::tempdir().unwrap();
        let err = resolve(None, None, false, dir.path()).unwrap_err();
        assert!(err.contains("HOIST_ADMIN_PASSWORD"), "{err}");

        let (given, source) = resolve(Some("pw".into()), None, false, dir.path()).unwrap();
        assert!(given.check("pw") && !given.check("pW"));
        assert_eq!(source, Source::Given);
        assert_eq!(format!("{given:?}"), "AdminPassword(…)");

        let file = dir.path().join("pw.txt");
        std::fs::write(&file, "from-file\n").unwrap();
        let (p, _) = resolve(None, Some(&file), false, dir.path()).unwrap();
        assert!(p.check("from-file"));

        let (first, source) = resolve(None, None, true, dir.path()).unwrap();
        assert!(matches!(source, Source::Generated { .. }));
        let (second, source) = resolve(None, None, true, dir.path()).unwrap();
        assert!(matches!(source, Source::Kept(_)));
        assert!(
            second.check(first.expose()),
            "the same password after a restart"
        );
    }
}
