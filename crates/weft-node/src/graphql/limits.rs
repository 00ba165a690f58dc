//! What bounds a GraphQL request beyond async-graphql's own depth and complexity: its size in
//! bytes and nesting before it is parsed, every field it selects, the queries running at once
//! (through `/graphql` and on subscription sockets alike), and the operations one subscription
//! socket may have going at once.

use std::sync::Arc;
use std::time::Duration;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery,
};
use async_graphql::futures_util::stream::{self, BoxStream, StreamExt};
use async_graphql::{Data, Executor, Request, Response, ServerError};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::WeftSchema;

/// Deepest nesting of `{`, `[` and `(` a query may have. The parser and validation recurse once
/// per level of a value or a type, which no limit of async-graphql bounds (its recursive depth
/// counts selections only): a few hundred levels overflowed a worker thread's stack and aborted
/// the node (fuzz target `api_request_json`).
pub(super) const MAX_NESTING: usize = 64;

/// Refuses a query longer than `max_bytes` or nested deeper than [`MAX_NESTING`] before it is
/// parsed, and one that selects more than `max_fields` fields before it is validated or run.
#[derive(Debug, Clone, Copy)]
pub(super) struct SizeLimits {
    pub max_bytes: usize,
    pub max_fields: usize,
}

impl ExtensionFactory for SizeLimits {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(*self)
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for SizeLimits {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &async_graphql::Variables,
        next: NextParseQuery<'_>,
    ) -> async_graphql::ServerResult<async_graphql::parser::types::ExecutableDocument> {
        if query.len() > self.max_bytes {
            return Err(ServerError::new(
                format!(
                    "The query is {} bytes; at most {} (api.graphql_max_bytes).",
                    query.len(),
                    self.max_bytes
                ),
                None,
            ));
        }
        if nesting(query) > MAX_NESTING {
            return Err(ServerError::new(
                format!("The query nests deeper than {MAX_NESTING} levels of {{, [ and (."),
                None,
            ));
        }
        let document = next.run(ctx, query, variables).await?;
        let fields = selected_fields(&document);
        if fields > self.max_fields {
            return Err(ServerError::new(
                format!(
                    "The query selects {} fields; at most {} (api.graphql_max_fields; every \
                     field counts, __typename and aliases too, a fragment once per use).",
                    if fields == usize::MAX {
                        "too many".to_string()
                    } else {
                        fields.to_string()
                    },
                    self.max_fields
                ),
                None,
            ));
        }
        Ok(document)
    }
}

/// The deepest nesting of `{`, `[` and `(` in a query's text, outside strings and comments.
pub(super) fn nesting(query: &str) -> usize {
    let bytes = query.as_bytes();
    let (mut depth, mut deepest, mut at) = (0usize, 0usize, 0usize);
    while at < bytes.len() {
        let rest = &bytes[at..];
        if rest.starts_with(b"\"\"\"") {
            // A block string ends at the next `"""` not escaped as `\"""`.
            at += 3;
            while at < bytes.len() && !bytes[at..].starts_with(b"\"\"\"") {
                let escaped = bytes[at..].starts_with(b"\\\"\"\"");
                at += if escaped { 4 } else { 1 };
            }
            at += 3;
            continue;
        }
        match rest[0] {
            b'"' => {
                at += 1;
                while at < bytes.len() && bytes[at] != b'"' && bytes[at] != b'\n' {
                    at += if bytes[at] == b'\\' { 2 } else { 1 };
                }
            }
            b'#' => {
                while at < bytes.len() && bytes[at] != b'\n' && bytes[at] != b'\r' {
                    at += 1;
                }
            }
            b'{' | b'[' | b'(' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b'}' | b']' | b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
        at += 1;
    }
    deepest
}

/// Every field the document's operations select, fragments counted once per spread; a fragment
/// that spreads itself counts as `usize::MAX` (validation refuses it anyway).
pub(super) fn selected_fields(
    document: &async_graphql::parser::types::ExecutableDocument,
) -> usize {
    let mut fragments = std::collections::HashMap::new();
    document
        .operations
        .iter()
        .map(|(_, operation)| {
            fields_in(
                &operation.node.selection_set.node,
                document,
                &mut fragments,
                0,
            )
        })
        .fold(0, usize::saturating_add)
}

fn fields_in<'a>(
    set: &'a async_graphql::parser::types::SelectionSet,
    document: &'a async_graphql::parser::types::ExecutableDocument,
    fragments: &mut std::collections::HashMap<&'a str, usize>,
    depth: usize,
) -> usize {
    use async_graphql::parser::types::Selection;
    if depth > 64 {
        return usize::MAX;
    }
    let mut count = 0usize;
    for item in &set.items {
        let here = match &item.node {
            Selection::Field(field) => 1usize.saturating_add(fields_in(
                &field.node.selection_set.node,
                document,
                fragments,
                depth + 1,
            )),
            Selection::InlineFragment(inline) => fields_in(
                &inline.node.selection_set.node,
                document,
                fragments,
                depth + 1,
            ),
            Selection::FragmentSpread(spread) => {
                let name = spread.node.fragment_name.node.as_str();
                match fragments.get(name) {
                    Some(known) => *known,
                    None => {
                        // Marked first, so a fragment reached again while it is counted (a
                        // cycle) counts as too many.
                        fragments.insert(name, usize::MAX);
                        let counted = document
                            .fragments
                            .get(&spread.node.fragment_name.node)
                            .map_or(0, |fragment| {
                                fields_in(
                                    &fragment.node.selection_set.node,
                                    document,
                                    fragments,
                                    depth + 1,
                                )
                            });
                        fragments.insert(name, counted);
                        counted
                    }
                }
            }
        };
        count = count.saturating_add(here);
    }
    count
}

