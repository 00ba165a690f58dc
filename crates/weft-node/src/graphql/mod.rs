//! GraphQL at `/graphql` (docs/graphql.md): blocks, transactions with their inclusion proofs,
//! assets with their provenance and verdict, resources; a subscription for new blocks.
//!
//! Queries go over `POST /graphql` (JSON body) or `GET /graphql?query=…`; subscriptions over a
//! WebSocket opened with `GET /graphql` and the `graphql-transport-ws` (or older `graphql-ws`)
//! subprotocol. Every resolver reads the same store the REST API reads, through the same
//! blocking-thread helper, so both always agree. Depth and complexity are bounded: a query that
//! would walk a large part of the chain is refused before it runs. So are a query's size in
//! bytes and the number of fields it selects, every field counted (`__typename` and aliases,
//! which async-graphql's complexity leaves out), and the number of queries running at once.

use std::sync::Arc;

use async_graphql::futures_util::Stream;
use async_graphql::{
    ComplexObject, Context, EmptyMutation, Enum, Error, ErrorExtensions, Json, Object, Schema,
    SimpleObject, Subscription,
};
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::extract::{Extension, FromRequestParts, State, WebSocketUpgrade};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use weft_core::{Fingerprint, ResourceId, TxId};
use weft_ledger::Signer;
use weft_ledger::block::SignedHeader;
use weft_ledger::state::{Position, ResourceEntry, StateView};
use weft_ledger::store::Store;

use crate::api::error::{ApiError, ApiJson};
use crate::api::state::AppState;
use crate::query;
use weft_api::ErrorCode;

mod limits;

/// The schema the node serves.
pub(crate) type WeftSchema = Schema<QueryRoot, EmptyMutation, SubscriptionRoot>;

/// Deepest selection a query may nest.
const MAX_DEPTH: usize = 12;
/// Largest complexity a query may have: each field counts 1, and a list field counts its
/// length argument times what is selected inside it.
pub(crate) const MAX_COMPLEXITY: usize = 20_000;
/// The schema, refusing queries over `max_bytes` or selecting more than `max_fields` fields,
/// and running at most `concurrent` queries at once (the permits of `running`).
pub(crate) fn schema(
    max_bytes: usize,
    max_fields: usize,
    running: Arc<tokio::sync::Semaphore>,
    concurrent: usize,
) -> WeftSchema {
    Schema::build(QueryRoot, EmptyMutation, SubscriptionRoot)
        .limit_depth(MAX_DEPTH)
        .limit_complexity(MAX_COMPLEXITY)
        .limit_recursive_depth(32)
        .limit_directives(8)
        .extension(limits::SizeLimits {
            max_bytes,
            max_fields,
        })
        .extension(limits::Running {
            running,
            limit: concurrent,
        })
        .finish()
}

/// The GraphQL routes, serving `schema`: `/graphql` (queries, and subscription sockets) with
/// bodies of at most `max_bytes`, and `/graphql/schema`.
pub(crate) fn routes(schema: WeftSchema, max_bytes: usize) -> axum::Router<Arc<AppState>> {
    axum::Router::new()
        .route(
            "/graphql",
            axum::routing::get(get)
                .post(post)
                .layer(axum::extract::DefaultBodyLimit::max(max_bytes)),
        )
        .route("/graphql/schema", axum::routing::get(sdl))
        .layer(Extension(schema))
}

/// `POST /graphql`: a JSON body `{"query", "variables"?, "operationName"?}`.
async fn post(
    State(state): State<Arc<AppState>>,
    Extension(schema): Extension<WeftSchema>,
    ApiJson(request): ApiJson<async_graphql::Request>,
) -> Response {
    execute(&state, &schema, request).await
}

/// `GET /graphql`: a query in the URL, or (with `Upgrade: websocket`) a subscription socket.
async fn get(
    State(state): State<Arc<AppState>>,
    Extension(schema): Extension<WeftSchema>,
    request: axum::extract::Request,
) -> Response {
    let (parts, _) = request.into_parts();
    if parts.headers.contains_key(header::UPGRADE) {
        return subscribe(state, schema, parts).await;
    }
    match async_graphql::http::parse_query_string(parts.uri.query().unwrap_or_default()) {
        Ok(request) => execute(&state, &schema, request).await,
        Err(error) => ApiError::bad_request(
            ErrorCode::BadQuery,
            format!("GET /graphql takes ?query=…[&variables=…][&operationName=…]: {error}"),
        )
        .into_response(),
    }
}

