//! Where the API keeps its items: in memory (the quickstart, no Redis needed) or in Redis
//! (a hash per item, a sorted-set index, and a stream the pipeline consumes).
//!
//! Items are stored as their finished JSON bytes, so reads never re-serialize.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::RwLock;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use redis::aio::{
    ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection,
};
use redis::AsyncConnectionConfig;
use redis::RedisFuture;

use crate::DemoError;

/// Redis keys shared by the API and the pipeline.
pub(crate) mod keys {
    pub const SEQ: &str = "demo:items:seq";
    pub const INDEX: &str = "demo:items";
    pub const ITEM_PREFIX: &str = "demo:item:";
    pub const STREAM: &str = "demo:items:stream";
    pub const SESSION_PREFIX: &str = "demo:session:";
}

/// Sessions expire after this long (Redis EX; the memory store evicts by count instead).
const SESSION_TTL_SECS: u64 = 3600;

const REDIS_TIMEOUT: Duration = Duration::from_secs(2);

/// The store could not answer (Redis down, pool exhausted, ...): the API answers 503.
#[derive(Debug)]
pub(crate) struct Unavailable(pub String);

impl<E: std::fmt::Display> From<E> for Unavailable {
    fn from(e: E) -> Self {
        Unavailable(e.to_string())
    }
}

pub(crate) enum Store {
    Memory(MemoryStore),
    Redis(Box<RedisStore>),
}

/// `{"id":"<id>"` + `,<rest>` + `}`: the stored item. `rest` is the body object's members.
pub(crate) fn item_json(id: &str, rest: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(rest.len() + id.len() + 12);
    b.put_slice(b"{\"id\":\"");
    b.put_slice(id.as_bytes());
    b.put_u8(b'"');
    if !rest.is_empty() {
        b.put_u8(b',');
        b.put_slice(rest);
    }
    b.put_u8(b'}');
    b.freeze()
}

/// `{"token":"<token>"` + `,<rest>` + `}`.
fn session_json(token: &str, rest: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(rest.len() + token.len() + 16);
    b.put_slice(b"{\"token\":\"");
    b.put_slice(token.as_bytes());
    b.put_u8(b'"');
    if !rest.is_empty() {
        b.put_u8(b',');
        b.put_slice(rest);
    }
    b.put_u8(b'}');
    b.freeze()
}

fn is_token(t: &str) -> bool {
    t.len() == 32 && t.bytes().all(|b| b.is_ascii_hexdigit())
}

fn json_array<'a>(items: impl Iterator<Item = &'a [u8]>) -> Bytes {
    let mut b = BytesMut::with_capacity(4096);
    b.put_u8(b'[');
    for (i, it) in items.enumerate() {
        if i > 0 {
            b.put_u8(b',');
        }
        b.put_slice(it);
    }
    b.put_u8(b']');
    b.freeze()
}

impl Store {
    /// Stores a new item whose body members are `rest`; returns its id and JSON.
    pub async fn create(&self, rest: &[u8]) -> Result<(String, Bytes), Unavailable> {
        match self {
            Store::Memory(m) => Ok(m.create(rest)),
            Store::Redis(r) => r.ride(|| r.create(rest)).await,
        }
    }
    pub async fn get(&self, id: &str) -> Result<Option<Bytes>, Unavailable> {
        match self {
            Store::Memory(m) => Ok(m.get(id)),
            Store::Redis(r) => r.ride(|| r.get(id)).await,
        }
    }
    /// The newest `limit` items as a JSON array.
    pub async fn list(&self, limit: usize) -> Result<Bytes, Unavailable> {
        match self {
            Store::Memory(m) => Ok(m.list(limit)),
            Store::Redis(r) => r.ride(|| r.list(limit)).await,
        }
    }
    pub async fn delete(&self, id: &str) -> Result<bool, Unavailable> {
        match self {
            Store::Memory(m) => Ok(m.delete(id)),
            Store::Redis(r) => r.ride(|| r.delete(id)).await,
        }
    }
    /// Stores a new session whose body members are `rest`; returns its token and JSON.
    pub async fn create_session(&self, rest: &[u8]) -> Result<(String, Bytes), Unavailable> {
        let token = format!("{:032x}", rand::random::<u128>());
        let json = session_json(&token, rest);
        match self {
            Store::Memory(m) => m.put_session(&token, json.clone()),
            Store::Redis(r) => r.ride(|| r.put_session(&token, &json)).await?,
        }
        Ok((token, json))
    }
    pub async fn get_session(&self, token: &str) -> Result<Option<Bytes>, Unavailable> {
        if !is_token(token) {
            return Ok(None);
        }
        match self {
            Store::Memory(m) => Ok(m.get_session(token)),
            Store::Redis(r) => r.ride(|| r.get_session(token)).await,
        }
    }
    pub async fn count(&self) -> Result<u64, Unavailable> {
        match self {
            Store::Memory(m) => Ok(m.count()),
            Store::Redis(r) => r.ride(|| r.count()).await,
        }
    }
    /// Health: Ok when the backing store answers.
    pub async fn ping(&self) -> Result<(), Unavailable> {
        match self {
            Store::Memory(_) => Ok(()),
            Store::Redis(r) => r.ride(|| r.ping()).await,
        }
    }
    /// Redis connections in use right now (pooled ones checked out, or per-request ones open).
    pub fn redis_in_use(&self) -> Option<i64> {
        match self {
            Store::Memory(_) => None,
            Store::Redis(r) => Some(r.in_use()),
        }
    }
    /// Redis connections opened so far (grows per request with the `no-pool` defect).
    pub fn redis_connections_created(&self) -> Option<u64> {
        match self {
            Store::Memory(_) => None,
            Store::Redis(r) => Some(r.created()),
        }
    }
}