/// How long a query waits for one of `api.graphql_concurrent` to finish before it is refused.
pub(super) const BUSY_WAIT: Duration = Duration::from_secs(1);

/// A permit to run one query, waiting at most `wait` for one; `None` if none came free.
pub(super) async fn slot(running: &Arc<Semaphore>, wait: Duration) -> Option<OwnedSemaphorePermit> {
    if let Ok(free) = running.clone().try_acquire_owned() {
        return Some(free);
    }
    tokio::time::timeout(wait, running.clone().acquire_owned())
        .await
        .ok()?
        .ok()
}

/// Put in a request's data by `POST`/`GET /graphql`, which takes its slot before the query is
/// even parsed: [`Running`] does not take a second one.
pub(super) struct Slotted;

/// Takes one of `api.graphql_concurrent` slots for every query and holds it while the query
/// runs (a subscription's stream runs without one: it only waits for blocks). Requests through
/// `/graphql` already hold theirs ([`Slotted`]); this is what bounds queries sent on
/// subscription sockets.
#[derive(Clone)]
pub(super) struct Running {
    pub running: Arc<Semaphore>,
    /// `api.graphql_concurrent`, for the message.
    pub limit: usize,
}

impl ExtensionFactory for Running {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(self.clone())
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for Running {
    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        if ctx.data_opt::<Slotted>().is_some() {
            return next.run(ctx, operation_name).await;
        }
        let Some(_running) = slot(&self.running, BUSY_WAIT).await else {
            return Response::from_errors(vec![busy(format!(
                "the node is running api.graphql_concurrent = {} GraphQL queries; retry in a \
                 second",
                self.limit
            ))]);
        };
        next.run(ctx, operation_name).await
    }
}

/// A GraphQL error with `extensions.code = "busy"`.
pub(super) fn busy(message: String) -> ServerError {
    let mut error = ServerError::new(message, None);
    let mut extensions = async_graphql::ErrorExtensionValues::default();
    extensions.set("code", "busy");
    error.extensions = Some(extensions);
    error
}

/// The schema as one subscription socket runs it: at most `api.graphql_socket_operations`
/// operations going at once; one more is answered with a `busy` error and the socket goes on.
#[derive(Clone)]
pub(super) struct SocketExecutor {
    pub schema: WeftSchema,
    pub operations: Arc<Semaphore>,
    /// `api.graphql_socket_operations`, for the message.
    pub limit: usize,
}

impl Executor for SocketExecutor {
    async fn execute(&self, request: Request) -> Response {
        self.schema.execute(request).await
    }

    fn execute_stream(
        &self,
        request: Request,
        session_data: Option<Arc<Data>>,
    ) -> BoxStream<'static, Response> {
        let Ok(operation) = self.operations.clone().try_acquire_owned() else {
            return stream::once(std::future::ready(Response::from_errors(vec![busy(
                format!(
                    "this socket has {} operations going (api.graphql_socket_operations); \
                     complete one first",
                    self.limit
                ),
            )])))
            .boxed();
        };
        self.schema
            .execute_stream_with_session_data(request, session_data.unwrap_or_default())
            .map(move |response| {
                // Held until the operation's stream ends or the socket closes.
                let _ = &operation;
                response
            })
            .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_schema(running: Arc<Semaphore>) -> WeftSchema {
        super::super::schema(64 << 10, 1000, running, 1)
    }

    /// With every slot taken a query waits, then is refused; a slot freed meanwhile lets it run.
    #[tokio::test(start_paused = true)]
    async fn a_query_waits_for_a_slot_then_is_refused() {
        let running = Arc::new(tokio::sync::Semaphore::new(1));
        let held = slot(&running, BUSY_WAIT).await.expect("a free slot");
        assert!(
            slot(&running, BUSY_WAIT).await.is_none(),
            "refused after the wait"
        );
        let waiting = tokio::spawn({
            let running = running.clone();
            async move { slot(&running, BUSY_WAIT).await.is_some() }
        });
        tokio::time::sleep(BUSY_WAIT / 2).await;
        drop(held);
        assert!(waiting.await.expect("joins"), "runs once a slot is free");
    }

