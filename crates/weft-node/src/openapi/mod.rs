//! The OpenAPI 3.1 document served at `/openapi.json`, generated from the handlers'
//! `#[utoipa::path]` annotations and the body types of `weft_api` (utoipa, ADR 0008).
//!
//! The schemas are the very types the handlers deserialise and answer with (ADR 0018), so the
//! document describes what is sent; the node's tests validate real answers against it.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "weft node API",
        description = "A tamper-evident, permissioned ledger for the manufacturing digital \
            thread. Writes are signed transactions; administrative endpoints need \
            `Authorization: Bearer` with the node's admin token. See docs/api.md.",
        license(name = "Apache-2.0")
    ),
    paths(
        crate::api::submit::submit_one,
        crate::api::submit::submit_batch,
        crate::api::reads::transaction,
        crate::api::checkpoints::tlog_proof,
        crate::api::checkpoints::checkpoint_note,
        crate::api::checkpoints::checkpoint,
        crate::api::checkpoints::consistency,
        crate::api::witness::add_checkpoint,
        crate::api::witness::status,
        crate::api::anchor::status,
        crate::api::anchor::witnessed,
        crate::api::anchor::anchors,
        crate::api::node::status,
        crate::api::node::net_status,
        crate::api::node::net_join,
        crate::api::reads::chain,
        crate::api::reads::block,
        crate::api::reads::resources_by_prefix,
        crate::api::reads::transactions_by_prefix,
        crate::api::reads::resource,
        crate::api::reads::resource_key,
        crate::api::reads::asset,
        crate::api::reads::claim,
        crate::api::node::health,
        crate::api::node::ready,
        crate::api::node::metrics,
        crate::openapi::openapi,
        crate::admin::register,
        crate::admin::reload,
    ),
    components(schemas(weft_api::ErrorBody, weft_api::ErrorDetail)),
    modifiers(&AdminToken),
    tags(
        (name = "transactions", description = "Submit signed transactions; read them with their proofs"),
        (name = "chain", description = "Blocks, head and genesis parameters"),
        (name = "state", description = "Resources, keys, assets and claims"),
        (name = "node", description = "Health, readiness, metrics, this document"),
        (name = "witness", description = "Witnessing other chains (C2SP tlog-witness)"),
        (name = "admin", description = "Need the node's admin token"),
    )
)]
pub struct ApiDoc;

/// The admin endpoints' bearer token, as a security scheme.
struct AdminToken;

impl utoipa::Modify for AdminToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "admin_token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document as JSON.
pub fn document() -> String {
    ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|error| format!("{{\"error\": \"{error}\"}}"))
}

#[utoipa::path(get, path = "/openapi.json", tag = "node",
    responses((status = 200, description = "This document (OpenAPI 3.1)", content_type = "application/json")))]
pub(crate) async fn openapi() -> Response {
    static DOCUMENT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        DOCUMENT.get_or_init(document).clone(),
    )
        .into_response()
}