/// Items in memory, newest last in `order`; the oldest are evicted beyond `max`.
pub(crate) struct MemoryStore {
    next_id: AtomicU64,
    max: usize,
    inner: RwLock<MemInner>,
}

#[derive(Default)]
struct MemInner {
    items: HashMap<u64, Bytes>,
    order: VecDeque<u64>,
    sessions: HashMap<String, Bytes>,
    session_order: VecDeque<String>,
}

impl MemoryStore {
    pub fn new(max: usize) -> Self {
        MemoryStore {
            next_id: AtomicU64::new(1),
            max: max.max(1),
            inner: RwLock::new(MemInner::default()),
        }
    }

    fn create(&self, rest: &[u8]) -> (String, Bytes) {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        let id = n.to_string();
        let json = item_json(&id, rest);
        let mut g = self.inner.write().unwrap_or_else(|e| e.into_inner());
        g.items.insert(n, json.clone());
        g.order.push_back(n);
        while g.order.len() > self.max {
            if let Some(old) = g.order.pop_front() {
                g.items.remove(&old);
            }
        }
        (id, json)
    }

    fn get(&self, id: &str) -> Option<Bytes> {
        let n: u64 = id.parse().ok()?;
        let g = self.inner.read().unwrap_or_else(|e| e.into_inner());
        g.items.get(&n).cloned()
    }

    fn list(&self, limit: usize) -> Bytes {
        let g = self.inner.read().unwrap_or_else(|e| e.into_inner());
        // Deleted ids stay in `order` until evicted; skip them.
        let items = g
            .order
            .iter()
            .rev()
            .filter_map(|n| g.items.get(n))
            .take(limit)
            .map(|b| b.as_ref());
        json_array(items)
    }

    fn delete(&self, id: &str) -> bool {
        let Ok(n) = id.parse::<u64>() else {
            return false;
        };
        let mut g = self.inner.write().unwrap_or_else(|e| e.into_inner());
        g.items.remove(&n).is_some()
    }

    fn count(&self) -> u64 {
        let g = self.inner.read().unwrap_or_else(|e| e.into_inner());
        g.items.len() as u64
    }

    fn put_session(&self, token: &str, json: Bytes) {
        let mut g = self.inner.write().unwrap_or_else(|e| e.into_inner());
        g.sessions.insert(token.to_string(), json);
        g.session_order.push_back(token.to_string());
        while g.session_order.len() > self.max {
            if let Some(old) = g.session_order.pop_front() {
                g.sessions.remove(&old);
            }
        }
    }

    fn get_session(&self, token: &str) -> Option<Bytes> {
        let g = self.inner.read().unwrap_or_else(|e| e.into_inner());
        g.sessions.get(token).cloned()
    }
}

/// Create: one round trip (id, hash, index and stream entry written atomically).
const CREATE_LUA: &str = r#"
local id = redis.call('INCR', KEYS[1])
local json
if ARGV[1] == '' then
  json = '{"id":"' .. id .. '"}'
else
  json = '{"id":"' .. id .. '",' .. ARGV[1] .. '}'
end
redis.call('HSET', ARGV[3] .. id, 'json', json, 'created_ms', ARGV[2])
redis.call('ZADD', KEYS[2], id, id)
redis.call('XADD', KEYS[3], 'MAXLEN', '~', '1000000', '*', 'id', id, 'json', json)
return {tostring(id), json}
"#;

