//! The API's description, served as the file that documents it.

use axum::http::header;
use axum::response::IntoResponse;

const DOCUMENT: &str = include_str!("../../openapi.yaml");

pub async fn document() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/yaml")], DOCUMENT)
}

#[cfg(test)]
mod tests {
    /// Every route the API serves is described: a path missing from the document is an
    /// endpoint nobody can find (the robots API once was).
    #[test]
    fn every_api_route_is_in_the_document() {
        let routes = include_str!("mod.rs");
        let mut missing = Vec::new();
        for line in routes.lines() {
            let Some(start) = line.find("\"/api/v1/") else {
                continue;
            };
            let path = &line[start + 1..];
            let path = &path[..path.find('"').unwrap()];
            // The catch-all that answers unknown paths is not an endpoint.
            if path.contains("{*") {
                continue;
            }
            if !super::DOCUMENT.contains(&format!("\n  {path}:\n")) {
                missing.push(path.to_owned());
            }
        }
        assert!(missing.is_empty(), "not in openapi.yaml: {missing:?}");
    }
}