/// `GET /graphql/schema`: the schema in SDL, as in docs/graphql.graphql.
async fn sdl(Extension(schema): Extension<WeftSchema>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        )],
        schema.sdl(),
    )
        .into_response()
}

/// Runs one request. A request that cannot run at all (it does not parse, names an unknown
/// field, is too deep or too complex) is a 400 with the GraphQL errors; otherwise 200, with
/// field errors (a malformed id, say) beside the data, as GraphQL has it.
async fn execute(
    state: &Arc<AppState>,
    schema: &WeftSchema,
    request: async_graphql::Request,
) -> Response {
    // A bounded number run at once; the others wait a little, then are told to come back.
    let Some(_running) = limits::slot(&state.graphql_running, limits::BUSY_WAIT).await else {
        state.metrics.graphql_refused.inc();
        let mut response = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Busy,
            format!(
                "the node is running api.graphql_concurrent = {} GraphQL queries; retry in a second",
                state.config.api.graphql_concurrent
            ),
        )
        .into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return response;
    };
    let response = schema
        .execute(request.data(state.clone()).data(limits::Slotted))
        .await;
    if response.is_err() && response.data == async_graphql::Value::Null {
        state.metrics.graphql_refused.inc();
    }
    let status = if response.data == async_graphql::Value::Null && response.is_err() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    (status, axum::Json(response)).into_response()
}

async fn subscribe(
    state: Arc<AppState>,
    schema: WeftSchema,
    mut parts: axum::http::request::Parts,
) -> Response {
    let Ok(protocol) = GraphQLProtocol::from_request_parts(&mut parts, &()).await else {
        return ApiError::bad_request(
            ErrorCode::BadWebsocket,
            "a GraphQL subscription socket needs Sec-WebSocket-Protocol: graphql-transport-ws \
             (or graphql-ws)",
        )
        .into_response();
    };
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(upgrade) => upgrade,
        Err(rejection) => {
            return ApiError::bad_request(ErrorCode::BadWebsocket, rejection.body_text())
                .into_response();
        }
    };
    // Subscription sockets leave the API's connection gate once upgraded: they have a cap of
    // their own, and the node waits for them at shutdown (each ends with `complete`).
    let Ok(socket) = state.sockets.clone().try_acquire_owned() else {
        state.metrics.graphql_refused.inc();
        let mut response = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Busy,
            format!(
                "the node serves api.graphql_sockets = {} GraphQL subscription sockets at once; \
                 retry later",
                state.config.api.graphql_sockets
            ),
        )
        .into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        return response;
    };
    let limit = state.config.api.graphql_max_bytes;
    let executor = limits::SocketExecutor {
        schema,
        operations: Arc::new(tokio::sync::Semaphore::new(
            state.config.api.graphql_socket_operations,
        )),
        limit: state.config.api.graphql_socket_operations,
    };
    let mut data = async_graphql::Data::default();
    data.insert(state);
    upgrade
        .max_message_size(limit)
        .max_frame_size(limit)
        .protocols(async_graphql::http::ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |upgraded| async move {
            GraphQLWebSocket::new(upgraded, executor, protocol)
                .with_data(data)
                .serve()
                .await;
            drop(socket);
        })
}

/// An [`ApiError`] as a GraphQL error: its message, and its code (and rule) as extensions.
fn error(error: ApiError) -> Error {
    let (code, message, rule) = error.parts();
    Error::new(message).extend_with(|_, extensions| {
        extensions.set("code", code.as_str());
        if let Some(rule) = rule {
            extensions.set("rule", rule);
        }
    })
}

fn state<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a Arc<AppState>> {
    ctx.data::<Arc<AppState>>()
}

/// Runs `read` against the ledger on a blocking thread, as the REST handlers do.
async fn read<T: Send + 'static>(
    ctx: &Context<'_>,
    read: impl FnOnce(&weft_ledger::Ledger<weft_ledger::store::RedbStore>) -> Result<T, ApiError>
    + Send
    + 'static,
) -> async_graphql::Result<T> {
    crate::api::state::read(state(ctx)?, read)
        .await
        .map_err(error)
}

