//! Where an import lands: the seed's naming rule. The target repository defaults to the
//! last path component of the source inside the chosen project (`docker.io/library/nginx`
//! into project `web` is `web/nginx`), and the tag to the source's tag.

use crate::progress::{Field, InvalidInput};
use crate::reference::{NAME_MAX, Reference, ReferenceError, check_path_component, check_tag};

/// A repository and tag inside the target registry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetName {
    /// `<project>/<image…>`.
    pub repository: String,
    /// None when the source was named by digest alone: the image is then kept by digest.
    pub tag: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetError {
    pub field: Field,
    pub message: String,
}

impl std::fmt::Display for TargetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field.name(), self.message)
    }
}

impl From<TargetError> for InvalidInput {
    fn from(e: TargetError) -> Self {
        InvalidInput::new(e.field, e.message)
    }
}

/// An import's source and target, named in one parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportNames {
    pub source: Reference,
    pub target: TargetName,
    /// The target fully qualified: `<registry>/<repository>:<tag>`, or `@<digest>` when
    /// the source was named by digest only.
    pub target_reference: String,
}

/// Parses `source` and names its target inside `project` of `target_registry`, with the
/// caller's overrides: all a host needs to accept an import, from one parse.
pub fn name_import(
    project: &str,
    source: &str,
    target_image: Option<&str>,
    target_tag: Option<&str>,
    target_registry: &str,
) -> Result<ImportNames, TargetError> {
    check_project(project)?;
    let parsed = Reference::parse(source).map_err(|e: ReferenceError| TargetError {
        field: Field::Source,
        message: e.to_string(),
    })?;
    let target = target_of(project, &parsed, target_image, target_tag)?;
    let target_reference = match (&target.tag, parsed.digest()) {
        (Some(tag), _) => format!("{target_registry}/{}:{tag}", target.repository),
        (None, Some(digest)) => format!("{target_registry}/{}@{digest}", target.repository),
        // A parsed reference without a digest always has a tag (`latest` by default).
        (None, None) => {
            return Err(TargetError {
                field: Field::TargetTag,
                message: "the source has neither tag nor digest; name a target tag".into(),
            });
        }
    };
    Ok(ImportNames {
        source: parsed,
        target,
        target_reference,
    })
}

impl std::error::Error for TargetError {}

fn check_project(project: &str) -> Result<(), TargetError> {
    check_path_component(project).map_err(|why| TargetError {
        field: Field::Project,
        message: if project.is_empty() {
            "the project name is empty".into()
        } else {
            format!("the project name {project:?} {why}")
        },
    })
}

/// The target of the parsed `source` in `project`, with the caller's overrides.
fn target_of(
    project: &str,
    source: &Reference,
    target_image: Option<&str>,
    target_tag: Option<&str>,
) -> Result<TargetName, TargetError> {
    let fail = |field, message: String| TargetError { field, message };
    let image = match target_image {
        Some(image) => {
            if image.is_empty() {
                return Err(fail(
                    Field::TargetImage,
                    "the target image is empty; leave it out to use the source's name".into(),
                ));
            }
            for (index, component) in image.split('/').enumerate() {
                check_path_component(component).map_err(|why| {
                    fail(
                        Field::TargetImage,
                        format!(
                            "path component {} ({component:?}) of the target image {image:?} {why}",
                            index + 1
                        ),
                    )
                })?;
            }
            image.to_owned()
        }
        None => source
            .repository()
            .rsplit('/')
            .next()
            .unwrap_or(source.repository())
            .to_owned(),
    };
    let repository = format!("{project}/{image}");
    if repository.len() > NAME_MAX {
        return Err(fail(
            Field::TargetImage,
            format!(
                "the target repository {repository:?} is {} characters long; at most {NAME_MAX}",
                repository.len()
            ),
        ));
    }

    let tag = match target_tag {
        Some(tag) => {
            check_tag(tag).map_err(|why| fail(Field::TargetTag, why))?;
            Some(tag.to_owned())
        }
        None => source.tag().map(str::to_owned),
    };
    Ok(TargetName { repository, tag })
}