const LIST_LUA: &str = r#"
local ids = redis.call('ZREVRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
local out = {}
for _, id in ipairs(ids) do
  local j = redis.call('HGET', ARGV[2] .. id, 'json')
  if j then out[#out + 1] = j end
end
return out
"#;

const DELETE_LUA: &str = r#"
local n = redis.call('DEL', ARGV[1] .. ARGV[2])
redis.call('ZREM', KEYS[1], ARGV[2])
return n
"#;

enum Conns {
    /// A fixed set of auto-reconnecting multiplexed connections, used round-robin. (Not
    /// deadpool: its checkout PINGs every connection first, doubling Redis round trips.)
    Pool(Box<Pool>),
    /// The `no-pool` defect: connect for every request.
    PerRequest(Box<(redis::Client, AsyncConnectionConfig)>),
}

struct Pool {
    conns: Vec<ConnectionManager>,
    next: AtomicUsize,
}

pub(crate) struct RedisStore {
    conns: Conns,
    /// How long a failing call is tried again (`--redis-retry`).
    retry: Duration,
    /// Requests holding a connection right now.
    in_use: AtomicI64,
    created: AtomicU64,
    create: redis::Script,
    list: redis::Script,
    delete: redis::Script,
}

/// A connection for one request, counted as in use until dropped.
enum Conn<'a> {
    Pooled(ConnectionManager, #[allow(dead_code)] InUse<'a>),
    Fresh(MultiplexedConnection, #[allow(dead_code)] InUse<'a>),
}

struct InUse<'a>(&'a AtomicI64);

impl<'a> InUse<'a> {
    fn new(n: &'a AtomicI64) -> Self {
        n.fetch_add(1, Ordering::Relaxed);
        InUse(n)
    }
}

impl Drop for InUse<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl ConnectionLike for Conn<'_> {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a redis::Cmd) -> RedisFuture<'a, redis::Value> {
        match self {
            Conn::Pooled(c, _) => c.req_packed_command(cmd),
            Conn::Fresh(c, _) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<redis::Value>> {
        match self {
            Conn::Pooled(c, _) => c.req_packed_commands(cmd, offset, count),
            Conn::Fresh(c, _) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Pooled(c, _) => c.get_db(),
            Conn::Fresh(c, _) => c.get_db(),
        }
    }
}

fn is_item_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 20 && id.bytes().all(|b| b.is_ascii_digit())
}

impl RedisStore {
    /// Runs `op`, trying again every 50ms while it fails, for up to `retry`: a Redis that
    /// restarts within that time costs the request latency, not an error. A write whose
    /// answer was lost may run twice (a duplicate item), as with any client retry.
    async fn ride<T, F, Fut>(&self, op: F) -> Result<T, Unavailable>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, Unavailable>>,
    {
        const PAUSE: Duration = Duration::from_millis(50);
        let deadline = tokio::time::Instant::now() + self.retry;
        loop {
            match op().await {
                Err(_) if tokio::time::Instant::now() + PAUSE < deadline => {
                    tokio::time::sleep(PAUSE).await
                }
                r => return r,
            }
        }
    }

    pub fn new(
        url: &str,
        pooled: bool,
        pool_size: usize,
        retry: Duration,
    ) -> Result<Self, DemoError> {
        let bad_url = |source| DemoError::RedisUrl {
            url: url.to_string(),
            source,
        };
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_response_timeout(Some(REDIS_TIMEOUT));
        let conns = if pooled {
            let client = redis::Client::open(url).map_err(bad_url)?;
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(REDIS_TIMEOUT))
                .set_response_timeout(Some(REDIS_TIMEOUT))
                .set_number_of_retries(1)
                .set_max_delay(Duration::from_millis(500));
            let conns = (0..pool_size.max(1))
                .map(|_| ConnectionManager::new_lazy_with_config(client.clone(), config.clone()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(bad_url)?;
            Conns::Pool(Box::new(Pool {
                conns,
                next: AtomicUsize::new(0),
            }))
        } else {
            Conns::PerRequest(Box::new((
                redis::Client::open(url).map_err(bad_url)?,
                config,
            )))
        };
        Ok(RedisStore {
            conns,
            retry,
            in_use: AtomicI64::new(0),
            created: AtomicU64::new(0),
            create: redis::Script::new(CREATE_LUA),
            list: redis::Script::new(LIST_LUA),
            delete: redis::Script::new(DELETE_LUA),
        })
    }

    async fn conn(&self) -> Result<Conn<'_>, Unavailable> {
        match &self.conns {
            Conns::Pool(p) => {
                let i = p.next.fetch_add(1, Ordering::Relaxed) % p.conns.len();
                Ok(Conn::Pooled(p.conns[i].clone(), InUse::new(&self.in_use)))
            }
            Conns::PerRequest(cc) => {
                let (client, config) = &**cc;
                self.created.fetch_add(1, Ordering::Relaxed);
                let in_use = InUse::new(&self.in_use);
                let c = client
                    .get_multiplexed_async_connection_with_config(config)
                    .await?;
                Ok(Conn::Fresh(c, in_use))
            }
        }
    }

    fn in_use(&self) -> i64 {
        self.in_use.load(Ordering::Relaxed)
    }

    fn created(&self) -> u64 {
        match &self.conns {
            Conns::Pool(p) => p.conns.len() as u64,
            Conns::PerRequest(_) => self.created.load(Ordering::Relaxed),
        }
    }
    async fn create(&self, rest: &[u8]) -> Result<(String, Bytes), Unavailable> {
        let mut c = self.conn().await?;
        let (id, json): (String, Vec<u8>) = self
            .create
            .key(keys::SEQ)
            .key(keys::INDEX)
            .key(keys::STREAM)
            .arg(rest)
            .arg(crate::now_ms())
            .arg(keys::ITEM_PREFIX)
            .invoke_async(&mut c)
            .await?;
        Ok((id, Bytes::from(json)))
    }

    async fn get(&self, id: &str) -> Result<Option<Bytes>, Unavailable> {
        if !is_item_id(id) {
            return Ok(None);
        }
        let mut c = self.conn().await?;
        let v: Option<Vec<u8>> = redis::cmd("HGET")
            .arg(format!("{}{id}", keys::ITEM_PREFIX))
            .arg("json")
            .query_async(&mut c)
            .await?;
        Ok(v.map(Bytes::from))
    }

    async fn list(&self, limit: usize) -> Result<Bytes, Unavailable> {
        let mut c = self.conn().await?;
        let v: Vec<Vec<u8>> = self
            .list
            .key(keys::INDEX)
            .arg(limit)
            .arg(keys::ITEM_PREFIX)
            .invoke_async(&mut c)
            .await?;
        Ok(json_array(v.iter().map(|b| b.as_slice())))
    }

    async fn delete(&self, id: &str) -> Result<bool, Unavailable> {
        if !is_item_id(id) {
            return Ok(false);
        }
        let mut c = self.conn().await?;
        let n: i64 = self
            .delete
            .key(keys::INDEX)
            .arg(keys::ITEM_PREFIX)
            .arg(id)
            .invoke_async(&mut c)
            .await?;
        Ok(n > 0)
    }

    async fn put_session(&self, token: &str, json: &[u8]) -> Result<(), Unavailable> {
        let mut c = self.conn().await?;
        let _: () = redis::cmd("SET")
            .arg(format!("{}{token}", keys::SESSION_PREFIX))
            .arg(json)
            .arg("EX")
            .arg(SESSION_TTL_SECS)
            .query_async(&mut c)
            .await?;
        Ok(())
    }

    async fn get_session(&self, token: &str) -> Result<Option<Bytes>, Unavailable> {
        let mut c = self.conn().await?;
        let v: Option<Vec<u8>> = redis::cmd("GET")
            .arg(format!("{}{token}", keys::SESSION_PREFIX))
            .query_async(&mut c)
            .await?;
        Ok(v.map(Bytes::from))
    }

    async fn count(&self) -> Result<u64, Unavailable> {
        let mut c = self.conn().await?;
        Ok(redis::cmd("ZCARD")
            .arg(keys::INDEX)
            .query_async(&mut c)
            .await?)
    }

    async fn ping(&self) -> Result<(), Unavailable> {
        let mut c = self.conn().await?;
        let _: String = redis::cmd("PING").query_async(&mut c).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_json_with_and_without_members() {
        assert_eq!(&item_json("7", b"")[..], br#"{"id":"7"}"#);
        assert_eq!(&item_json("7", br#""a":1"#)[..], br#"{"id":"7","a":1}"#);
    }

    #[test]
    fn memory_store_lists_newest_first_and_evicts() {
        let m = MemoryStore::new(2);
        m.create(br#""n":1"#);
        m.create(br#""n":2"#);
        m.create(br#""n":3"#);
        assert_eq!(&m.list(100)[..], br#"[{"id":"3","n":3},{"id":"2","n":2}]"#);
        assert!(m.get("1").is_none());
        assert!(m.delete("3"));
        assert_eq!(&m.list(100)[..], br#"[{"id":"2","n":2}]"#);
        assert_eq!(m.count(), 1);
    }
}