    /// Values and types nested a few hundred levels deep overflowed the stack of the thread
    /// that parsed them (found by the `api_request_json` fuzz target): they are refused before
    /// they are parsed, and brackets in strings and comments do not count.
    #[test]
    fn deeply_nested_values_and_types_are_refused_before_parsing() {
        let schema = test_schema(Arc::new(Semaphore::new(1)));
        for query in [
            format!(
                "{{ block(hash: {}1{}) {{ height }} }}",
                "{a:".repeat(400),
                "}".repeat(400)
            ),
            format!(
                "{{ block(hash: {}1{}) {{ height }} }}",
                "[".repeat(500),
                "]".repeat(500)
            ),
            format!(
                "query ($a: {}String{}) {{ head {{ height }} }}",
                "[".repeat(3000),
                "]".repeat(3000)
            ),
        ] {
            let response = futures::executor::block_on(schema.execute(query.as_str()));
            assert!(
                response.errors[0].message.contains("nests deeper"),
                "{:?}",
                response.errors
            );
        }
        assert_eq!(nesting("{ a(b: [[1]]) { c } }"), 4);
        assert_eq!(nesting("{ a(b: \"[[[[\\\"((\") # {{{{\n c }"), 2);
        assert_eq!(nesting("{ a(b: \"\"\"[[ \\\"\"\" {{ \"\"\") }"), 2);
        assert_eq!(nesting("{ unterminated(b: \"[[["), 2);
    }

    /// Every field counts once per place it is selected: aliases, `__typename`, fragments per
    /// spread; a fragment that spreads itself counts as too many.
    #[test]
    fn selected_fields_count_every_field() {
        let count = |query: &str| {
            selected_fields(&async_graphql::parser::parse_query(query).expect("parses"))
        };
        assert_eq!(
            count("{ a: __typename b: __typename chain { chainName } }"),
            4
        );
        assert_eq!(
            count(
                "{ ...F ...F ... on Query { x: __typename } } fragment F on Query { __typename head { height } }"
            ),
            7
        );
        assert_eq!(
            count("{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }"),
            usize::MAX
        );
    }
}

#[cfg(test)]
mod socket_tests {
    use super::*;

    fn executor(running: Arc<Semaphore>, operations: usize) -> SocketExecutor {
        SocketExecutor {
            schema: super::super::schema(64 << 10, 1000, running, 1),
            operations: Arc::new(Semaphore::new(operations)),
            limit: operations,
        }
    }

    fn code(response: &Response) -> Option<String> {
        let extensions = response.errors.first()?.extensions.as_ref()?;
        match extensions.get("code")? {
            async_graphql::Value::String(code) => Some(code.clone()),
            _ => None,
        }
    }

    /// A query sent on a subscription socket takes one of `api.graphql_concurrent` slots like
    /// one sent to `/graphql`: with every slot taken it waits, then is refused `busy`.
    #[tokio::test(start_paused = true)]
    async fn a_query_on_a_socket_waits_for_a_slot_then_is_refused() {
        let running = Arc::new(Semaphore::new(1));
        let socket = executor(running.clone(), 4);
        let free = socket
            .execute_stream(Request::new("{ __typename }"), None)
            .next()
            .await
            .expect("an answer");
        assert!(free.errors.is_empty(), "{:?}", free.errors);
        let held = running.clone().try_acquire_owned().expect("the one slot");
        let refused = socket
            .execute_stream(Request::new("{ __typename }"), None)
            .next()
            .await
            .expect("an answer");
        assert_eq!(
            code(&refused).as_deref(),
            Some("busy"),
            "{:?}",
            refused.errors
        );
        drop(held);
        let again = socket
            .execute_stream(Request::new("{ __typename }"), None)
            .next()
            .await
            .expect("an answer");
        assert!(again.errors.is_empty(), "{:?}", again.errors);
        // A request through /graphql took its slot before parsing: it does not take another.
        let _held = running.clone().try_acquire_owned().expect("the one slot");
        let slotted = socket
            .schema
            .execute(Request::new("{ __typename }").data(Slotted))
            .await;
        assert!(slotted.errors.is_empty(), "{:?}", slotted.errors);
    }

    /// One socket has at most `api.graphql_socket_operations` operations going; one more is
    /// refused at once, and an operation that ends frees its place.
    #[tokio::test]
    async fn a_socket_runs_at_most_its_operations_at_once() {
        let socket = executor(Arc::new(Semaphore::new(4)), 1);
        let first = socket.execute_stream(Request::new("{ __typename }"), None);
        let mut second = socket.execute_stream(Request::new("{ __typename }"), None);
        let refused = second.next().await.expect("an answer");
        assert_eq!(
            code(&refused).as_deref(),
            Some("busy"),
            "{:?}",
            refused.errors
        );
        assert!(
            refused.errors[0]
                .message
                .contains("api.graphql_socket_operations")
        );
        assert!(
            second.next().await.is_none(),
            "the refusal ends the operation"
        );
        drop(first);
        let third = socket
            .execute_stream(Request::new("{ __typename }"), None)
            .next()
            .await
            .expect("an answer");
        assert!(third.errors.is_empty(), "{:?}", third.errors);
    }
}