fn parse<T>(
    text: &str,
    code: ErrorCode,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> async_graphql::Result<T> {
    parse(text.trim()).map_err(|message| error(ApiError::bad_request(code, message)))
}

fn tx_id(text: &str) -> async_graphql::Result<TxId> {
    parse(text, ErrorCode::BadId, |text| {
        TxId::from_hex(text).map_err(|e| e.to_string())
    })
}

fn resource_id(text: &str) -> async_graphql::Result<ResourceId> {
    parse(text, ErrorCode::BadId, |text| {
        ResourceId::from_hex(text).map_err(|e| e.to_string())
    })
}

fn fingerprint(text: &str) -> async_graphql::Result<Fingerprint> {
    parse(text, ErrorCode::BadFingerprint, |text| {
        text.parse()
            .map_err(|e: weft_core::CoreError| e.to_string())
    })
}

/// The root of every query.
pub(crate) struct QueryRoot;

#[Object(name = "Query")]
impl QueryRoot {
    /// This node: chain, height, head, type, peers, waiting transactions.
    async fn node(&self, ctx: &Context<'_>) -> async_graphql::Result<Node> {
        let state = state(ctx)?;
        let node_type = state.config.node.node_type.name().to_string();
        let chain = state.chain_name.clone();
        let mempool = state.metrics.pending.get().max(0) as u64;
        read(ctx, move |ledger| {
            let head = &ledger.head().header;
            Ok(Node {
                chain,
                chain_id: ledger.chain_id().to_hex(),
                height: head.height,
                head: head.hash().to_hex(),
                node_type,
                peers: 0,
                mempool,
            })
        })
        .await
    }

    /// The genesis parameters and head, as `weft chain info`.
    async fn chain(&self, ctx: &Context<'_>) -> async_graphql::Result<Chain> {
        read(ctx, |ledger| {
            let genesis = ledger.genesis();
            let head = &ledger.head().header;
            let hex = |keys: &[weft_core::PublicKey]| keys.iter().map(|key| key.to_hex()).collect();
            Ok(Chain {
                chain_name: genesis.chain_name.clone(),
                chain_id: ledger.chain_id().to_hex(),
                time_window_secs: genesis.time_window_ms / 1000,
                authorities: hex(&genesis.authorities),
                producers: hex(&genesis.producers),
                height: head.height,
                head_hash: head.hash().to_hex(),
            })
        })
        .await
    }

    /// The newest block.
    async fn head(&self, ctx: &Context<'_>) -> async_graphql::Result<Block> {
        read(ctx, |ledger| Ok(Block::from(ledger.head()))).await
    }

    /// The block at `height` or with `hash` (give exactly one); null if there is none.
    async fn block(
        &self,
        ctx: &Context<'_>,
        height: Option<u64>,
        hash: Option<String>,
    ) -> async_graphql::Result<Option<Block>> {
        let hash = match (height, hash) {
            (Some(_), Some(_)) | (None, None) => {
                return Err(error(ApiError::bad_request(
                    ErrorCode::BadArguments,
                    "block takes exactly one of height and hash",
                )));
            }
            (_, Some(hash)) => Some(parse(&hash, ErrorCode::BadHash, |text| {
                weft_core::BlockHash::from_hex(text).map_err(|e| e.to_string())
            })?),
            (Some(_), None) => None,
        };
        read(ctx, move |ledger| {
            let store = ledger.store();
            let height = match hash {
                Some(hash) => match store.height_of(&hash)? {
                    Some(height) => height,
                    None => return Ok(None),
                },
                None => height.unwrap_or_default(),
            };
            Ok(store.signed_header(height)?.as_ref().map(Block::from))
        })
        .await
    }

    /// Up to `count` blocks (at most 100) from height `from` upward, stopping at the head.
    #[graphql(complexity = "(count as usize).saturating_mul(child_complexity)")]
    async fn blocks(
        &self,
        ctx: &Context<'_>,
        from: u64,
        #[graphql(default = 10, validator(minimum = 1, maximum = 100))] count: u32,
    ) -> async_graphql::Result<Vec<Block>> {
        read(ctx, move |ledger| {
            let store = ledger.store();
            let mut blocks = Vec::new();
            for height in (from..).take(count as usize) {
                match store.signed_header(height)? {
                    Some(signed) => blocks.push(Block::from(&signed)),
                    None => break,
                }
            }
            Ok(blocks)
        })
        .await
    }

    /// The committed transaction with this id (64 hex digits); null if it is not on the chain.
    async fn transaction(
        &self,
        ctx: &Context<'_>,
        id: String,
    ) -> async_graphql::Result<Option<Transaction>> {
        let id = tx_id(&id)?;
        read(ctx, move |ledger| {
            Ok(ledger
                .store()
                .tx(&id)?
                .map(|(tx, position)| Transaction { id, tx, position }))
        })
        .await
    }

    /// A registered resource (organisation or person); null if none has this id.
    async fn resource(
        &self,
        ctx: &Context<'_>,
        id: String,
    ) -> async_graphql::Result<Option<Resource>> {
        let id = resource_id(&id)?;
        read(ctx, move |ledger| {
            let snapshot = ledger.store().snapshot()?;
            Ok(snapshot.resource(&id)?.map(|entry| Resource { id, entry }))
        })
        .await
    }

    /// Registered resources whose id starts with `prefix` (6 to 64 hex digits; at most 1,000).
    #[graphql(complexity = "child_complexity.saturating_mul(100)")]
    async fn resources(
        &self,
        ctx: &Context<'_>,
        prefix: String,
    ) -> async_graphql::Result<Vec<Resource>> {
        let prefix = prefix.trim().to_ascii_lowercase();
        if !query::is_id_prefix(&prefix) {
            return Err(error(ApiError::bad_request(
                ErrorCode::BadPrefix,
                format!("{prefix:?} is not a resource id prefix (6 to 64 hex digits)"),
            )));
        }
        read(ctx, move |ledger| {
            let store = ledger.store();
            let snapshot = store.snapshot()?;
            let mut found = Vec::new();
            for id in query::resources_with_prefix(store, &prefix)? {
                if let Some(entry) = snapshot.resource(&id)? {
                    found.push(Resource { id, entry });
                }
            }
            Ok(found)
        })
        .await
    }

    /// The product data with this fingerprint (`algo:hex`, or bare SHA-256 hex): its owner,
    /// its claim, every transaction that names it, and the NIST verdict for `recipient`.
    async fn asset(
        &self,
        fingerprint: String,
        recipient: Option<String>,
    ) -> async_graphql::Result<Asset> {
        Ok(Asset {
            fingerprint: self::fingerprint(&fingerprint)?,
            recipient: recipient.as_deref().map(resource_id).transpose()?,
        })
    }
}

/// This node.
#[derive(SimpleObject)]
struct Node {
    chain: String,
    chain_id: String,
    height: u64,
    /// Hash of the head block.
    head: String,
    /// thin, producer, archive or full.
    node_type: String,
    peers: u32,
    /// Transactions received and not yet committed.
    mempool: u64,
}

/// The chain's genesis parameters and head.
#[derive(SimpleObject)]
struct Chain {
    chain_name: String,
    chain_id: String,
    time_window_secs: u64,
    /// Keys that may register organisations.
    authorities: Vec<String>,
    /// Keys that may produce blocks.
    producers: Vec<String>,
    height: u64,
    head_hash: String,
}

/// A block: its header, and its transactions on demand.
#[derive(SimpleObject, Clone)]
#[graphql(complex)]
struct Block {
    /// Height; genesis is 0.
    height: u64,
    /// The block hash: what the next block's `previous` names.
    hash: String,
    previous: String,
    /// Milliseconds since the Unix epoch, as its producer sealed it.
    timestamp: u64,
    time_utc: String,
    /// The RFC 6962 root over the block's transaction ids.
    merkle_root: String,
    tx_count: u32,
    /// The producer's public key.
    producer: String,
    version: u8,
}

impl From<&SignedHeader> for Block {
    fn from(signed: &SignedHeader) -> Self {
        let header = &signed.header;
        Block {
            height: header.height,
            hash: header.hash().to_hex(),
            previous: header.previous_digest.to_hex(),
            timestamp: header.timestamp,
            time_utc: query::format_time(header.timestamp),
            merkle_root: header.merkle_root.to_hex(),
            tx_count: header.tx_count,
            producer: header.producer.to_hex(),
            version: header.version,
        }
    }
}

#[ComplexObject]
impl Block {
    /// The block's transactions in order: `first` of them (at most 1,000) from `offset`.
    #[graphql(complexity = "(first as usize).saturating_mul(child_complexity)")]
    async fn transactions(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 0)] offset: u32,
        #[graphql(default = 100, validator(minimum = 1, maximum = 1000))] first: u32,
    ) -> async_graphql::Result<Vec<Transaction>> {
        let height = self.height;
        read(ctx, move |ledger| {
            let transactions = ledger.store().block_transactions(height)?;
            Ok(transactions
                .into_iter()
                .enumerate()
                .skip(offset as usize)
                .take(first as usize)
                .map(|(index, tx)| Transaction {
                    id: tx.id(),
                    tx,
                    position: Position {
                        height,
                        index: index as u32,
                    },
                })
                .collect())
        })
        .await
    }
}

