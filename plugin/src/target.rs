//! Where an import lands: the seed's naming rule. The target repository defaults to the
//! last path component of the source inside the chosen project (`docker.io/library/nginx`
//! into project `web` is `web/nginx`), and the tag to the source's tag.

use crate::reference::{NAME_MAX, Reference, ReferenceError, check_path_component, check_tag};

/// A repository and tag inside the target registry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetName {
    /// `<project>/<image…>`.
    pub repository: String,
    /// None when the source was named by digest alone: the image is then kept by digest.
    pub tag: Option<String>,
}

/// Which input a target-naming error is about, so an API can report it per field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    Project,
    Source,
    TargetImage,
    TargetTag,
}

impl Field {
    /// The field's name in the seed's import API.
    pub fn api_name(self) -> &'static str {
        match self {
            Field::Project => "project",
            Field::Source => "source_url",
            Field::TargetImage => "target_image",
            Field::TargetTag => "target_tag",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetError {
    pub field: Field,
    pub message: String,
}

impl std::fmt::Display for TargetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field.api_name(), self.message)
    }
}

impl std::error::Error for TargetError {}

/// The default target of `source` in `project`, with the caller's overrides checked by the
/// same grammar as references.
pub fn default_target(
    project: &str,
    source: &str,
    target_image: Option<&str>,
    target_tag: Option<&str>,
) -> Result<TargetName, TargetError> {
    let fail = |field, message: String| TargetError { field, message };
    check_path_component(project).map_err(|why| {
        fail(
            Field::Project,
            if project.is_empty() {
                "the project name is empty".into()
            } else {
                format!("the project name {project:?} {why}")
            },
        )
    })?;
    let source =
        Reference::parse(source).map_err(|e: ReferenceError| fail(Field::Source, e.to_string()))?;

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