/// A committed transaction.
#[derive(Clone)]
struct Transaction {
    id: TxId,
    tx: weft_ledger::Transaction,
    position: Position,
}

#[Object]
impl Transaction {
    /// The transaction id, 64 hex digits.
    async fn id(&self) -> String {
        self.id.to_hex()
    }

    /// Height of the block that holds it.
    async fn height(&self) -> u64 {
        self.position.height
    }

    /// Its place in that block, from 0.
    async fn index(&self) -> u32 {
        self.position.index
    }

    /// The payload kind (`RecordOwnership`, `SendProductData`, `Record`, …).
    async fn kind(&self) -> &'static str {
        self.tx.header.kind.name()
    }

    /// When its signer made it: milliseconds since the Unix epoch.
    async fn time(&self) -> u64 {
        self.tx.header.time_of_tx
    }

    async fn time_utc(&self) -> String {
        query::format_time(self.tx.header.time_of_tx)
    }

    /// The public key that signed it.
    async fn key(&self) -> String {
        self.tx.header.key.to_hex()
    }

    /// Was it signed by one of the chain's authorities (rather than by a resource)?
    async fn signed_by_authority(&self) -> bool {
        matches!(self.tx.header.signer, Signer::Authority)
    }

    /// The resource whose key signed it; null if an authority signed.
    async fn signer(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Resource>> {
        match self.tx.header.signer {
            Signer::Authority => Ok(None),
            Signer::Resource(id) => resource_by_id(ctx, id).await,
        }
    }

    /// The payload as JSON (docs/encoding.md names its fields).
    async fn payload(&self) -> Json<Value> {
        Json(serde_json::to_value(&self.tx.payload).unwrap_or(Value::Null))
    }

    /// The block that holds it.
    async fn block(&self, ctx: &Context<'_>) -> async_graphql::Result<Block> {
        let height = self.position.height;
        read(ctx, move |ledger| {
            let signed = ledger.store().signed_header(height)?.ok_or_else(|| {
                ApiError::from(weft_ledger::LedgerError::Corrupt(format!(
                    "block {height} is missing"
                )))
            })?;
            Ok(Block::from(&signed))
        })
        .await
    }

    /// Its inclusion proof (docs/proofs.md), to check offline with `weft proof verify`.
    async fn proof(&self, ctx: &Context<'_>) -> async_graphql::Result<Json<Value>> {
        let id = self.id;
        read(ctx, move |ledger| {
            let proof = weft_ledger::proof::build(ledger.store(), &id)?;
            Ok(Json(serde_json::to_value(proof).unwrap_or(Value::Null)))
        })
        .await
    }
}

async fn resource_by_id(
    ctx: &Context<'_>,
    id: ResourceId,
) -> async_graphql::Result<Option<Resource>> {
    read(ctx, move |ledger| {
        Ok(ledger
            .store()
            .snapshot()?
            .resource(&id)?
            .map(|entry| Resource { id, entry }))
    })
    .await
}

/// A registered organisation or person.
struct Resource {
    id: ResourceId,
    entry: ResourceEntry,
}

/// Whether a key is a resource's.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
enum KeyState {
    /// The key signs for the resource now.
    Active,
    /// The key did, and was revoked.
    Revoked,
    /// The key never was the resource's.
    Unknown,
}

#[Object]
impl Resource {
    /// The resource id: the id of the transaction that registered it.
    async fn id(&self) -> String {
        self.id.to_hex()
    }

    /// The organisation's name or the person's full name.
    async fn name(&self) -> String {
        self.entry.resource.label()
    }

    /// `organization` or `personInOrganization`.
    async fn kind(&self) -> &'static str {
        match self.entry.resource {
            weft_core::model::Resource::Organization(_) => "organization",
            weft_core::model::Resource::PersonInOrganization(_) => "personInOrganization",
        }
    }

    /// Everything registered about it, as JSON.
    async fn details(&self) -> Json<Value> {
        Json(serde_json::to_value(&self.entry.resource).unwrap_or(Value::Null))
    }

    /// Height of the block that registered it.
    async fn registered_height(&self) -> u64 {
        self.entry.registered_at.height
    }

    /// The organisation a person belongs to; null for an organisation.
    async fn organization(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Resource>> {
        match self.entry.organization() {
            Some(org) if org != self.id => resource_by_id(ctx, org).await,
            _ => Ok(None),
        }
    }

    /// Whether `key` (hex) is, was, or never was one of its keys.
    async fn key_state(&self, ctx: &Context<'_>, key: String) -> async_graphql::Result<KeyState> {
        let key = parse(&key, ErrorCode::BadKey, |text| {
            weft_core::PublicKey::from_hex(text).map_err(|e| e.to_string())
        })?;
        let id = self.id;
        read(ctx, move |ledger| {
            Ok(match ledger.store().snapshot()?.key_status(&id, &key)? {
                Some(weft_ledger::state::KeyStatus::Active) => KeyState::Active,
                Some(weft_ledger::state::KeyStatus::Revoked { .. }) => KeyState::Revoked,
                None => KeyState::Unknown,
            })
        })
        .await
    }

    /// Transactions that name it, in ledger order: `first` (at most 1,000) from `offset`.
    #[graphql(complexity = "(first as usize).saturating_mul(child_complexity)")]
    async fn transactions(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 0)] offset: u32,
        #[graphql(default = 100, validator(minimum = 1, maximum = 1000))] first: u32,
    ) -> async_graphql::Result<Vec<Transaction>> {
        let id = self.id;
        read(ctx, move |ledger| {
            let store = ledger.store();
            transactions_at(store, store.by_resource(&id)?, offset, first)
        })
        .await
    }
}

/// The transactions at `named` (in ledger order): `first` of them (at most 1,000) from `offset`.
fn transactions_at(
    store: &impl Store,
    named: Vec<(Position, TxId)>,
    offset: u32,
    first: u32,
) -> Result<Vec<Transaction>, ApiError> {
    named
        .into_iter()
        .skip(offset as usize)
        .take(first as usize)
        .map(|(position, id)| {
            let tx = store.tx_at(position)?.ok_or_else(|| {
                weft_ledger::LedgerError::Corrupt(format!(
                    "transaction {id} is indexed but missing"
                ))
            })?;
            Ok(Transaction { id, tx, position })
        })
        .collect()
}

/// The NIST verdict on an asset for a recipient.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// Its owner claimed it, and the recipient (if one was named) owns it or was sent it.
    Valid,
    /// Nobody claimed it: the data is not on the ledger.
    Unknown,
    /// It was claimed, but never sent to the recipient (nor to the recipient's organisation).
    NotRecipient,
    /// Not claimed, but recorded: a `Record` whose body is the data.
    Recorded,
}

/// Product data, known by its fingerprint.
struct Asset {
    fingerprint: Fingerprint,
    recipient: Option<ResourceId>,
}

#[Object]
impl Asset {
    async fn fingerprint(&self) -> String {
        self.fingerprint.to_string()
    }

    /// The verdict for the `recipient` the query named (or for anyone, if it named none).
    async fn verdict(&self, ctx: &Context<'_>) -> async_graphql::Result<Verdict> {
        let (fingerprint, recipient) = (self.fingerprint, self.recipient);
        read(ctx, move |ledger| {
            let snapshot = ledger.store().snapshot()?;
            Ok(
                match query::asset_verdict(ledger.store(), &snapshot, &fingerprint, recipient)? {
                    weft_api::Verdict::Valid => Verdict::Valid,
                    weft_api::Verdict::NotRecipient => Verdict::NotRecipient,
                    weft_api::Verdict::Recorded => Verdict::Recorded,
                    weft_api::Verdict::Unknown => Verdict::Unknown,
                },
            )
        })
        .await
    }

    /// Who claimed it; null if nobody did.
    async fn owner(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Resource>> {
        let fingerprint = self.fingerprint;
        let owner = read(ctx, move |ledger| {
            Ok(ledger
                .store()
                .snapshot()?
                .owner(&fingerprint)?
                .map(|owner| owner.issuer))
        })
        .await?;
        match owner {
            Some(id) => resource_by_id(ctx, id).await,
            None => Ok(None),
        }
    }

    /// The ownership claim; null if nobody claimed it.
    async fn claim(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Transaction>> {
        let fingerprint = self.fingerprint;
        read(ctx, move |ledger| {
            let store = ledger.store();
            let Some(owner) = store.snapshot()?.owner(&fingerprint)? else {
                return Ok(None);
            };
            Ok(store.tx(&owner.tx_id)?.map(|(tx, position)| Transaction {
                id: owner.tx_id,
                tx,
                position,
            }))
        })
        .await
    }

    /// The asset as its owner claimed it (names, type, parts), as JSON; null if unclaimed.
    async fn product_data(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Json<Value>>> {
        let fingerprint = self.fingerprint;
        read(ctx, move |ledger| {
            let store = ledger.store();
            let Some(owner) = store.snapshot()?.owner(&fingerprint)? else {
                return Ok(None);
            };
            Ok(
                query::claimed_asset(store, &query::Whole::new(), &owner.tx_id)?
                    .map(|asset| Json(serde_json::to_value(asset).unwrap_or(Value::Null))),
            )
        })
        .await
    }

    /// Its provenance: every transaction that names it (claim, sends), in ledger order.
    #[graphql(complexity = "(first as usize).saturating_mul(child_complexity)")]
    async fn history(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 0)] offset: u32,
        #[graphql(default = 100, validator(minimum = 1, maximum = 1000))] first: u32,
    ) -> async_graphql::Result<Vec<Transaction>> {
        let fingerprint = self.fingerprint;
        read(ctx, move |ledger| {
            let store = ledger.store();
            transactions_at(store, store.by_fingerprint(&fingerprint)?, offset, first)
        })
        .await
    }
}

/// The root of every subscription.
pub(crate) struct SubscriptionRoot;

#[Subscription(name = "Subscription")]
impl SubscriptionRoot {
    /// Every block from now on, as it is committed; with `from`, the blocks from that height
    /// first. No block is skipped, however slowly the client reads. The stream completes when
    /// the node shuts down.
    async fn blocks(
        &self,
        ctx: &Context<'_>,
        from: Option<u64>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<Block>> + use<>> {
        let state = state(ctx)?.clone();
        let head = state.head.clone();
        let next = match from {
            Some(from) => from,
            None => head.borrow().saturating_add(1),
        };
        let stopping = state.stopping.clone();
        Ok(async_graphql::futures_util::stream::unfold(
            (state, head, stopping, next, false),
            |(state, mut head, mut stopping, next, failed)| async move {
                if failed {
                    return None;
                }
                loop {
                    if *stopping.borrow() {
                        return None;
                    }
                    if next <= *head.borrow_and_update() {
                        let block = crate::api::state::read(&state, move |ledger| {
                            ledger
                                .store()
                                .signed_header(next)?
                                .map(|signed| Block::from(&signed))
                                .ok_or_else(|| {
                                    ApiError::from(weft_ledger::LedgerError::Corrupt(format!(
                                        "block {next} is missing"
                                    )))
                                })
                        })
                        .await;
                        return Some(match block {
                            Ok(block) => (Ok(block), (state, head, stopping, next + 1, false)),
                            Err(failure) => {
                                (Err(error(failure)), (state, head, stopping, next, true))
                            }
                        });
                    }
                    tokio::select! {
                        changed = head.changed() => if changed.is_err() { return None },
                        changed = stopping.changed() => if changed.is_err() { return None },
                    }
                }
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// docs/graphql.graphql is the schema the node serves. After a deliberate change of the
    /// schema, `WEFT_BLESS=1 cargo test -p weft-node graphql` rewrites it.
    #[test]
    fn documented_schema_is_the_served_schema() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/graphql.graphql");
        let served = schema(1 << 16, 5_000, Arc::new(tokio::sync::Semaphore::new(1)), 1).sdl();
        if std::env::var_os("WEFT_BLESS").is_some() {
            std::fs::write(&path, &served).expect("write docs/graphql.graphql");
        }
        let documented = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            documented == served,
            "docs/graphql.graphql differs from the served schema; after a deliberate change run \
             WEFT_BLESS=1 cargo test -p weft-node graphql"
        );
    }
}
